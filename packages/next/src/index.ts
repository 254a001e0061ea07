export { mintToken, createTokenRoute, TokenConfigError, type MintTokenOptions, type TokenRouteOptions, type SessionLike } from './token.js';
