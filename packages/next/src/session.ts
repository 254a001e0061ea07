import { decodeProtectedHeader, errors as joseErrors, jwtDecrypt } from 'jose';

/**
 * Reads the signed-in user's id from a next-auth v4 or Auth.js v5 session cookie: the session JWT's `sub`. The token
 * route (`createTokenRoute`, `mintToken`) and the cookie hook (`nextAuthCookieAuth`) both take the user id from here,
 * so one person has one id whichever path connects them, and the id is never an email or a display name (two
 * accounts can share those). Web Crypto only, so it also runs in the Edge runtime.
 *
 * - next-auth v4: compact JWE {alg:"dir", enc:"A256GCM"}; key = HKDF-SHA256(secret, salt "", info
 *   "NextAuth.js Generated Encryption Key", 32 bytes). Cookie `next-auth.session-token` (`__Secure-` on https).
 * - Auth.js v5: enc "A256CBC-HS512" (64-byte key) or "A256GCM" (32); salt = the cookie name, info
 *   "Auth.js Generated Encryption Key (<cookie name>)". Cookie `authjs.session-token` (`__Secure-` on https).
 * - Either splits a cookie above 4096 bytes into `<name>.0`, `<name>.1`, ..., joined here in index order.
 */

type Family = 'next-auth-v4' | 'authjs-v5';

const V4_INFO = 'NextAuth.js Generated Encryption Key';
/** next-auth and Auth.js decode their own session with a 15 s tolerance. */
const CLOCK_TOLERANCE_SEC = 15;
/** Browsers cap a cookie at 4 KB and a site at a few dozen cookies; a session beyond this is not one. */
const MAX_SESSION_TOKEN_CHARS = 64 * 1024;

const DEFAULT_COOKIES: ReadonlyArray<{ name: string; family: Family }> = [
  { name: '__Secure-authjs.session-token', family: 'authjs-v5' },
  { name: 'authjs.session-token', family: 'authjs-v5' },
  { name: '__Secure-next-auth.session-token', family: 'next-auth-v4' },
  { name: 'next-auth.session-token', family: 'next-auth-v4' },
];

export type SessionSubjectFailure =
  /** No session cookie in the request. */
  | 'no_cookie'
  /** The session cookie is not a JWE: a database session (its cookie is an opaque id), or garbage. */
  | 'not_a_jwt'
  /** The session cookie is a JWE this secret does not open. */
  | 'bad_secret'
  | 'expired'
  /** The session JWT decodes but carries no `sub`. */
  | 'no_sub';

export type SessionClaimsResult =
  | { ok: true; claims: Record<string, unknown>; cookieName: string }
  | { ok: false; reason: Exclude<SessionSubjectFailure, 'no_sub'>; message: string };

export type SessionSubjectResult =
  | { ok: true; subject: string; claims: Record<string, unknown>; cookieName: string }
  | { ok: false; reason: SessionSubjectFailure; message: string };

export interface SessionCookieOptions {
  /** A custom session cookie name (next-auth `cookies.sessionToken.name`). @default the v4 and v5 names */
  cookieName?: string;
}

function cookieMap(header: string | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof header !== 'string') return out;
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
        // not percent-encoded after all
      }
    }
    out.set(name, value);
  }
  return out;
}

function readChunked(cookies: Map<string, string>, name: string): string | undefined {
  const whole = cookies.get(name);
  if (whole !== undefined && whole !== '') return whole;
  const chunks: Array<[number, string]> = [];
  for (const [key, value] of cookies) {
    if (!key.startsWith(`${name}.`)) continue;
    const suffix = key.slice(name.length + 1);
    if (/^\d{1,4}$/.test(suffix)) chunks.push([Number(suffix), value]);
  }
  if (chunks.length === 0) return undefined;
  return chunks
    .sort((a, b) => a[0] - b[0])
    .map(([, v]) => v)
    .join('');
}

async function deriveKey(family: Family, secret: string, cookieName: string, enc: unknown): Promise<Uint8Array> {
  const te = new TextEncoder();
  const base = await crypto.subtle.importKey('raw', te.encode(secret), 'HKDF', false, ['deriveBits']);
  const v4 = family === 'next-auth-v4';
  const bytes = !v4 && enc === 'A256CBC-HS512' ? 64 : 32;
  const bits = await crypto.subtle.deriveBits(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: te.encode(v4 ? '' : cookieName),
      info: te.encode(v4 ? V4_INFO : `Auth.js Generated Encryption Key (${cookieName})`),
    },
    base,
    bytes * 8,
  );
  return new Uint8Array(bits);
}

