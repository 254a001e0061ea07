/** Auth: connection and subscription tokens -> credentials (jose); NextAuth / Auth.js session cookies. */
export {
  createTokenAuth,
  DEFAULT_CLOCK_TOLERANCE_SEC,
  DEFAULT_MAX_TOKEN_BYTES,
  type TokenAuth,
  type TokenAuthOptions,
} from './token-auth.js';
export type { ConnectionCredentials } from './connection-token.js';
export type { SubscriptionCredentials, SubscriptionExpectation } from './subscription-token.js';
export {
  isReplyError,
  MAX_DISCONNECT_REASON_BYTES,
  TokenError,
  tokenErrorCode,
  type TokenErrorReason,
} from './errors.js';
export { loadPublicKey, parsePublicKey } from './keys.js';
export {
  decodeNextAuthSession,
  inspectNextAuthSession,
  parseCookieHeader,
  type NextAuthSession,
  type NextAuthSessionFailure,
  type NextAuthSessionOptions,
  type NextAuthSessionResult,
} from './nextauth-session.js';
