/**
 * Why a token was refused. Every reason is stable: `herald doctor`, the browser client and docs/auth.md name them.
 * The table of reasons, codes and messages is mirrored in docs/auth.md.
 */
import { Disconnect, ErrorCode } from '../protocol/codes.js';

export type TokenErrorReason =
  | 'expired'
  | 'bad_signature'
  | 'malformed'
  | 'alg_not_allowed'
  | 'missing_exp'
  | 'bad_audience'
  | 'bad_issuer'
  | 'not_yet_valid'
  | 'unknown_kid'
  | 'no_key_configured'
  | 'wrong_token_type'
  | 'channel_mismatch'
  | 'user_mismatch'
  | 'client_mismatch'
  | 'claim_too_large'
  | 'jwks_unavailable';

const invalidToken = Disconnect.invalidToken.code;

/**
 * The protocol code for each reason.
 * - `expired` -> 109 (error reply "token expired"): every Centrifugo SDK fetches a new token and retries.
 * - `jwks_unavailable` -> 100 (error reply, temporary): the key server is down, not the token; the SDK retries
 *   with backoff instead of giving up for good.
 * - everything else -> 3500 (disconnect "invalid token"): terminal, the SDK does not reconnect with the same token.
 * Codes below 1000 are reply errors; 3500 is a disconnect (close code).
 */
export const tokenErrorCode: Readonly<Record<TokenErrorReason, number>> = {
  expired: ErrorCode.tokenExpired,
  bad_signature: invalidToken,
  malformed: invalidToken,
  alg_not_allowed: invalidToken,
  missing_exp: invalidToken,
  bad_audience: invalidToken,
  bad_issuer: invalidToken,
  not_yet_valid: invalidToken,
  unknown_kid: invalidToken,
  no_key_configured: invalidToken,
  wrong_token_type: invalidToken,
  channel_mismatch: invalidToken,
  user_mismatch: invalidToken,
  client_mismatch: invalidToken,
  claim_too_large: invalidToken,
  jwks_unavailable: ErrorCode.internal,
};

/** Short text for the WebSocket close reason (the protocol allows 123 bytes). Never holds client-supplied text. */
const shortReasons: Readonly<Record<TokenErrorReason, string>> = {
  expired: 'token expired',
  bad_signature: 'invalid token: bad signature',
  malformed: 'invalid token: malformed (not a signed JWT)',
  alg_not_allowed: 'invalid token: algorithm not allowed',
  missing_exp: 'invalid token: no exp claim (this server requires one)',
  bad_audience: 'invalid token: wrong audience (aud)',
  bad_issuer: 'invalid token: wrong issuer (iss)',
  not_yet_valid: 'invalid token: not yet valid (nbf in the future)',
  unknown_kid: 'invalid token: unknown key id (kid)',
  no_key_configured: 'invalid token: this server has no token key configured',
  wrong_token_type: 'invalid token: wrong token type',
  channel_mismatch: 'invalid token: channel claim does not match',
  user_mismatch: 'invalid token: sub does not match the connected user',
  client_mismatch: 'invalid token: client claim does not match',
  claim_too_large: 'invalid token: claim too large or too deep (HERALD_MAX_INFO_SIZE, HERALD_MAX_JSON_DEPTH)',
  jwks_unavailable: 'token keys unavailable',
};

/** The WebSocket close reason limit (RFC 6455: 125 bytes of control payload minus the 2-byte code). */
export const MAX_DISCONNECT_REASON_BYTES = 123;

export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = '';
  let used = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * A refused token. `message` says what happened and what to do; it is safe to show to the client (it never holds a
 * secret or a stack). `disconnectReason` fits a close frame.
 */
export class TokenError extends Error {
  readonly reason: TokenErrorReason;
  /** See `tokenErrorCode`. */
  readonly code: number;
  /** <= 123 bytes of UTF-8, for the close frame or the `disconnect` push. */
  readonly disconnectReason: string;
  /** Whether a retry with the same token can succeed (only when the key server was unreachable). */
  readonly temporary: boolean;

  constructor(reason: TokenErrorReason, message: string, disconnectReason?: string) {
    super(message);
    this.name = 'TokenError';
    this.reason = reason;
    this.code = tokenErrorCode[reason];
    this.temporary = reason === 'jwks_unavailable';
    this.disconnectReason = truncateUtf8(disconnectReason ?? shortReasons[reason], MAX_DISCONNECT_REASON_BYTES);
  }
}

/** True when the failure is answered with an error reply (109, 100) rather than a disconnect (3500). */
export function isReplyError(err: TokenError): boolean {
  return err.code < 1000;
}
