/**
 * Connection tokens: a JWT the application mints for one user, sent in the `connect` command.
 * Claims follow Centrifugo's connection token (centrifugal.dev "server/authentication"): `sub`, `exp`,
 * `expire_at`, `info` / `b64info`, `channels`, `subs`, `meta`, plus `aud` / `iss` when configured.
 */
import { TokenError } from './errors.js';
import { expireAtOf, jsonTextOf, optionalString, own, subjectOf, type ClaimLimits, type Claims } from './jwt.js';

export interface ConnectionCredentials {
  /** The `sub` claim; '' is Centrifugo's anonymous user id. */
  user: string;
  /** Seconds since the epoch when the connection expires (`expire_at` when present, else `exp`); absent = never. */
  expireAt?: number;
  /** JSON text of the `info` claim (or the decoded `b64info`), embedded raw as `conn_info`. */
  info?: string;
  /** Server-side subscriptions: the `channels` claim. */
  channels?: string[];
  /** Centrifugo's `subs` claim: server-side subscriptions with per-channel `info` / `data` as JSON text. */
  subs?: Record<string, { info?: string; data?: string }>;
  /** The `meta` claim as parsed JSON: never sent to clients; treat as untrusted data, never merge it into objects. */
  meta?: unknown;
}

function malformed(what: string): TokenError {
  return new TokenError('malformed', what);
}

function channelsOf(claims: Claims): string[] | undefined {
  const v = own(claims, 'channels');
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((c): c is string => typeof c === 'string')) {
    throw malformed('the "channels" claim must be an array of channel names');
  }
  return [...v];
}

function subsOf(claims: Claims, limits: ClaimLimits): Record<string, { info?: string; data?: string }> | undefined {
  const v = own(claims, 'subs');
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw malformed('the "subs" claim must be an object: channel -> options');
  // A prototype-less record: a channel key can never reach Object.prototype. "__proto__" is no channel name anyone
  // uses and is the one key a later Object.assign would turn into a prototype change, so it is dropped.
  const out = Object.create(null) as Record<string, { info?: string; data?: string }>;
  for (const channel of Object.keys(v)) {
    if (channel === '__proto__') continue;
    const opts = (v as Record<string, unknown>)[channel];
    if (opts === null || opts === undefined) {
      out[channel] = {};
      continue;
    }
    if (typeof opts !== 'object' || Array.isArray(opts)) {
      throw malformed(`the "subs" claim entry for a channel must be an object`);
    }
    const entry: { info?: string; data?: string } = {};
    const info = jsonTextOf(opts as Record<string, unknown>, 'info', 'field of a "subs" entry', limits);
    // `data` goes only to this client, in its own connect reply: bounded by the token's size, compacted all the same.
    const data = jsonTextOf(opts as Record<string, unknown>, 'data', 'field of a "subs" entry', {
      maxDepth: limits.maxDepth,
    });
    if (info !== undefined) entry.info = info;
    if (data !== undefined) entry.data = data;
    out[channel] = entry;
  }
  return out;
}

/**
 * Turns verified claims into connection credentials, copying only the known claims. `limits` bound the raw-JSON
 * claims other clients see (`info`, `subs` entries' `info`). Throws TokenError.
 */
export function connectionCredentialsFrom(
  claims: Claims,
  clockToleranceSec: number,
  limits: ClaimLimits = {},
): ConnectionCredentials {
  const channel = optionalString(claims, 'channel');
  if (channel !== undefined && channel !== '') {
    throw new TokenError(
      'wrong_token_type',
      'this is a subscription token (it has a "channel" claim): connect needs a connection token (sub, exp, no channel)',
      'invalid token: subscription token used to connect',
    );
  }
  const creds: ConnectionCredentials = { user: subjectOf(claims) };
  const expireAt = expireAtOf(claims, clockToleranceSec);
  if (expireAt !== undefined) creds.expireAt = expireAt;
  const info = jsonTextOf(claims, 'info', 'claim', limits);
  if (info !== undefined) creds.info = info;
  const channels = channelsOf(claims);
  if (channels !== undefined) creds.channels = channels;
  const subs = subsOf(claims, limits);
  if (subs !== undefined) creds.subs = subs;
  const meta = own(claims, 'meta');
  if (meta !== undefined) creds.meta = meta;
  return creds;
}
