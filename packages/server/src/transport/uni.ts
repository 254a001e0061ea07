import { Disconnect, ErrorCode, type DisconnectInfo } from '../protocol/codes.js';
import type { ClientTransport, SharedFrame } from './connection.js';

/**
 * Centrifugo's unidirectional transports (`uni_sse`, `uni_http_stream`, `uni_websocket`): the client sends one
 * connect request and then only receives. Every message is a bare push object (`{"connect":…}` first, then
 * `{"channel":…,"pub":…}`, join, leave, subscribe, unsubscribe, message, `{"disconnect":…}`), pings are `{}`.
 * The session speaks the bidirectional protocol; UniTransport translates what it sends (`{"push":X}` → `X`, the
 * connect reply → the connect push) and turns a connect error into a disconnect, as Centrifugo does for clients
 * that cannot read replies.
 */

export const UNI_SSE_PATH = '/connection/uni_sse';
export const UNI_HTTP_STREAM_PATH = '/connection/uni_http_stream';
export const UNI_WEBSOCKET_PATH = '/connection/uni_websocket';

const PUSH_PREFIX = '{"push":';
const CONNECT_REPLY = /^\{"id":\d+,"connect":/;

/** `{"disconnect":{"code","reason"}}`: the last message of a unidirectional connection. */
export function encodeUniDisconnect(d: DisconnectInfo): string {
  return `{"disconnect":{"code":${d.code},"reason":${JSON.stringify(d.reason)}}}`;
}

/**
 * The connect request a unidirectional client sent (JSON text: `cf_connect`, a POST body, the first WebSocket
 * message) as the connect command the session runs. Empty or `null` is an empty request (a connection that relies on
 * the onConnecting hook or anonymous access); anything but a JSON object is refused.
 */
export function uniConnectCommand(
  raw: string | undefined,
): { ok: true; frame: string } | { ok: false; message: string } {
  const text = raw === undefined || raw.trim() === '' ? '{}' : raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {
      ok: false,
      message: 'connect request is not JSON: send {"token":"…","subs":{…}} (URL-encoded in cf_connect)',
    };
  }
  if (parsed === null) return { ok: true, frame: '{"id":1,"connect":{}}' };
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    return { ok: false, message: 'connect request must be a JSON object: {"token":"…","subs":{…}}' };
  return { ok: true, frame: `{"id":1,"connect":${text}}` };
}

/**
 * The disconnect a unidirectional client gets for a connect error (it cannot read error replies): Centrifugo's
 * mapping (expired tokens 3005, too many requests 3013, permission denied 3507), and for errors it leaves at 3004
 * the nearest terminal code instead, so the client does not reconnect in a loop: unauthorized 3500, a channel
 * limit 3505, anything else 3501. The reason carries the error's message (what to do).
 */
export function uniDisconnectForError(code: number, message: string): DisconnectInfo {
  const reason = message || 'connect refused';
  switch (code) {
    case ErrorCode.tokenExpired:
    case ErrorCode.expired:
      return { code: Disconnect.expired.code, reason };
    case ErrorCode.tooManyRequests:
      return { code: Disconnect.tooManyRequests.code, reason };
    case ErrorCode.permissionDenied:
      return { code: Disconnect.permissionDenied.code, reason };
    case ErrorCode.unauthorized:
      return { code: Disconnect.invalidToken.code, reason };
    case ErrorCode.limitExceeded:
      return { code: Disconnect.channelLimit.code, reason };
    case ErrorCode.internal:
      return { code: Disconnect.serverError.code, reason };
    default:
      return { code: Disconnect.badRequest.code, reason };
  }
}

/** A message the session sent, as a unidirectional client gets it; undefined: nothing to send. */
export function toUniText(text: string): string | undefined {
  if (text.startsWith(PUSH_PREFIX)) return text.slice(PUSH_PREFIX.length, -1);
  if (text === '{}') return text;
  const m = CONNECT_REPLY.exec(text);
  // The connect result without `pong`: a unidirectional client never answers pings. The first `,"pong":true` is the
  // result's own field (it precedes `data` and `subs`; client and version are JSON strings, whose quotes are escaped).
  if (m) return `{"connect":${text.slice(m[0].length, -1).replace(',"pong":true', '')}}`;
  // Replies to other commands cannot happen (only connect is ever run); errors are handled by the caller.
  return undefined;
}

/** The error of a reply (`{"id":N,"error":{…}}` or `{"error":{…}}`), if `text` is one. */
function replyError(text: string): { code: number; message: string } | undefined {
  if (!text.startsWith('{"id":') && !text.startsWith('{"error":')) return undefined;
  try {
    const msg = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (!msg.error) return undefined;
    return {
      code: typeof msg.error.code === 'number' ? msg.error.code : ErrorCode.internal,
      message: typeof msg.error.message === 'string' ? msg.error.message : '',
    };
  } catch {
    return undefined;
  }
}

/** A shared frame's unidirectional form, built once per frame for all unidirectional subscribers. */
interface UniShared extends SharedFrame {
  uni?: SharedFrame | null;
}

/**
 * Wraps the transport of a unidirectional connection (a StreamTransport or a WebSocket transport) for its session.
 * `sendDisconnect`: write the disconnect push before closing (streams write it themselves on close).
 */
export class UniTransport implements ClientTransport {
  readonly unidirectional = true;

  /**
   * `sendDisconnect`: write the disconnect push before closing (streams write it themselves on close). `onPing`: the
   * session pings (every HERALD_PING_INTERVAL); false closes the connection with 3012 (uni_websocket: the previous
   * WebSocket ping went unanswered).
   */
  constructor(
    private readonly inner: ClientTransport,
    private readonly sendDisconnect: boolean,
    private readonly onPing?: () => boolean,
    /** Shared frames go through send(), so that the transport joins them with the others of the turn. */
    private readonly joinShared = false,
  ) {}

  get remoteAddress(): string {
    return this.inner.remoteAddress;
  }

  send(text: string): void {
    if (text === '{}' && this.onPing && !this.onPing()) {
      this.close(Disconnect.noPong.code, Disconnect.noPong.reason);
      return;
    }
    const uni = toUniText(text);
    if (uni !== undefined) {
      this.inner.send(uni);
      return;
    }
    const err = replyError(text);
    if (err) {
      const d = uniDisconnectForError(err.code, err.message);
      this.close(d.code, d.reason);
    }
  }

  sendShared(frame: SharedFrame): void {
    const f = frame as UniShared;
    if (f.uni === undefined) {
      const text = toUniText(f.text);
      f.uni = text === undefined ? null : { text };
    }
    if (!f.uni) return;
    if (this.joinShared) this.inner.send(f.uni.text);
    else this.inner.sendShared(f.uni);
  }

  pause(): void {
    // Nothing is read after the connect request.
  }

  resume(): void {}

  close(code: number, reason: string): void {
    if (this.sendDisconnect) this.inner.send(encodeUniDisconnect({ code, reason }));
    this.inner.close(code, reason);
  }
}
