import { getServerSession } from 'next-auth';
import { createTokenRoute } from '@herald/next';
import { authOptions, heraldTokenSecret } from '@/lib/auth';

export const dynamic = 'force-dynamic';

// A 60-second HS256 token for the signed-in user; @herald/client fetches it on connect and again when it expires.
export const GET = createTokenRoute({
  secret: heraldTokenSecret(),
  ttlSeconds: 60,
  getSession: () => getServerSession(authOptions),
});
