import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The admin session cookie: `<expires ms>.<nonce>.<HMAC-SHA256 of both>` signed with admin.secret. Stateless, so every
 * node sharing the secret accepts it; verified in constant time.
 */
export const ADMIN_COOKIE = 'herald_admin';
/** How long a login lasts. */
export const ADMIN_SESSION_MS = 8 * 60 * 60 * 1000;

function mac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(`herald-admin-session:${payload}`).digest();
}

export function signSession(secret: string, now = Date.now()): string {
  const payload = `${now + ADMIN_SESSION_MS}.${randomBytes(12).toString('base64url')}`;
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

/** True for a cookie value this secret signed that has not expired. */
export function verifySession(secret: string, value: string | undefined, now = Date.now()): boolean {
  if (!value || value.length > 200) return false;
  const dot = value.lastIndexOf('.');
  if (dot < 0) return false;
  const payload = value.slice(0, dot);
  const text = value.slice(dot + 1);
  const given = Buffer.from(text, 'base64url');
  // One text per signature: base64url's unused last bits must not make several cookie values that all verify.
  if (given.toString('base64url') !== text) return false;
  const expected = mac(secret, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
  const expires = Number(payload.split('.')[0]);
  return Number.isFinite(expires) && expires > now;
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Constant-time password check: both sides are hashed first, so their lengths leak nothing either. */
export function passwordMatches(given: string, expected: string): boolean {
  const a = createHmac('sha256', 'herald-admin-password').update(given).digest();
  const b = createHmac('sha256', 'herald-admin-password').update(expected).digest();
  return timingSafeEqual(a, b);
}
