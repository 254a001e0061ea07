/**
 * Every code a client or operator can meet, in one table. Mirrored by docs/codes.md.
 * Numbers follow the Centrifugo client protocol so that every Centrifugo SDK reacts to them as designed
 * (see shared design: client-protocol.md, "Codes").
 */

/** Error codes carried in command replies: `{"id":N,"error":{"code":C,"message":"..."}}`. */
export const ErrorCode = {
  internal: 100,
  unauthorized: 101,
  unknownChannel: 102,
  permissionDenied: 103,
  methodNotFound: 104,
  alreadySubscribed: 105,
  limitExceeded: 106,
  badRequest: 107,
  notAvailable: 108,
  tokenExpired: 109,
  expired: 110,
  tooManyRequests: 111,
  unrecoverablePosition: 112,
  concurrentPagination: 113,
  /** Herald: a proxy backend did not answer in time, refused the connection, answered a non-200 status, or is busy. */
  proxyUnavailable: 150,
  /** Herald: a proxy backend answered something that is not its JSON shape (not JSON, too large, wrong fields). */
  proxyInvalidAnswer: 151,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ReplyErrorInfo {
  code: number;
  message: string;
  temporary?: boolean;
}

/** The default message for each error code; callers may pass a more precise one. */
export const errorMessages: Readonly<Record<number, string>> = {
  100: 'internal server error',
  101: 'unauthorized',
  102: 'unknown channel',
  103: 'permission denied',
  104: 'method not found',
  105: 'already subscribed',
  106: 'limit exceeded',
  107: 'bad request',
  108: 'not available',
  109: 'token expired',
  110: 'expired',
  111: 'too many requests',
  112: 'unrecoverable position',
  113: 'concurrent pagination',
  150: 'proxy unavailable',
  151: 'proxy answer invalid',
};

const temporaryErrors = new Set<number>([
  ErrorCode.internal,
  ErrorCode.tooManyRequests,
  ErrorCode.concurrentPagination,
  ErrorCode.proxyUnavailable,
  ErrorCode.proxyInvalidAnswer,
]);

/** A failure with a stable protocol code; thrown inside the server and turned into an error reply at the edge. */
export class HeraldError extends Error {
  readonly code: number;
  readonly temporary: boolean;
  constructor(code: number, message?: string, temporary?: boolean) {
    super(message ?? errorMessages[code] ?? 'error');
    this.name = 'HeraldError';
    this.code = code;
    this.temporary = temporary ?? temporaryErrors.has(code);
  }
  toReply(): ReplyErrorInfo {
    return this.temporary
      ? { code: this.code, message: this.message, temporary: true }
      : { code: this.code, message: this.message };
  }
}

/**
 * A failure that closes the connection instead of answering the command (a proxy backend's `disconnect`, or a connect
 * proxy that failed): the session closes with `disconnect`.
 */
export class HeraldDisconnect extends Error {
  readonly disconnect: DisconnectInfo;
  constructor(disconnect: DisconnectInfo) {
    super(disconnect.reason);
    this.name = 'HeraldDisconnect';
    this.disconnect = disconnect;
  }
}

/** Unsubscribe push codes: < 2500 terminal, >= 2500 make the SDK resubscribe. */
export const UnsubscribeCode = {
  /** The client unsubscribed itself (never pushed; what onUnsubscribe and the unsubscribe webhook event report). */
  client: 0,
  server: 2000,
  insufficientState: 2500,
  expired: 2501,
  stateInvalidated: 2502,
} as const;

export interface DisconnectInfo {
  code: number;
  reason: string;
}

/**
 * Disconnect codes, sent as the WebSocket close code (reason <= 123 bytes).
 * 3000-3499 reconnect, 3500-3999 terminal; 1009 (message too big) is terminal too.
 */
export const Disconnect = {
  shutdown: { code: 3001, reason: 'shutdown' },
  serverError: { code: 3004, reason: 'internal server error' },
  expired: { code: 3005, reason: 'connection expired' },
  subExpired: { code: 3006, reason: 'subscription expired' },
  slow: { code: 3008, reason: 'slow' },
  writeError: { code: 3009, reason: 'write error' },
  insufficientState: { code: 3010, reason: 'insufficient state' },
  forceReconnect: { code: 3011, reason: 'force reconnect' },
  noPong: { code: 3012, reason: 'no pong' },
  tooManyRequests: { code: 3013, reason: 'too many requests' },
  reconnectWithFreshToken: { code: 3014, reason: 'reconnect with fresh token' },
  /** Herald: the connect proxy did not answer in time, refused the connection, answered non-200, or is busy. */
  proxyUnavailable: { code: 3050, reason: 'connect proxy unavailable' },
  /** Herald: the connect proxy answered something that is not its JSON shape. */
  proxyInvalidAnswer: { code: 3051, reason: 'connect proxy answer invalid' },
  invalidToken: { code: 3500, reason: 'invalid token' },
  badRequest: { code: 3501, reason: 'bad request' },
  stale: { code: 3502, reason: 'stale' },
  forceNoReconnect: { code: 3503, reason: 'force disconnect' },
  connectionLimit: { code: 3504, reason: 'connection limit' },
  channelLimit: { code: 3505, reason: 'channel limit' },
  inappropriateProtocol: { code: 3506, reason: 'inappropriate protocol' },
  permissionDenied: { code: 3507, reason: 'permission denied' },
  notAvailable: { code: 3508, reason: 'not available' },
  tooManyErrors: { code: 3509, reason: 'too many errors' },
  messageTooBig: { code: 1009, reason: 'message too big' },
} as const satisfies Record<string, DisconnectInfo>;
