import { getServerSession } from 'next-auth';
import { createTokenRoute } from '@herald/next';
import { authOptions, authSecret, heraldTokenSecret } from '@/lib/auth';

export const dynamic = 'force-dynamic';

// A 60-second HS256 token for the signed-in user; @herald/client fetches it on connect and again when it expires.
// The user id in it is the session JWT's sub (the id authorize() returns), read from the session cookie with the
// NextAuth secret: never the name or email, which two accounts can share.
export const GET = createTokenRoute({
  secret: heraldTokenSecret(),
  sessionSecret: authSecret(),
  ttlSeconds: 60,
  getSession: () => getServerSession(authOptions),
});
