/**
 * Runs inside Herald (a custom server or an embedding process), not in Next.js: authenticates a same-origin
 * WebSocket from the next-auth session cookie it carries, so no token route is needed. Separate entry
 * (`@herald/next/herald`) so route handlers never pull in the server.
 *
 * WebSockets have no CORS and the browser sends the session cookie with any page's upgrade, so the cookie is used
 * only when the upgrade's Origin is in this hook's own exact allowlist; otherwise (and with no Origin at all) the
 * connection falls back to its token.
 *
 * The user id is the session JWT's `sub`, read by the same code as the token route's (`./session.ts`), so one person
 * has one id on both paths; never the email or the name.
 */
import type { ConnectingContext, ConnectingResult } from '@herald/server';
import { readSessionClaims, subjectOfClaims } from './session.js';

export interface NextAuthCookieAuthOptions {
  /**
   * NEXTAUTH_SECRET (a list during rotation). Required at the first connection; it may be undefined when the module
   * loads.
   */
  secret: string | string[] | undefined;
  /** Exact origins (scheme://host:port) whose upgrades may use the cookie. Required, non-empty. */
  allowedOrigins: string[];
  /** A custom session cookie name. @default the next-auth v4 and Auth.js v5 names */
  cookieName?: string;
  /**
   * The user id from the session JWT's claims. @default the `sub` claim. A session without one does not authenticate
   * (the connection falls back to its token). Give the token route the matching `subject`.
   */
  subject?: (claims: Record<string, unknown>) => string | null | undefined;
  /** Called when a cookie is present but unusable (expired, wrong secret, no `sub`): for logs. */
  onRejected?: (reason: string, message: string) => void;
}

export class CookieAuthConfigError extends Error {
  readonly code = 'HERALD_COOKIE_AUTH_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'CookieAuthConfigError';
  }
}

function one(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function secretsOf(options: NextAuthCookieAuthOptions): string[] {
  return [options.secret].flat().filter((s): s is string => typeof s === 'string' && s !== '');
}

/** What is wrong with the hook's options, or undefined. */
function cookieAuthProblem(options: NextAuthCookieAuthOptions): CookieAuthConfigError | undefined {
  if (secretsOf(options).length === 0) {
    return new CookieAuthConfigError(
      "nextAuthCookieAuth has no secret at run time: set NEXTAUTH_SECRET (or AUTH_SECRET, whichever the hook passes as { secret }) in the environment Herald's process runs in",
    );
  }
  if (!Array.isArray(options.allowedOrigins) || options.allowedOrigins.length === 0) {
    return new CookieAuthConfigError(
      'nextAuthCookieAuth needs { allowedOrigins }: the exact origins of the app, e.g. ["https://app.example.com"]; a cookie without an Origin check lets any site connect as the user',
    );
  }
  for (const o of options.allowedOrigins) {
    if (o === '*' || !/^https?:\/\/[^/]+$/.test(o))
      return new CookieAuthConfigError(
        `allowedOrigins: "${o}" is not an exact origin (scheme://host[:port], no path, no wildcard)`,
      );
  }
  return undefined;
}

/**
 * The `onConnecting` hook. Its options are checked at the first connection, not here, so a module that builds it can
 * be loaded (by `next build`, a bundler) without the run-time secret; a bad option then throws CookieAuthConfigError
 * from every connection attempt (Herald logs it and answers 100 internal error) until the process is fixed.
 */
export function nextAuthCookieAuth(
  options: NextAuthCookieAuthOptions,
): (ctx: ConnectingContext) => Promise<ConnectingResult | undefined> {
  let checked: { secrets: string[]; allowed: Set<string> } | undefined;
  const ready = () => {
    if (checked) return checked;
    const problem = cookieAuthProblem(options);
    if (problem) throw problem;
    checked = {
      secrets: secretsOf(options),
      allowed: new Set(options.allowedOrigins),
    };
    return checked;
  };
  return async (ctx) => {
    const { secrets, allowed } = ready();
    // An explicit token wins: the app chose it.
    if (ctx.token) return undefined;
    const origin = one(ctx.transport.headers.origin);
    if (!origin || !allowed.has(origin)) return undefined;
    const cookie = one(ctx.transport.headers.cookie);
    if (!cookie) return undefined;
    const r = await readSessionClaims(cookie, secrets, options.cookieName ? { cookieName: options.cookieName } : {});
    if (!r.ok) {
      if (r.reason !== 'no_cookie') options.onRejected?.(r.reason, r.message);
      return undefined;
    }
    const { claims } = r;
    const user = options.subject ? options.subject(claims) : subjectOfClaims(claims);
    if (typeof user !== 'string' || user === '') {
      // Never the email or the name: two accounts can share those.
      options.onRejected?.(
        'no_sub',
        options.subject
          ? 'the subject option returned no user id for this session'
          : `the session JWT in ${r.cookieName} has no sub: return an id from the provider's profile() or authorize(), or set token.sub in the jwt callback`,
      );
      return undefined;
    }
    const result: ConnectingResult = { user };
    if (typeof claims.exp === 'number') result.expireAt = claims.exp;
    if (typeof claims.name === 'string') result.info = { name: claims.name };
    return result;
  };
}
