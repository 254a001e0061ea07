import type { NextAuthOptions } from 'next-auth';
import CredentialsProvider from 'next-auth/providers/credentials';

/**
 * The secret NextAuth encrypts its session cookie with, and (by default) the one the token route signs Herald
 * tokens with: Herald falls back to NEXTAUTH_SECRET when HERALD_TOKEN_SECRET is not set. The demo value only exists
 * so `npm run dev` works out of the box; set NEXTAUTH_SECRET in any real deployment.
 */
export const DEMO_SECRET = 'herald-demo-secret-change-me-0123456789abcdef';
export const authSecret = (): string => process.env.NEXTAUTH_SECRET || DEMO_SECRET;
export const heraldTokenSecret = (): string => process.env.HERALD_TOKEN_SECRET || authSecret();

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
};
