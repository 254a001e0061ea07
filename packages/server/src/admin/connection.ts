import { createHash } from 'node:crypto';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import type { HeraldHooks } from '../hooks.js';
import { Disconnect, ErrorCode, HeraldError } from '../protocol/codes.js';

/**
 * The admin UI's own Herald connection (docs/admin.md, "Security model"). The UI fetches a short-lived token from
 * POST <admin path>/api/token (session cookie required) and connects with the `centrifuge` SDK like any client. The
 * token is signed with admin.secret and carries `aud: herald-admin`, so it is told apart from the app's tokens
 * without trying the app's keys; the connection is user ADMIN_USER with a server-side subscription to
 * ADMIN_STATS_CHANNEL. Nobody else can subscribe to, publish to or read the `$admin` namespace.
 */
export const ADMIN_NAMESPACE = '$admin';
export const ADMIN_STATS_CHANNEL = `${ADMIN_NAMESPACE}:stats`;
export const ADMIN_USER = '$admin';
const AUDIENCE = 'herald-admin';
/** Lifetime of one admin connection token; the SDK asks for a new one before it ends. */
export const ADMIN_TOKEN_TTL_SEC = 10 * 60;

function keyOf(secret: string): Uint8Array {
  return createHash('sha256').update(`herald-admin-token:${secret}`).digest();
}

export async function mintAdminToken(secret: string, now = Date.now()): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(ADMIN_USER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ADMIN_TOKEN_TTL_SEC)
    .sign(keyOf(secret));
}

/** True when the token claims to be an admin token (its signature is not checked yet). */
function looksLikeAdminToken(token: string): boolean {
  try {
    const aud = decodeJwt(token).aud;
    return aud === AUDIENCE || (Array.isArray(aud) && aud.includes(AUDIENCE));
  } catch {
    return false;
  }
}

function isAdminChannel(channel: string): boolean {
  return channel.startsWith(`${ADMIN_NAMESPACE}:`);
}

/**
 * The app's hooks with the admin connection in front: an admin token is verified here (the app's onConnecting never
 * sees it); client subscriptions and publications to `$admin:*` are refused whatever the namespace rules say
 * (client.insecure grants everything else).
 */
export function withAdminHooks(hooks: HeraldHooks, secret: string): HeraldHooks {
  const key = keyOf(secret);
  return {
    ...hooks,
    async onConnecting(ctx) {
      if (ctx.token && looksLikeAdminToken(ctx.token)) {
        try {
          const { payload } = await jwtVerify(ctx.token, key, { audience: AUDIENCE, algorithms: ['HS256'] });
          return { user: ADMIN_USER, channels: [ADMIN_STATS_CHANNEL], expireAt: payload.exp };
        } catch {
          return { disconnect: Disconnect.invalidToken };
        }
      }
      return hooks.onConnecting?.(ctx);
    },
    async onSubscribe(ctx) {
      if (isAdminChannel(ctx.channel))
        throw new HeraldError(ErrorCode.permissionDenied, `permission denied: "${ctx.channel}" is the admin UI's own`);
      return hooks.onSubscribe?.(ctx);
    },
    async onPublish(ctx) {
      if (isAdminChannel(ctx.channel))
        throw new HeraldError(ErrorCode.permissionDenied, `permission denied: "${ctx.channel}" is the admin UI's own`);
      return hooks.onPublish?.(ctx);
    },
  };
}
