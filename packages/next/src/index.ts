export {
  mintToken,
  createTokenRoute,
  TokenConfigError,
  type MintTokenOptions,
  type TokenRouteOptions,
  type SessionLike,
  type TokenConfigReason,
} from './token.js';
