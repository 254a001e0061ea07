import { getServerSession, type NextAuthOptions } from 'next-auth';
import CredentialsProvider from 'next-auth/providers/credentials';
import type { AuthMode } from './chat';
import { upsertUser } from './store';

/**
 * The secret NextAuth encrypts its session cookie with, and (by default) the one the token route signs Herald
 * tokens with: Herald falls back to NEXTAUTH_SECRET when HERALD_TOKEN_SECRET is not set. The demo value only exists
 * so `npm run dev` works out of the box; set NEXTAUTH_SECRET in any real deployment.
 */
export const DEMO_SECRET = 'herald-demo-secret-change-me-0123456789abcdef';
export const authSecret = (): string => process.env.NEXTAUTH_SECRET || DEMO_SECRET;
export const heraldTokenSecret = (): string => process.env.HERALD_TOKEN_SECRET || authSecret();
/**
 * The secret Herald signs its webhooks with: the `secret` of the `webhooks` entry in Herald's config (the scripts
 * write it from the same variable). The demo value only exists so `npm run dev` works out of the box.
 */
export const DEMO_WEBHOOK_SECRET = 'herald-demo-webhook-secret-change-me';
export const webhookSecret = (): string => process.env.HERALD_WEBHOOK_SECRET || DEMO_WEBHOOK_SECRET;

/**
 * How the browser's connection is authenticated. 'token' (the default): the page fetches a short-lived token from
 * /api/herald/token. 'proxy' (HERALD_AUTH=proxy, `npm run dev -- --proxy`): the page connects with no token and
 * Herald's connect proxy (/api/herald/proxy/connect) reads the NextAuth session from the forwarded Cookie header; the
 * token route is then off. Read at request time, so one build serves both modes.
 */
export const authMode = (): AuthMode => {
  const env: Record<string, string | undefined> = process.env;
  return env['HERALD_AUTH'] === 'proxy' ? 'proxy' : 'token';
};
/**
 * Proxy mode: the secret Herald sends with every proxy call (X-Herald-Proxy-Secret, from the proxies'
 * `http.static_headers`, written by the scripts from the same variable). Without it anyone could call the proxy
 * routes, e.g. publish as any user. The demo value only exists so `npm run dev -- --proxy` works out of the box.
 */
export const DEMO_PROXY_SECRET = 'herald-demo-proxy-secret-change-me';
export const proxySecret = (): string => process.env.HERALD_PROXY_SECRET || DEMO_PROXY_SECRET;
/** Proxy mode: Herald's HTTP API (the rpc proxy reads chat:lobby's presence) and its key (HERALD_API_KEY). */
export const DEMO_API_KEY = 'herald-demo-api-key-change-me';
export const heraldApi = (): { url: string; key: string } => ({
  url: (process.env.HERALD_INTERNAL_URL || 'http://127.0.0.1:3002').replace(/\/$/, ''),
  key: process.env.HERALD_API_KEY || DEMO_API_KEY,
});

const DEMO_USERS = ['alice', 'bob'];

export const authOptions: NextAuthOptions = {
  secret: authSecret(),
  session: { strategy: 'jwt' },
  pages: { signIn: '/login' },
  providers: [
    CredentialsProvider({
      name: 'Demo account',
      credentials: { username: { label: 'User', type: 'text' }, password: { label: 'Password', type: 'password' } },
      async authorize(credentials) {
        const name = credentials?.username?.trim().toLowerCase() ?? '';
        if (DEMO_USERS.includes(name) && credentials?.password === 'demo') return { id: name, name };
        return null;
      },
    }),
  ],
  callbacks: {
    // The session carries the user's id (the JWT's sub, what authorize() returned): messages are stored under it.
    session: ({ session, token }) => ({ ...session, user: { ...session.user, id: token.sub } }),
  },
  events: {
    // Every signed-in user has a row in the database (the page lists them with their "last seen").
    signIn: async ({ user }) => upsertUser(user.id, user.name ?? user.id),
  },
};

/** The signed-in user (id and name) in a server component or route handler, or null. */
export async function currentUser(): Promise<{ id: string; name: string } | null> {
  const session = await getServerSession(authOptions);
  const user = session?.user as { id?: unknown; name?: string | null } | undefined;
  if (!user || typeof user.id !== 'string') return null;
  return { id: user.id, name: user.name ?? user.id };
}
