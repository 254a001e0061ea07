import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { SharedPollConfig } from '../config/shared-poll.js';

/**
 * The signature an app's backend gives a client for the keys it may track in a shared poll channel (Centrifugo v6.8,
 * as centrifuge-js's suite signs it): `iat:exp:hex`, where hex is HMAC-SHA256 under `shared_poll.hmac_secret_key` of
 * `iat NUL exp NUL user NUL channel NUL sha256hex(keys joined by NUL)`, keys in the order the client sends them.
 * NUL separators keep a colon in a user ID or channel from shifting into the next field. `exp` 0 never expires.
 */

/** A signature this long past its `exp` is still taken (clock skew between the app's backend and Herald). */
export const SIGNATURE_GRACE_SEC = 30;

export type SignatureCheck =
  | { ok: true; /** Unix seconds; 0 never expires. */ exp: number }
  | { ok: false; why: 'malformed' | 'mismatch' | 'expired' | 'not_yet_valid' };

const SIG = /^(\d{1,12}):(\d{1,12}):([0-9a-f]{64})$/;

/** What a backend signs for `keys` (exported for tests and for apps that sign in TypeScript). */
export function signSharedPollKeys(
  secret: string,
  p: { iat: number; exp: number; user: string; channel: string; keys: readonly string[] },
): string {
  const mac = createHmac('sha256', secret)
    .update(payload(p.iat, p.exp, p.user, p.channel, p.keys))
    .digest('hex');
  return `${p.iat}:${p.exp}:${mac}`;
}

function payload(iat: number, exp: number, user: string, channel: string, keys: readonly string[]): string {
  const keysHash = createHash('sha256').update(keys.join('\0')).digest('hex');
  return `${iat}\0${exp}\0${user}\0${channel}\0${keysHash}`;
}

function matches(secret: string, text: string, mac: Buffer): boolean {
  const want = createHmac('sha256', secret).update(text).digest();
  return want.length === mac.length && timingSafeEqual(want, mac);
}

export function checkSharedPollSignature(
  config: SharedPollConfig,
  signature: string,
  p: { user: string; channel: string; keys: readonly string[]; nowSec: number },
): SignatureCheck {
  const m = SIG.exec(signature);
  if (!m) return { ok: false, why: 'malformed' };
  const iat = Number(m[1]);
  const exp = Number(m[2]);
  const mac = Buffer.from(m[3]!, 'hex');
  const text = payload(iat, exp, p.user, p.channel, p.keys);
  let ok = config.secret !== '' && matches(config.secret, text, mac);
  if (!ok && config.previousSecret !== '') {
    const inWindow = config.previousValidUntil === 0 || iat <= config.previousValidUntil;
    ok = inWindow && matches(config.previousSecret, text, mac);
  }
  if (!ok) return { ok: false, why: 'mismatch' };
  if (iat > p.nowSec + SIGNATURE_GRACE_SEC) return { ok: false, why: 'not_yet_valid' };
  if (exp !== 0 && exp + SIGNATURE_GRACE_SEC < p.nowSec) return { ok: false, why: 'expired' };
  return { ok: true, exp };
}
