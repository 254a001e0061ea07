import { SignJWT } from 'jose';
import { readSessionSubject } from './session.js';

/**
 * Short-lived HS256 connection tokens for the signed-in user, minted by the Next.js app for Herald: the pattern
 * next-auth maintainers recommend for sockets (the app reads its own session; the realtime server only checks a
 * signature). Works across ports and subdomains, unlike the session cookie.
 */

/** The parts of a next-auth / Auth.js session this helper reads. */
export interface SessionLike {
  user?: { id?: string | null; email?: string | null; name?: string | null } | null;
}

export interface MintTokenOptions {
  /** HS256 secret shared with Herald (HERALD_TOKEN_SECRET, or NEXTAUTH_SECRET on both sides). Required. */
  secret: string;
  /** Token lifetime in seconds; the client fetches a new one when it expires. @default 60 */
  ttlSeconds?: number;
  /** `aud` claim (Herald: HERALD_TOKEN_AUDIENCE). @default none */
  audience?: string;
  /** `iss` claim (Herald: HERALD_TOKEN_ISSUER). @default none */
  issuer?: string;
  /**
   * The user id Herald sees. @default the session JWT's `sub`, read from the request's session cookie (the id
   * `nextAuthCookieAuth` uses too); where there is no session JWT (database sessions), `session.user.id`. Never the
   * email or the name: two accounts can share those.
   */
  subject?: (session: SessionLike) => string | null | undefined;
  /**
   * The secret the app's session cookie is encrypted with (AUTH_SECRET / NEXTAUTH_SECRET; a list during rotation),
   * to read the session JWT's `sub`. @default secret
   */
  sessionSecret?: string | string[];
  /** A custom session cookie name (next-auth `cookies.sessionToken.name`). @default the next-auth v4 and Auth.js v5 names */
  cookieName?: string;
  /** Connection info shown to others in presence and on publications (`info` claim). @default { name } */
  info?: (session: SessionLike) => unknown;
  /** Server-side subscriptions (`channels` claim). */
  channels?: string[];
}

/** Why a token could not be minted; `createTokenRoute` answers it as `{ error: reason, code, message }`. */
export type TokenConfigReason =
  /** No HS256 secret, no getSession, or a bad ttlSeconds. */
  | 'token_config'
  /** No id for the user: no session JWT `sub`, no `session.user.id`, no `subject`. */
  | 'no_subject'
  /** `session.user.id` and the session JWT's `sub` name two different users. */
  | 'subject_mismatch'
  /** The session cookie is encrypted with another secret than `sessionSecret`. */
  | 'session_secret'
  /** The session cookie expired between the session read and the token: the route answers 401. */
  | 'session_expired';

export class TokenConfigError extends Error {
  readonly code = 'HERALD_TOKEN_CONFIG';
  readonly reason: TokenConfigReason;
  constructor(message: string, reason: TokenConfigReason = 'token_config') {
    super(message);
    this.name = 'TokenConfigError';
    this.reason = reason;
  }
}

export function checkSecret(secret: unknown): asserts secret is string {
  if (typeof secret !== 'string' || secret === '') {
    throw new TokenConfigError(
      'mintToken needs { secret }: the HS256 secret Herald verifies with (HERALD_TOKEN_SECRET or NEXTAUTH_SECRET)',
    );
  }
}

function sessionSecrets(options: MintTokenOptions): string[] {
  const list = [options.sessionSecret ?? options.secret]
    .flat()
    .filter((s): s is string => typeof s === 'string' && s !== '');
  if (list.length === 0)
    throw new TokenConfigError(
      "sessionSecret must be the app's AUTH_SECRET / NEXTAUTH_SECRET (a non-empty string or list)",
    );
  return list;
}

const FIX =
  'pass { subject: (session) => <a stable, unique user id> } (never the email or name), or expose the id as ' +
  'session.user.id in the session callback';

/**
 * The user id for the token: the session JWT's `sub` (from the request's cookie), else `session.user.id`, else a
 * refusal naming the fix. Never the email or the name.
 */
async function resolveSubject(
  session: SessionLike,
  options: MintTokenOptions,
  request: Request | undefined,
): Promise<string> {
  if (options.subject) {
    const chosen = options.subject(session);
    if (typeof chosen !== 'string' || chosen === '')
      throw new TokenConfigError('the subject option returned no user id for this session', 'no_subject');
    return chosen;
  }
  const id = session.user?.id;
  const userId = typeof id === 'string' && id !== '' ? id : undefined;
  if (request === undefined) {
    if (userId !== undefined) return userId;
    throw new TokenConfigError(
      'the session has no user.id (next-auth v4 and Auth.js v5 sessions carry only name, email and image by default): ' +
        `call mintToken(session, options, request) so it reads the session JWT's sub from the cookie, or ${FIX}`,
      'no_subject',
    );
  }
  const read = await readSessionSubject(
    request.headers.get('cookie'),
    sessionSecrets(options),
    options.cookieName !== undefined ? { cookieName: options.cookieName } : {},
  );
  if (read.ok) {
    if (userId !== undefined && userId !== read.subject) {
      throw new TokenConfigError(
        `session.user.id (${JSON.stringify(userId)}) is not the session JWT's sub (${JSON.stringify(read.subject)}), which ` +
          'the cookie hook uses: set session.user.id = token.sub in the session callback, or pass { subject } (and the same ' +
          'subject to nextAuthCookieAuth)',
        'subject_mismatch',
      );
    }
    return read.subject;
  }
  switch (read.reason) {
    case 'expired':
      throw new TokenConfigError(read.message, 'session_expired');
    case 'bad_secret':
      throw new TokenConfigError(
        `${read.message}: pass { sessionSecret: process.env.AUTH_SECRET ?? process.env.NEXTAUTH_SECRET } (it defaults to secret)`,
        'session_secret',
      );
    case 'no_sub':
      throw new TokenConfigError(`${read.message}; or ${FIX}`, 'no_subject');
    case 'no_cookie':
    case 'not_a_jwt':
      if (userId !== undefined) return userId;
      throw new TokenConfigError(
        `no user id for this session: ${read.message}, and the session has no user.id (next-auth's default session ` +
          `carries only name, email and image)` +
          (read.reason === 'no_cookie' ? '. With a custom session cookie name pass { cookieName }; otherwise ' : '. ') +
          FIX,
        'no_subject',
      );
  }
}

