import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { Disconnect } from '../protocol/codes.js';
import { protobufReply } from '../protocol/protobuf/replies.js';
import type { ClientTransport, ProtocolEncoding, SharedFrame, UpgradeRequestInfo } from './connection.js';
import { encodeBinaryFrame, encodeTextFrame, sharedProtobufReply } from './frame.js';
import type { IpConnections } from './ip-connections.js';
import { checkRequestOrigin } from './origin.js';
import { parseRequestTarget, requestPath } from './request-target.js';
import { uniConnectCommand, UniTransport } from './uni.js';

/** The one module that imports `ws`: upgrades, frames, per-tick write coalescing, backpressure. */

export interface SessionHandlers {
  /** JSON text, or the bytes of a binary frame on a `centrifuge-protobuf` connection. */
  onFrame(frame: string | Uint8Array): void;
  onClose(code: number, reason: string): void;
}

export interface WebSocketEndpointOptions {
  paths: readonly string[];
  /**
   * Unidirectional WebSocket paths (uni_websocket.enabled: /connection/uni_websocket): the connect request comes as the
   * first message or in the `cf_connect` query parameter; later messages are ignored (transport/uni.ts).
   */
  uniPaths?: readonly string[];
  /** uni_websocket.join_push_messages: pushes of one event-loop turn share one frame, newline-separated. @default false */
  uniJoinMessages?: boolean;
  /** uni_websocket.message_size_limit: bytes of the connect message. @default maxMessageBytes */
  uniMaxMessageBytes?: number;
  version: string;
  maxMessageBytes: number;
  /** Fragments of one message; a flood of tiny fragments is closed with 1008. @default 128 */
  maxFragments?: number;
  maxSendBufferBytes: number;
  allowedOrigins: readonly string[] | undefined;
  /** Refuse upgrades without Origin (cookie-authenticated deployments). */
  requireOrigin: boolean;
  /** Refuse upgrades that carry a Cookie header but no Origin (a non-browser replaying a user's cookie). */
  cookieRequiresOrigin: boolean;
  /** Per-IP connection counts, shared with the other transports. */
  ipConnections: IpConnections;
  /** False while draining for shutdown: new upgrades get 503. */
  isAccepting(): boolean;
  onConnection(transport: ClientTransport, request: UpgradeRequestInfo): SessionHandlers;
  onRejected?(status: number, reason: string, request: UpgradeRequestInfo): void;
  /** A throw inside Herald while handling an upgrade or a frame (a bug): logged; the socket is closed, never the process. */
  onError?(err: unknown, where: string): void;
}

const dirty: WsTransport[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  // Transports marked dirty while flushing are picked up by the next turn.
  const batch = dirty.splice(0, dirty.length);
  for (const t of batch) t.flush();
}

/**
 * Event-loop turns in which a frame went out at once, numbered: a socket that was written in this turn queues what
 * follows for the end of the turn. One setImmediate per turn for all sockets, where a flush per written socket used
 * to be scheduled.
 */
let turn = 0;
let turnScheduled = false;

function nextTurn(): void {
  turn++;
  turnScheduled = false;
}

function scheduleFlush(t: WsTransport): void {
  dirty.push(t);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}

/**
 * Bytes queued for one socket within an event-loop turn before they are written at once instead of at the end of
 * the turn. A frame of heavy commands (history, recovering subscribes) produces its replies in one turn: written as
 * they come, they meet the send-buffer check (close 3008 when the peer does not keep up) instead of piling up in
 * memory until one join() passes V8's string limit.
 */
export const EARLY_FLUSH_BYTES = 64 * 1024;

/** Close reasons are limited to 123 bytes by RFC 6455. */
function clampReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let r = reason.slice(0, 123);
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

/** What a bidirectional connection's transport tells its endpoint (one object per endpoint, not per connection). */
interface EndpointLink {
  /** The socket closed: forget it and give its IP's slot back. */
  ended(ws: WebSocket, ip: string): void;
  /** A throw inside Herald while handling a frame or a close (a bug). */
  bug(err: unknown, where: string): void;
}

/**
 * Each socket's transport, for the listeners below: the same three functions serve every connection, where a
 * closure per listener per connection (and the scope they share) cost about 300 bytes of heap per idle connection.
 */
const transportOf = new WeakMap<WebSocket, WsTransport>();

function ignoreSocketError(): void {
  // A bad frame makes ws emit 'error' and close with the right code (1002, 1007, 1008, 1009); never let it throw.
}

function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  transportOf.get(this)?.socketClosed(code, reason);
}

function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  transportOf.get(this)?.message(data, isBinary);
}

