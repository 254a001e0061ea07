import { getServerSession } from 'next-auth';
import { createTokenRoute } from '@herald/next';
import { authMode, authOptions, authSecret, heraldTokenSecret } from '@/lib/auth';

export const dynamic = 'force-dynamic';

// A 60-second HS256 token for the signed-in user; @herald/client fetches it on connect and again when it expires.
// The user id in it is the session JWT's sub (the id authorize() returns), read from the session cookie with the
// NextAuth secret: never the name or email, which two accounts can share.
const tokenRoute = createTokenRoute({
  secret: heraldTokenSecret(),
  sessionSecret: authSecret(),
  ttlSeconds: 60,
  getSession: () => getServerSession(authOptions),
});

// In proxy mode (HERALD_AUTH=proxy) there is no token: Herald's connect proxy reads the session cookie instead.
export async function GET(request: Request): Promise<Response> {
  if (authMode() === 'proxy')
    return Response.json(
      {
        error: 'token_route_disabled',
        message: 'HERALD_AUTH=proxy: the page connects without a token (the connect proxy reads the session cookie)',
      },
      { status: 404 },
    );
  return tokenRoute(request);
}
