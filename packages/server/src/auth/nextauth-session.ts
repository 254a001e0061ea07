/**
 * Reads a NextAuth (next-auth v4) or Auth.js (v5) session cookie from a raw Cookie header, so a WebSocket upgrade
 * from the same site can be authenticated by the session itself (the upgrade's IncomingMessage has no parsed
 * cookies). Facts: shared design nextjs-integration.md, "NextAuth / Auth.js session tokens".
 *
 * - next-auth v4: compact JWE {alg:"dir", enc:"A256GCM"}; key = HKDF-SHA256(ikm = secret, salt = "",
 *   info = "NextAuth.js Generated Encryption Key", 32 bytes). Cookie `next-auth.session-token`
 *   (`__Secure-` prefix on https).
 * - Auth.js v5: enc "A256CBC-HS512" (64-byte key) or "A256GCM" (32 bytes); salt = the cookie name,
 *   info = "Auth.js Generated Encryption Key (<salt>)". Cookie `authjs.session-token` (`__Secure-` on https).
 *   The secret may be a list (rotation): each is tried.
 * - Both chunk a cookie longer than 4096 bytes into `<name>.0`, `<name>.1`, ... which are joined in index order.
 *
 * Use it only together with an Origin allowlist on the upgrade: WebSockets have no CORS, so a cookie alone would
 * let another site's page open a socket as the user (Cross-Site WebSocket Hijacking).
 */
import { hkdfSync } from 'node:crypto';
import { errors as joseErrors, jwtDecrypt } from 'jose';

const V4_INFO = 'NextAuth.js Generated Encryption Key';
const v5Info = (salt: string) => `Auth.js Generated Encryption Key (${salt})`;

/** Matches next-auth and Auth.js, which both decode with a 15 s tolerance. */
const SESSION_CLOCK_TOLERANCE_SEC = 15;
/** Browsers cap a cookie at 4 KB and a site at a few dozen cookies; a session beyond this is not one. */
const MAX_SESSION_TOKEN_CHARS = 64 * 1024;

type Family = 'next-auth-v4' | 'authjs-v5';

const DEFAULT_COOKIES: ReadonlyArray<{ name: string; family: Family }> = [
  { name: '__Secure-authjs.session-token', family: 'authjs-v5' },
  { name: 'authjs.session-token', family: 'authjs-v5' },
  { name: '__Secure-next-auth.session-token', family: 'next-auth-v4' },
  { name: 'next-auth.session-token', family: 'next-auth-v4' },
];

/**
 * Parses a Cookie request header into name -> value (RFC 6265 `name=value; name2=value2`). The first occurrence
 * of a name wins (browsers send the most specific path first). Values in double quotes are unquoted and
 * percent-decoding is applied when valid. A Map, so a cookie named `__proto__` is just a key.
 */
export function parseCookieHeader(header: string | undefined | null): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof header !== 'string' || header === '') return out;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const name = pair.slice(0, eq).trim();
    if (name === '' || out.has(name)) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value.includes('%')) {
      try {
        value = decodeURIComponent(value);
      } catch {
        // not percent-encoded after all: keep the raw text
      }
    }
    out.set(name, value);
  }
  return out;
}

/** The cookie's value, or the `.0`, `.1`, ... chunks joined in index order. */
function readChunked(cookies: Map<string, string>, name: string): string | undefined {
  const whole = cookies.get(name);
  if (whole !== undefined && whole !== '') return whole;
  const chunks: Array<[number, string]> = [];
  const prefix = `${name}.`;
  for (const [key, value] of cookies) {
    if (!key.startsWith(prefix)) continue;
    const suffix = key.slice(prefix.length);
    if (!/^\d{1,4}$/.test(suffix)) continue;
    chunks.push([Number(suffix), value]);
  }
  if (chunks.length === 0) return undefined;
  chunks.sort((a, b) => a[0] - b[0]);
  return chunks.map(([, v]) => v).join('');
}

function deriveKey(family: Family, secret: string, cookieName: string, enc: unknown): Uint8Array {
  if (family === 'next-auth-v4') return new Uint8Array(hkdfSync('sha256', secret, '', V4_INFO, 32));
  const length = enc === 'A256CBC-HS512' ? 64 : 32;
  return new Uint8Array(hkdfSync('sha256', secret, cookieName, v5Info(cookieName), length));
}

export interface NextAuthSession {
  /** The `sub` claim: the account id next-auth gives each user. Never the email, which two accounts may share. */
  user: string;
  /** Every top-level claim of the session token, in a prototype-less object (`__proto__` keys dropped). */
  claims: Record<string, unknown>;
}

export type NextAuthSessionFailure = 'no_cookie' | 'bad_secret' | 'expired' | 'malformed' | 'no_user';

export type NextAuthSessionResult =
  | { ok: true; session: NextAuthSession; cookieName: string; format: Family }
  | { ok: false; reason: NextAuthSessionFailure; message: string; cookieName?: string };

export interface NextAuthSessionOptions {
  /**
   * A custom session cookie name (next-auth `cookies.sessionToken.name`). Tried with both key derivations.
   * @default the four standard names: (__Secure-)authjs.session-token, (__Secure-)next-auth.session-token
   */
  cookieName?: string;
}

