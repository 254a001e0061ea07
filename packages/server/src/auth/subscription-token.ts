/**
 * Subscription tokens (Centrifugo's channel token, centrifugal.dev "server/channel_token_auth"): a JWT the
 * application mints for one user and one channel, sent in `subscribe` / `sub_refresh`.
 * Claims: `sub` (= the connection's user), `channel` (= the requested channel), `exp`, `expire_at`,
 * `info` / `b64info`, and `aud` / `iss` when configured. A `client` claim (Centrifugo v3 channel tokens), when
 * present, must name this connection's client id.
 */
import { TokenError } from './errors.js';
import { expireAtOf, jsonTextOf, optionalString, subjectOf, type ClaimLimits, type Claims } from './jwt.js';

export interface SubscriptionCredentials {
  /** Seconds since the epoch when the subscription expires (`expire_at` when present, else `exp`); absent = never. */
  expireAt?: number;
  /** JSON text of `info` (or the decoded `b64info`), embedded raw as `chan_info`. */
  info?: string;
}

export interface SubscriptionExpectation {
  client: string;
  user: string;
  channel: string;
}

/** Short quoted text for messages; user ids and channels can be long. */
function q(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

/** Checks the claims against the subscribe request and copies what the session needs. Throws TokenError. */
export function subscriptionCredentialsFrom(
  claims: Claims,
  expect: SubscriptionExpectation,
  clockToleranceSec: number,
  limits: ClaimLimits = {},
): SubscriptionCredentials {
  const channel = optionalString(claims, 'channel');
  if (channel === undefined || channel === '') {
    throw new TokenError(
      'wrong_token_type',
      `the token has no "channel" claim (a connection token?): subscribing to ${q(expect.channel)} needs a ` +
        'subscription token with sub and channel claims',
      'invalid token: connection token used to subscribe',
    );
  }
  if (channel !== expect.channel) {
    throw new TokenError(
      'channel_mismatch',
      `the token is for channel ${q(channel)}, not ${q(expect.channel)}: mint a token for the channel being subscribed`,
    );
  }
  const sub = subjectOf(claims);
  if (sub !== expect.user) {
    throw new TokenError(
      'user_mismatch',
      `the token's sub ${q(sub)} is not the connected user ${q(expect.user)}: mint the subscription token for the ` +
        'same user as the connection token',
    );
  }
  const client = optionalString(claims, 'client');
  if (client !== undefined && client !== '' && client !== expect.client) {
    throw new TokenError(
      'client_mismatch',
      "the token's client claim names another connection: mint it for this client id, or leave client out",
    );
  }
  const creds: SubscriptionCredentials = {};
  const expireAt = expireAtOf(claims, clockToleranceSec);
  if (expireAt !== undefined) creds.expireAt = expireAt;
  const info = jsonTextOf(claims, 'info', 'claim', limits);
  if (info !== undefined) creds.info = info;
  return creds;
}