/**
 * Mints the token. Pass the request (as `createTokenRoute` does) so the user id is the session JWT's `sub`, the id
 * the cookie hook uses; without it, `session.user.id` or `subject`. Throws TokenConfigError when there is no id.
 */
export async function mintToken(session: SessionLike, options: MintTokenOptions, request?: Request): Promise<string> {
  checkSecret(options.secret);
  const ttl = options.ttlSeconds ?? 60;
  if (!Number.isFinite(ttl) || ttl <= 0)
    throw new TokenConfigError(`ttlSeconds must be a positive number of seconds, got ${ttl}`);
  const sub = await resolveSubject(session, options, request);
  const claims: Record<string, unknown> = {};
  const info = options.info ? options.info(session) : session.user?.name ? { name: session.user.name } : undefined;
  if (info !== undefined) claims.info = info;
  if (options.channels) claims.channels = options.channels;
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + Math.ceil(ttl));
  if (options.audience) jwt.setAudience(options.audience);
  if (options.issuer) jwt.setIssuer(options.issuer);
  return jwt.sign(new TextEncoder().encode(options.secret));
}

export interface TokenRouteOptions extends Omit<MintTokenOptions, 'secret'> {
  /**
   * HS256 secret shared with Herald, e.g. `process.env.NEXTAUTH_SECRET`. It may be undefined when the module loads
   * (`next build` loads route modules without the run-time environment): the route checks it at its first request.
   */
  secret: string | undefined;
  /** Reads the signed-in session, e.g. `() => getServerSession(authOptions)`; null or undefined means signed out. */
  getSession: (request: Request) => Promise<SessionLike | null | undefined> | SessionLike | null | undefined;
}

/**
 * What is wrong with the route's options, or undefined. Checked per request, not when the module loads, so
 * `next build` passes without the secret, which most CI and container builds only have at run time.
 */
function routeOptionsProblem(options: TokenRouteOptions): TokenConfigError | undefined {
  if (typeof options.secret !== 'string' || options.secret === '') {
    return new TokenConfigError(
      'the Herald token route has no secret at run time: set NEXTAUTH_SECRET (or whichever variable the route passes ' +
        "as { secret }, e.g. HERALD_TOKEN_SECRET) in the environment the app runs in (next start, the container's " +
        'env); next build does not need it',
    );
  }
  if (typeof options.getSession !== 'function') {
    return new TokenConfigError(
      'createTokenRoute needs { getSession }: a function returning the signed-in session, e.g. () => getServerSession(authOptions)',
    );
  }
  const ttl = options.ttlSeconds ?? 60;
  if (!Number.isFinite(ttl) || ttl <= 0)
    return new TokenConfigError(`ttlSeconds must be a positive number of seconds, got ${ttl}`);
  if (options.sessionSecret !== undefined) {
    try {
      sessionSecrets(options as MintTokenOptions);
    } catch (err) {
      return err as TokenConfigError;
    }
  }
  return undefined;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/**
 * A ready App Router handler: `export const GET = createTokenRoute({ secret, getSession })`. Answers
 * `{ token, expires }` for a signed-in user and 401 otherwise (the client then stops reconnecting). The user id is
 * the session JWT's `sub` from the request's cookie (see MintTokenOptions.subject); when there is none, it answers 500
 * `{ error, code: 'HERALD_TOKEN_CONFIG', message }` with the fix instead of guessing one from the email or name.
 * Options are checked at each request, not when the module loads, so `next build` passes without the secret; a
 * missing secret answers the same 500 (`error: 'token_config'`) naming the variable, and is logged once.
 */
export function createTokenRoute(options: TokenRouteOptions): (request: Request) => Promise<Response> {
  let logged = false;
  return async (request: Request) => {
    const problem = routeOptionsProblem(options);
    if (problem) {
      if (!logged) {
        logged = true;
        console.error(`[herald] ${problem.code}: ${problem.message}`);
      }
      return json(500, { error: problem.reason, code: problem.code, message: problem.message });
    }
    const mintOptions = options as MintTokenOptions;
    const session = await options.getSession(request);
    if (!session?.user) return json(401, { error: 'not_signed_in', message: 'sign in to get a realtime token' });
    let token: string;
    try {
      token = await mintToken(session, mintOptions, request);
    } catch (err) {
      if (!(err instanceof TokenConfigError)) throw err;
      if (err.reason === 'session_expired')
        return json(401, { error: 'not_signed_in', message: 'the session expired: sign in again' });
      // The app's configuration, not the user, is at fault: the body names the fix for the developer's console.
      return json(500, { error: err.reason, code: err.code, message: err.message });
    }
    return json(200, { token, expires: Math.floor(Date.now() / 1000) + Math.ceil(options.ttlSeconds ?? 60) });
  };
}