class WsTransport implements ClientTransport {
  /** JSON messages of this turn (made on first use: an idle connection carries no array for them). */
  private pending: string[] | undefined;
  /**
   * Protobuf: the messages of this turn, each a length-delimited Reply, sent as one binary frame. Made on first use
   * (an idle JSON connection carries no array for it).
   */
  private pendingBinary: Buffer[] | undefined;
  /** Size of `pending` (UTF-16 units) and of `out` (bytes): past EARLY_FLUSH_BYTES they are written at once. */
  private queuedBytes = 0;
  /** Frames to write at the end of the turn (made on first use). */
  private out: Buffer[] | undefined;
  private isDirty = false;
  /** The turn in which a frame was last written at once (see `turn`). */
  private wroteInTurn = -1;
  private closing = false;
  /** The close code this side chose; reported instead of 1006 when the peer never answers the close frame. */
  closeCode: number | undefined;
  closeReason = '';
  /** Told once that the connection is over: at a slow close right away, otherwise when the socket closes. */
  onClosed: ((code: number, reason: string) => void) | undefined;
  private reported = false;
  /** A bidirectional connection's session callbacks and endpoint (accept); the unidirectional path uses onClosed. */
  handlers: SessionHandlers | undefined;
  link: EndpointLink | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex & { writableLength: number },
    private readonly maxSendBufferBytes: number,
    readonly remoteAddress: string,
    /** Messages of one turn go out as one frame (newline-separated); false: one frame each (uni_websocket). */
    private readonly joinMessages = true,
    readonly encoding: ProtocolEncoding = 'json',
  ) {}

  send(text: string): void {
    if (this.closing) return;
    if (this.encoding === 'protobuf') {
      const reply = this.transcode(text);
      if (reply === undefined) return;
      (this.pendingBinary ??= []).push(reply);
      this.queuedBytes += reply.length;
    } else {
      (this.pending ??= []).push(text);
      this.queuedBytes += text.length + 1;
    }
    if (this.queuedBytes >= EARLY_FLUSH_BYTES) this.flush();
    else this.markDirty();
  }

  /** Herald's JSON text of a message as a protobuf Reply; a failure is a bug in Herald: the connection closes 3004. */
  private transcode(text: string): Buffer | undefined {
    try {
      return protobufReply(text);
    } catch {
      this.close(Disconnect.serverError.code, Disconnect.serverError.reason);
      return undefined;
    }
  }

  sendShared(frame: SharedFrame): void {
    if (this.closing) return;
    if (this.pending !== undefined || this.pendingBinary !== undefined) this.movePending();
    let bytes: Buffer;
    if (this.encoding === 'protobuf') {
      if (frame.protobufBytes === undefined) {
        let reply: Buffer;
        try {
          reply = sharedProtobufReply(frame);
        } catch {
          this.close(Disconnect.serverError.code, Disconnect.serverError.reason);
          return;
        }
        frame.protobufBytes = encodeBinaryFrame(reply);
      }
      bytes = frame.protobufBytes;
    } else bytes = frame.bytes ??= encodeTextFrame(frame.text);
    if (!this.isDirty && this.wroteInTurn !== turn && this.out === undefined && this.ws.readyState === 1) {
      // First frame for this socket in this event-loop turn: write it now (lowest latency). Frames that follow in
      // the same turn are coalesced into one corked write at the end of the turn.
      this.socket.write(bytes);
      this.wroteInTurn = turn;
      if (!turnScheduled) {
        turnScheduled = true;
        setImmediate(nextTurn);
      }
      if (this.socket.writableLength > this.maxSendBufferBytes) this.closeSlow();
      return;
    }
    (this.out ??= []).push(bytes);
    this.queuedBytes += bytes.length;
    if (this.queuedBytes >= EARLY_FLUSH_BYTES) this.flush();
    else this.markDirty();
  }

  pause(): void {
    if (!this.closing) this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.flush();
    // The flush may have found the peer too slow and closed with 3008 instead.
    if (this.closing) return;
    this.closing = true;
    // A socket paused for backpressure must be read again, or the peer's close frame would never be seen.
    if (this.ws.isPaused) this.ws.resume();
    this.closeCode = code;
    this.closeReason = reason;
    try {
      this.ws.close(code, clampReason(reason));
    } catch {
      this.ws.terminate();
    }
  }

  /** Writes what is queued; past HERALD_MAX_SEND_BUFFER waiting in the socket, closes 3008. Also called mid-turn. */
  flush(): void {
    this.isDirty = false;
    if (this.closing) return;
    if (this.pending !== undefined || this.pendingBinary !== undefined) this.movePending();
    const out = this.out;
    if (out === undefined) return;
    this.out = undefined;
    this.queuedBytes = 0;
    if (this.ws.readyState !== 1) return;
    if (out.length === 1) {
      this.socket.write(out[0]!);
    } else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
    if (this.socket.writableLength > this.maxSendBufferBytes) this.closeSlow();
  }

  private closeSlow(): void {
    if (this.closing) return;
    this.closing = true;
    this.closeCode = Disconnect.slow.code;
    this.closeReason = Disconnect.slow.reason;
    // What is still queued will not be sent: free it now.
    this.pending = undefined;
    this.pendingBinary = undefined;
    this.out = undefined;
    this.queuedBytes = 0;
    // Tell the session at once (not when the peer finally closes), so it stops working through the connection's
    // backlog; after the current call stack, so no caller (hub fan-out, a subscribe in progress) sees it mid-way.
    queueMicrotask(() => this.report(Disconnect.slow.code, Disconnect.slow.reason));
    if (this.ws.isPaused) this.ws.resume();
    // The peer is not reading, so the close frame may never reach it: end the socket shortly after.
    try {
      this.ws.close(Disconnect.slow.code, Disconnect.slow.reason);
    } catch {
      /* already closing */
    }
    const t = setTimeout(() => this.ws.terminate(), 1000);
    t.unref();
  }

  /** Reports the end of the connection to the session, once. */
  report(code: number, reason: string): void {
    if (this.reported) return;
    this.reported = true;
    if (this.onClosed) {
      this.onClosed(code, reason);
      return;
    }
    try {
      this.handlers?.onClose(code, reason);
    } catch (err) {
      this.link?.bug(err, 'connection close');
    }
  }

  /** The socket closed (accept's listener): the close code this side chose, else the peer's. */
  socketClosed(code: number, reason: Buffer): void {
    this.link?.ended(this.ws, this.remoteAddress);
    if (this.closeCode !== undefined) this.report(this.closeCode, this.closeReason);
    else this.report(code, reason.toString('utf8'));
  }

  /** A message from the peer (accept's listener): JSON text, or binary frames on a protobuf connection. */
  message(data: RawData, isBinary: boolean): void {
    const protobuf = this.encoding === 'protobuf';
    if (protobuf !== isBinary) {
      if (protobuf) this.close(Disconnect.badRequest.code, 'bad request: text frame on a protobuf connection');
      else this.close(Disconnect.inappropriateProtocol.code, 'inappropriate protocol: send JSON text frames');
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    try {
      this.handlers?.onFrame(protobuf ? bytes : bytes.toString('utf8'));
    } catch (err) {
      this.link?.bug(err, 'websocket message');
      this.close(Disconnect.serverError.code, Disconnect.serverError.reason);
    }
  }

  private movePending(): void {
    const out = (this.out ??= []);
    if (this.pendingBinary !== undefined) {
      const replies = this.pendingBinary;
      this.pendingBinary = undefined;
      out.push(encodeBinaryFrame(replies.length === 1 ? replies[0]! : Buffer.concat(replies)));
      return;
    }
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    if (!this.joinMessages) {
      for (const text of pending) out.push(encodeTextFrame(text));
      return;
    }
    out.push(encodeTextFrame(pending.length === 1 ? pending[0]! : pending.join('\n')));
  }

  private markDirty(): void {
    if (this.isDirty) return;
    this.isDirty = true;
    scheduleFlush(this);
  }
}