type Attempt =
  | { kind: 'ok'; claims: Record<string, unknown> }
  | { kind: 'expired' }
  | { kind: 'bad_secret' }
  | { kind: 'malformed' };

async function tryDecrypt(token: string, family: Family, cookieName: string, secret: string): Promise<Attempt> {
  try {
    const key = await deriveKey(family, secret, cookieName, decodeProtectedHeader(token).enc);
    const { payload } = await jwtDecrypt(token, key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: family === 'next-auth-v4' ? ['A256GCM'] : ['A256CBC-HS512', 'A256GCM'],
      clockTolerance: CLOCK_TOLERANCE_SEC,
      requiredClaims: ['exp'],
    });
    // Claims are data: a prototype-less copy, `__proto__` dropped.
    const claims = Object.create(null) as Record<string, unknown>;
    for (const k of Object.keys(payload)) if (k !== '__proto__') claims[k] = (payload as Record<string, unknown>)[k];
    return { kind: 'ok', claims };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { kind: 'expired' };
    if (err instanceof joseErrors.JWEDecryptionFailed) return { kind: 'bad_secret' };
    if (err instanceof joseErrors.JWEInvalid && /key length/i.test(err.message)) return { kind: 'bad_secret' };
    return { kind: 'malformed' };
  }
}

/** The session JWT's `sub` when it is a non-empty string; never the email or the name. */
export function subjectOfClaims(claims: Record<string, unknown>): string | undefined {
  const sub = Object.hasOwn(claims, 'sub') ? claims.sub : undefined;
  return typeof sub === 'string' && sub !== '' ? sub : undefined;
}

/** Decodes the session cookie in a raw Cookie header and returns its `sub`, or why there is none. */
export async function readSessionSubject(
  cookieHeader: string | null | undefined,
  secrets: readonly string[],
  options: SessionCookieOptions = {},
): Promise<SessionSubjectResult> {
  const read = await readSessionClaims(cookieHeader, secrets, options);
  if (!read.ok) return read;
  const subject = subjectOfClaims(read.claims);
  if (subject === undefined) {
    return {
      ok: false,
      reason: 'no_sub',
      message:
        `the session JWT in ${read.cookieName} has no sub: return an id from the provider's profile() or authorize(), ` +
        'or set token.sub in the jwt callback',
    };
  }
  return { ok: true, subject, claims: read.claims, cookieName: read.cookieName };
}

/** Decodes the session cookie in a raw Cookie header: the session JWT's claims, or why there are none. */
export async function readSessionClaims(
  cookieHeader: string | null | undefined,
  secrets: readonly string[],
  options: SessionCookieOptions = {},
): Promise<SessionClaimsResult> {
  const cookies = cookieMap(cookieHeader);
  const candidates =
    options.cookieName !== undefined
      ? [
          { name: options.cookieName, family: 'authjs-v5' as const },
          { name: options.cookieName, family: 'next-auth-v4' as const },
        ]
      : DEFAULT_COOKIES;
  let failure: SessionClaimsResult | undefined;
  for (const { name, family } of candidates) {
    const token = readChunked(cookies, name);
    if (token === undefined) continue;
    if (token.length > MAX_SESSION_TOKEN_CHARS || token.split('.').length !== 5) {
      failure ??= {
        ok: false,
        reason: 'not_a_jwt',
        message: `the session cookie ${name} is not a session JWT (database sessions keep only an id in it)`,
      };
      continue;
    }
    for (const secret of secrets) {
      const attempt = await tryDecrypt(token, family, name, secret);
      if (attempt.kind === 'ok') return { ok: true, claims: attempt.claims, cookieName: name };
      if (attempt.kind === 'expired')
        return { ok: false, reason: 'expired', message: `the session in ${name} has expired: sign in again` };
      if (attempt.kind === 'malformed') {
        failure = {
          ok: false,
          reason: 'not_a_jwt',
          message: `the session cookie ${name} could not be decoded as a session JWT`,
        };
        break;
      }
      failure = {
        ok: false,
        reason: 'bad_secret',
        message: `the session in ${name} is encrypted with another secret than the one given (the app's AUTH_SECRET / NEXTAUTH_SECRET)`,
      };
    }
  }
  return (
    failure ?? {
      ok: false,
      reason: 'no_cookie',
      message: 'the request carries no session cookie (authjs.session-token or next-auth.session-token)',
    }
  );
}