function copyClaims(payload: Record<string, unknown>): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(payload)) {
    if (key !== '__proto__') out[key] = payload[key];
  }
  return out;
}

function userOf(payload: Record<string, unknown>): string | undefined {
  const sub = Object.hasOwn(payload, 'sub') ? payload.sub : undefined;
  if (typeof sub === 'string' && sub !== '') return sub;
  // No fallback to `email` or `name`: two accounts (or two providers) can report one email, and then would share
  // one identity and each other's user-limited channels.
  return undefined;
}

function secretsOf(secret: string | readonly string[]): string[] {
  const list = (Array.isArray(secret) ? secret : [secret]).filter(
    (s): s is string => typeof s === 'string' && s !== '',
  );
  if (list.length === 0) {
    throw new TypeError(
      'decoding a NextAuth session needs the secret (AUTH_SECRET or NEXTAUTH_SECRET); none was given',
    );
  }
  return list;
}

type Attempt =
  | { kind: 'ok'; payload: Record<string, unknown> }
  | { kind: 'expired' }
  | { kind: 'bad_secret' }
  | { kind: 'malformed'; why: string };

async function tryDecrypt(token: string, family: Family, cookieName: string, secret: string): Promise<Attempt> {
  try {
    const { payload } = await jwtDecrypt(token, (header) => deriveKey(family, secret, cookieName, header.enc), {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: family === 'next-auth-v4' ? ['A256GCM'] : ['A256CBC-HS512', 'A256GCM'],
      clockTolerance: SESSION_CLOCK_TOLERANCE_SEC,
      requiredClaims: ['exp'],
    });
    return { kind: 'ok', payload: payload as Record<string, unknown> };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { kind: 'expired' };
    if (err instanceof joseErrors.JWEDecryptionFailed) return { kind: 'bad_secret' };
    // A key of the wrong length for the header's enc also means "not this derivation".
    if (err instanceof joseErrors.JWEInvalid && /key length/i.test(err.message)) return { kind: 'bad_secret' };
    const why = err instanceof Error ? err.message.slice(0, 120) : 'unknown error';
    return { kind: 'malformed', why };
  }
}

/**
 * Decodes the session cookie and says why not when it cannot: for `herald doctor` and for logs.
 * Rejects (TypeError) only when no secret is given; every cookie problem is a `{ ok: false }` result.
 */
export async function inspectNextAuthSession(
  cookieHeader: string | undefined | null,
  secret: string | readonly string[],
  options: NextAuthSessionOptions = {},
): Promise<NextAuthSessionResult> {
  const secrets = secretsOf(secret);
  const cookies = parseCookieHeader(cookieHeader);
  const candidates: Array<{ name: string; family: Family }> =
    options.cookieName !== undefined
      ? [
          { name: options.cookieName, family: 'authjs-v5' },
          { name: options.cookieName, family: 'next-auth-v4' },
        ]
      : [...DEFAULT_COOKIES];

  let last: NextAuthSessionResult | undefined;
  for (const { name, family } of candidates) {
    const token = readChunked(cookies, name);
    if (token === undefined) continue;
    if (token.length > MAX_SESSION_TOKEN_CHARS || token.split('.').length !== 5) {
      last = {
        ok: false,
        reason: 'malformed',
        cookieName: name,
        message: `cookie ${name} does not hold a JWE session token`,
      };
      continue;
    }
    for (const s of secrets) {
      const attempt = await tryDecrypt(token, family, name, s);
      if (attempt.kind === 'ok') {
        const user = userOf(attempt.payload);
        if (user === undefined) {
          return {
            ok: false,
            reason: 'no_user',
            cookieName: name,
            message: `the session in ${name} has no sub claim: set token.sub to the account id in next-auth's jwt callback`,
          };
        }
        return { ok: true, session: { user, claims: copyClaims(attempt.payload) }, cookieName: name, format: family };
      }
      if (attempt.kind === 'expired') {
        return {
          ok: false,
          reason: 'expired',
          cookieName: name,
          message: `the session in ${name} has expired: sign in again`,
        };
      }
      if (attempt.kind === 'malformed') {
        last = {
          ok: false,
          reason: 'malformed',
          cookieName: name,
          message: `cookie ${name} could not be decoded (${attempt.why})`,
        };
        break;
      }
      last = {
        ok: false,
        reason: 'bad_secret',
        cookieName: name,
        message:
          `the session in ${name} was encrypted with a different secret: give Herald the app's AUTH_SECRET / ` +
          'NEXTAUTH_SECRET (with rotation, every current secret)',
      };
    }
  }
  return (
    last ?? {
      ok: false,
      reason: 'no_cookie',
      message:
        'no session cookie (authjs.session-token or next-auth.session-token) in the request: is the user signed ' +
        'in, and does the WebSocket URL share the site of the app (cookies follow the host)?',
    }
  );
}

/** The session's user and claims, or null when there is no valid session cookie. */
export async function decodeNextAuthSession(
  cookieHeader: string | undefined | null,
  secret: string | readonly string[],
  options: NextAuthSessionOptions = {},
): Promise<NextAuthSession | null> {
  const result = await inspectNextAuthSession(cookieHeader, secret, options);
  return result.ok ? result.session : null;
}