/** Headers that only served the WebSocket handshake: a session does not keep them (about 200 bytes a connection). */
const HANDSHAKE_HEADERS = new Set([
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
]);

/** The upgrade request's headers as a connection's session keeps them for hooks and proxies. */
function sessionHeaders(headers: UpgradeRequestInfo['headers']): UpgradeRequestInfo['headers'] {
  const kept: UpgradeRequestInfo['headers'] = {};
  for (const name in headers) if (!HANDSHAKE_HEADERS.has(name)) kept[name] = headers[name];
  return kept;
}

function statusText(status: number): string {
  return (
    (
      {
        400: 'Bad Request',
        403: 'Forbidden',
        426: 'Upgrade Required',
        429: 'Too Many Requests',
        503: 'Service Unavailable',
      } as Record<number, string>
    )[status] ?? 'Error'
  );
}

/** Until the WebSocket takes the socket over, an error on it only destroys it (one function for every socket). */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

export class WebSocketEndpoint {
  private readonly wss: WebSocketServer;
  private readonly uniWss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  private readonly link: EndpointLink = {
    ended: (ws, ip) => {
      if (this.sockets.delete(ws)) this.opts.ipConnections.release(ip);
    },
    bug: (err, where) => this.opts.onError?.(err, where),
  };

  constructor(private readonly opts: WebSocketEndpointOptions) {
    this.uniWss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.uniMaxMessageBytes ?? opts.maxMessageBytes,
      maxFragments: opts.maxFragments ?? 128,
      perMessageDeflate: false,
      clientTracking: false,
    } as ConstructorParameters<typeof WebSocketServer>[0]);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxMessageBytes,
      maxFragments: opts.maxFragments ?? 128,
      perMessageDeflate: false,
      clientTracking: false,
      // The protobuf encoding (binary frames of length-delimited Commands and Replies) when the client asks for it.
      handleProtocols: (protocols) => (protocols.has('centrifuge-protobuf') ? 'centrifuge-protobuf' : false),
    } as ConstructorParameters<typeof WebSocketServer>[0]);
  }

  ownsPath(url: string | undefined): boolean {
    const path = requestPath(url);
    return path !== undefined && (this.opts.paths.includes(path) || (this.opts.uniPaths?.includes(path) ?? false));
  }

  private isUniPath(url: string | undefined): boolean {
    const path = requestPath(url);
    return path !== undefined && (this.opts.uniPaths?.includes(path) ?? false);
  }

  /** Handles an upgrade on one of its paths; returns false (touching nothing) for any other path. Never throws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (!this.ownsPath(req.url)) return false;
    socket.on('error', destroyOnError);
    try {
      this.upgrade(req, socket, head);
    } catch (err) {
      this.opts.onError?.(err, 'websocket upgrade');
      socket.destroy();
    }
    return true;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const info: UpgradeRequestInfo = {
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress ?? '',
      // The endpoint's own path string when the URL is just that: every connection then shares one string.
      url: this.opts.paths.find((p) => p === req.url) ?? req.url ?? '/',
    };
    if (!this.opts.isAccepting())
      return this.reject(socket, 503, 'server is shutting down; reconnect to another node', info);
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (upgrade !== 'websocket') return this.reject(socket, 400, 'expected Upgrade: websocket', info);
    const decision = checkRequestOrigin(req.headers, this.opts.allowedOrigins, {
      requireOrigin: this.opts.requireOrigin,
      cookieRequiresOrigin: this.opts.cookieRequiresOrigin,
    });
    if (!decision.ok)
      return this.reject(socket, 403, decision.message ?? 'origin not allowed', info, 'origin_not_allowed');
    const ip = info.remoteAddress;
    if (this.opts.ipConnections.full(ip)) {
      return this.reject(socket, 429, this.opts.ipConnections.message(ip), info, 'connection_limit');
    }
    if (this.isUniPath(req.url)) {
      // A connect request in the URL is checked before the upgrade, so a malformed one is a plain 400.
      const param = parseRequestTarget(req.url)?.query.get('cf_connect') ?? undefined;
      const maxBytes = this.opts.uniMaxMessageBytes ?? this.opts.maxMessageBytes;
      if (param !== undefined && Buffer.byteLength(param) > maxBytes)
        return this.reject(
          socket,
          400,
          `cf_connect larger than ${maxBytes} bytes (uni_websocket.message_size_limit)`,
          info,
        );
      const cmd = param === undefined ? undefined : uniConnectCommand(param);
      if (cmd && !cmd.ok) return this.reject(socket, 400, cmd.message, info, 'bad_connect_request');
      this.uniWss.handleUpgrade(req, socket, head, (ws) => {
        try {
          this.acceptUni(ws, socket, info, cmd?.ok ? cmd.frame : undefined);
        } catch (err) {
          this.opts.onError?.(err, 'websocket accept');
          ws.terminate();
        }
      });
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        this.accept(ws, socket, info);
      } catch (err) {
        this.opts.onError?.(err, 'websocket accept');
        ws.terminate();
      }
    });
  }

  /** Answers a plain HTTP request on a WebSocket path: 426 with the marker header, so clients can diagnose. */
  answerPlainRequest(method: string | undefined): { status: number; headers: Record<string, string>; body: string } {
    const body = JSON.stringify({
      server: 'herald',
      version: this.opts.version,
      message: 'This is a Herald WebSocket endpoint. Connect with a WebSocket client (Upgrade: websocket).',
    });
    return {
      status: method === 'OPTIONS' ? 204 : 426,
      headers: {
        'content-type': 'application/json',
        'x-herald-version': this.opts.version,
        upgrade: 'websocket',
        // `Upgrade` alone would make Node keep the socket open even when the request said `Connection: close`;
        // Next.js's rewrite proxy then reuses it and its next request meets a 400 (parser closed). Close instead.
        connection: 'Upgrade, close',
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'X-Herald-Version',
        'access-control-allow-methods': 'GET, OPTIONS',
        'cache-control': 'no-store',
      },
      body: method === 'OPTIONS' ? '' : body,
    };
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Forcefully ends every socket (after a graceful close deadline). */
  terminateAll(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  private accept(ws: WebSocket, socket: Duplex, info: UpgradeRequestInfo): void {
    // The WebSocket handles the socket's errors from now on.
    socket.removeListener('error', destroyOnError);
    const ip = info.remoteAddress;
    this.opts.ipConnections.add(ip);
    this.sockets.add(ws);
    const transport = new WsTransport(
      ws,
      socket as Duplex & { writableLength: number },
      this.opts.maxSendBufferBytes,
      ip,
      true,
      ws.protocol === 'centrifuge-protobuf' ? 'protobuf' : 'json',
    );
    transport.link = this.link;
    transportOf.set(ws, transport);
    ws.on('error', ignoreSocketError);
    ws.on('close', onSocketClose);
    transport.handlers = this.opts.onConnection(transport, { ...info, headers: sessionHeaders(info.headers) });
    ws.on('message', onSocketMessage);
  }

  /** A unidirectional connection: one connect request (the first message, unless in the URL), then pushes only. */
  private acceptUni(ws: WebSocket, socket: Duplex, info: UpgradeRequestInfo, connectFrame: string | undefined): void {
    socket.removeListener('error', destroyOnError);
    const ip = info.remoteAddress;
    const releaseIp = this.opts.ipConnections.acquire(ip);
    this.sockets.add(ws);
    const inner = new WsTransport(
      ws,
      socket as Duplex & { writableLength: number },
      this.opts.maxSendBufferBytes,
      ip,
      this.opts.uniJoinMessages ?? false,
    );
    // WebSocket pings (browsers answer them by themselves) next to the protocol's `{}` pings: a peer that has not
    // answered the previous one by the next is gone (3012).
    let awaitingPong = false;
    ws.on('pong', () => {
      awaitingPong = false;
    });
    const transport = new UniTransport(
      inner,
      true,
      () => {
        if (awaitingPong) return false;
        awaitingPong = true;
        try {
          ws.ping();
        } catch {
          /* closing */
        }
        return true;
      },
      this.opts.uniJoinMessages ?? false,
    );
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      this.sockets.delete(ws);
      releaseIp();
      if (inner.closeCode !== undefined) inner.report(inner.closeCode, inner.closeReason);
      else inner.report(code, reason.toString('utf8'));
    });
    const handlers = this.opts.onConnection(transport, info);
    inner.onClosed = (code, reason) => {
      try {
        handlers.onClose(code, reason);
      } catch (err) {
        this.opts.onError?.(err, 'connection close');
      }
    };
    let connected = connectFrame !== undefined;
    ws.on('message', (data, isBinary) => {
      // Only the first message counts (the connect request); a unidirectional client has nothing else to say.
      if (connected) return;
      connected = true;
      if (isBinary) {
        transport.close(
          Disconnect.inappropriateProtocol.code,
          'inappropriate protocol: send the connect request as JSON text',
        );
        return;
      }
      const cmd = uniConnectCommand(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data.toString('utf8'));
      if (!cmd.ok) {
        transport.close(Disconnect.badRequest.code, cmd.message);
        return;
      }
      this.deliver(handlers, cmd.frame, transport);
    });
    if (connectFrame !== undefined) this.deliver(handlers, connectFrame, transport);
  }

  private deliver(handlers: SessionHandlers, frame: string, transport: ClientTransport): void {
    try {
      handlers.onFrame(frame);
    } catch (err) {
      this.opts.onError?.(err, 'websocket message');
      transport.close(Disconnect.serverError.code, Disconnect.serverError.reason);
    }
  }

  private reject(socket: Duplex, status: number, message: string, info: UpgradeRequestInfo, reason = 'rejected'): void {
    this.opts.onRejected?.(status, message, info);
    const body = JSON.stringify({ server: 'herald', version: this.opts.version, error: reason, message });
    const origin = info.headers.origin;
    socket.end(
      `HTTP/1.1 ${status} ${statusText(status)}\r\n` +
        'Content-Type: application/json\r\n' +
        `X-Herald-Version: ${this.opts.version}\r\n` +
        `X-Herald-Error: ${reason}\r\n` +
        (typeof origin === 'string' && /^https?:\/\/[^\s]+$/.test(origin)
          ? `Access-Control-Allow-Origin: ${origin}\r\n`
          : '') +
        'Connection: close\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
        body,
    );
  }
}
