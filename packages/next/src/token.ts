import { SignJWT } from 'jose';

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
  /** The user id Herald sees. @default session.user.id, else email, else name */
  subject?: (session: SessionLike) => string | undefined;
  /** Connection info shown to others in presence and on publications (`info` claim). @default { name } */
  info?: (session: SessionLike) => unknown;
  /** Server-side subscriptions (`channels` claim). */
  channels?: string[];
}

export class TokenConfigError extends Error {
  readonly code = 'HERALD_TOKEN_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'TokenConfigError';
  }
}

function defaultSubject(session: SessionLike): string | undefined {
  const u = session.user;
  return u?.id || u?.email || u?.name || undefined;
}

export function checkSecret(secret: unknown): asserts secret is string {
  if (typeof secret !== 'string' || secret === '') {
    throw new TokenConfigError('mintToken needs { secret }: the HS256 secret Herald verifies with (HERALD_TOKEN_SECRET or NEXTAUTH_SECRET)');
  }
}

/** Mints the token; throws TokenConfigError when the session has no user id. */
export async function mintToken(session: SessionLike, options: MintTokenOptions): Promise<string> {
  checkSecret(options.secret);
  const sub = (options.subject ?? defaultSubject)(session);
  if (!sub) throw new TokenConfigError('the session has no user id, email or name to use as the token subject: pass { subject }');
  const ttl = options.ttlSeconds ?? 60;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new TokenConfigError(`ttlSeconds must be a positive number of seconds, got ${ttl}`);
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

export interface TokenRouteOptions extends MintTokenOptions {
  /** Reads the signed-in session, e.g. `() => getServerSession(authOptions)`; null or undefined means signed out. */
  getSession: (request: Request) => Promise<SessionLike | null | undefined> | SessionLike | null | undefined;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/**
 * A ready App Router handler: `export const GET = createTokenRoute({ secret, getSession })`. Answers
 * `{ token, expires }` for a signed-in user and 401 otherwise (the client then stops reconnecting).
 * Options are checked here, when the route module loads, so a missing secret fails at start, not per request.
 */
export function createTokenRoute(options: TokenRouteOptions): (request: Request) => Promise<Response> {
  checkSecret(options.secret);
  if (typeof options.getSession !== 'function') {
    throw new TokenConfigError('createTokenRoute needs { getSession }: a function returning the signed-in session, e.g. () => getServerSession(authOptions)');
  }
  return async (request: Request) => {
    const session = await options.getSession(request);
    if (!session?.user) return json(401, { error: 'not_signed_in', message: 'sign in to get a realtime token' });
    const token = await mintToken(session, options);
    return json(200, { token, expires: Math.floor(Date.now() / 1000) + Math.ceil(options.ttlSeconds ?? 60) });
  };
}
