import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientTransport, ProtocolEncoding, SharedFrame, UpgradeRequestInfo } from './connection.js';
import { decodeEmulationRequest } from '../protocol/protobuf/commands.js';
import { protobufReply } from '../protocol/protobuf/replies.js';
import { sharedProtobufReply } from './frame.js';
import type { IpConnections } from './ip-connections.js';
import { DEFAULT_MAX_JSON_DEPTH, depthMessage, jsonDepthProblem } from '../protocol/json-depth.js';
import { encodeDisconnectPush } from '../protocol/replies.js';
import { Disconnect, type DisconnectInfo } from '../protocol/codes.js';
import { checkRequestOrigin } from './origin.js';
import { readBoundedBody } from './request-body.js';
import { parseRequestTarget } from './request-target.js';
import { EARLY_FLUSH_BYTES, type SessionHandlers } from './websocket.js';
import { encodeUniDisconnect, uniConnectCommand, UniTransport, UNI_HTTP_STREAM_PATH, UNI_SSE_PATH } from './uni.js';

/**
 * Centrifugo's bidirectional emulation over plain HTTP, for clients that cannot open a WebSocket:
 * - HTTP-streaming: `POST /connection/http_stream` with the connect command as body; the response streams the
 *   server's messages as newline-delimited JSON.
 * - SSE: `GET /connection/sse?cf_connect=<connect command>`; the response is `text/event-stream`, one
 *   `data: <message>` event per message.
 * Later commands arrive as `POST /emulation` `{"session", "node", "data"}` (data: the commands' JSON text); the
 * connect reply told the client its `session` and `node`. A close is in-band: a `disconnect` push, then the end of
 * the response. Enabled with Centrifugo's keys `http_stream.enabled` / `sse.enabled`.
 */

export interface EmulationEndpointOptions {
  httpStream: boolean;
  sse: boolean;
  /** Unidirectional HTTP streaming on /connection/uni_http_stream (transport/uni.ts). @default false */
  uniHttpStream?: boolean;
  /** Unidirectional SSE on /connection/uni_sse (transport/uni.ts). @default false */
  uniSse?: boolean;
  /** Bytes of a uni_sse connect request (cf_connect or POST body). @default maxMessageBytes */
  uniSseMaxRequestBodyBytes?: number;
  /** Bytes of a uni_http_stream connect request (POST body). @default maxMessageBytes */
  uniHttpStreamMaxRequestBodyBytes?: number;
  /**
   * Relays an emulation request for a session held by another node (`node` of the request) through the engine's
   * control channel; resolves with the HTTP status the owning node reports. Undefined (or a call answering undefined):
   * no relay (memory engine), unknown sessions are 404. (emulation-relay.ts)
   */
  relay?: (node: string, session: string, data: string | Uint8Array) => Promise<number> | undefined;
  /** This node's id, echoed by clients in emulation requests. */
  node: string;
  maxMessageBytes: number;
  /** HERALD_MAX_JSON_DEPTH: `data` sent as JSON (not text) deeper than a command may be is refused before it is re-serialized. @default 64 */
  maxJsonDepth?: number;
  maxSendBufferBytes: number;
  allowedOrigins: readonly string[] | undefined;
  /** Refuse requests that carry a Cookie header but no Origin. */
  cookieRequiresOrigin: boolean;
  /** Per-IP connection counts, shared with the WebSocket endpoint. */
  ipConnections: IpConnections;
  isAccepting(): boolean;
  onConnection(transport: ClientTransport, request: UpgradeRequestInfo): SessionHandlers;
  /** A throw inside Herald while handling a request (a bug): logged; the request gets a 500, never the process. */
  onError?(err: unknown, where: string): void;
}

/**
 * `POST /emulation` requests one session may have waiting while its command queue is full. Each holds its body and an
 * open request; past this a request is answered 429 at once instead of adding to what the session holds.
 */
export const MAX_WAITING_REQUESTS = 32;

export const HTTP_STREAM_PATH = '/connection/http_stream';
export const SSE_PATH = '/connection/sse';
export const EMULATION_PATH = '/emulation';

/** The bodies of `POST /emulation` answers, by status. */
const STATUS_TEXT: Record<number, string> = {
  200: '',
  404: 'unknown session',
  429: `too many requests waiting for this session (at most ${MAX_WAITING_REQUESTS} while its command queue is full): wait for the answers before posting more`,
  500: 'internal server error',
  503: 'the node holding this session could not be reached; reconnect',
};

type StreamKind = 'emulation' | 'stream' | 'sse' | 'uni_stream' | 'uni_sse';

/** Bytes of an emulation request (`{"session","node","data"}`) beyond the message it carries. */
const EMULATION_ENVELOPE_BYTES = 1024;

class StreamTransport implements ClientTransport {
  private pending: string[] = [];
  /** Protobuf HTTP streaming: length-delimited Replies, written back to back. */
  private pendingBinary: Buffer[] = [];
  /** UTF-16 units queued in `pending`: past EARLY_FLUSH_BYTES they are written at once (see websocket.ts). */
  private pendingBytes = 0;
  private scheduled = false;
  closed = false;
  /** The session's queue of commands is full: `POST /emulation` requests wait in `waiting`, in arrival order. */
  private paused = false;
  private waiting: (() => void)[] = [];

  constructor(
    private readonly res: ServerResponse,
    private readonly sse: boolean,
    readonly remoteAddress: string,
    readonly emulation: { session: string; node: string } | undefined,
    private readonly maxSendBufferBytes: number,
    private readonly onEnd: (code: number, reason: string) => void,
    /** The in-band close message: a `disconnect` push, bare on unidirectional streams. */
    private readonly disconnectMessage: (d: DisconnectInfo) => string = encodeDisconnectPush,
    /** HTTP streaming in protobuf (the request was application/octet-stream); SSE and uni streams are JSON. */
    private readonly encoding: ProtocolEncoding = 'json',
  ) {}

  send(text: string): void {
    if (this.closed) return;
    if (this.encoding === 'protobuf') {
      let reply: Buffer;
      try {
        reply = protobufReply(text);
      } catch {
        // Herald's own message not in its schema: a bug; the client reconnects.
        this.close(Disconnect.serverError.code, Disconnect.serverError.reason);
        return;
      }
      this.queue(reply);
      return;
    }
    this.pending.push(text);
    this.pendingBytes += text.length + 8;
    this.scheduleFlush();
  }

  private queue(reply: Buffer): void {
    this.pendingBinary.push(reply);
    this.pendingBytes += reply.length;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.pendingBytes >= EARLY_FLUSH_BYTES) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  sendShared(frame: SharedFrame): void {
    if (this.closed) return;
    if (this.encoding === 'json') {
      this.send(frame.text);
      return;
    }
    let reply: Buffer;
    try {
      reply = sharedProtobufReply(frame);
    } catch {
      this.close(Disconnect.serverError.code, Disconnect.serverError.reason);
      return;
    }
    this.queue(reply);
  }

  pause(): void {
    this.paused = true;
  }

  /** Lets waiting requests in, oldest first, until one fills the session's queue again. */
  resume(): void {
    this.paused = false;
    while (!this.paused && this.waiting.length > 0) this.waiting.shift()!();
  }

  /**
   * Runs `deliver` (hands one request's commands to the session) now, or once the session's queue has drained when
   * it is full or others wait before it: the request's answer waits with it (backpressure; nothing is refused).
   */
  admit(deliver: () => void): boolean {
    if (this.closed || (!this.paused && this.waiting.length === 0)) deliver();
    else if (this.waiting.length >= MAX_WAITING_REQUESTS) return false;
    else this.waiting.push(deliver);
    return true;
  }

  /** The connection is over: the waiting requests are answered (as for an unknown session). */
  private releaseWaiting(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const deliver of waiting) deliver();
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    const message = this.disconnectMessage({ code, reason });
    if (this.encoding === 'protobuf') this.pendingBinary.push(protobufReply(message));
    else this.pending.push(message);
    this.flush();
    // The flush may have found the reader too slow and closed with 3008 instead.
    if (!this.closed) this.end(code, reason);
  }

  /** The client went away (aborted fetch, closed EventSource, the socket closed). */
  gone(): void {
    if (!this.closed) this.end(1000, 'connection closed');
  }

  private end(code: number, reason: string): void {
    this.closed = true;
    this.pending = [];
    this.pendingBinary = [];
    this.pendingBytes = 0;
    this.res.end();
    this.onEnd(code, reason);
    this.releaseWaiting();
  }

  /**
   * More than the send-buffer limit waits for this client: close 3008. What is queued is dropped (the client
   * reconnects and recovers); the disconnect push goes after what the socket already holds, and a reader that
   * never takes it is cut off a second later. The session is told after the current call stack (see websocket.ts).
   */
  private closeSlow(): void {
    this.closed = true;
    this.pending = [];
    this.pendingBinary = [];
    this.pendingBytes = 0;
    const message = this.disconnectMessage(Disconnect.slow);
    if (!this.res.writableEnded)
      this.res.end(this.encoding === 'protobuf' ? protobufReply(message) : this.format([message]));
    const cut = setTimeout(() => this.res.destroy(), 1000);
    cut.unref();
    this.res.once('close', () => clearTimeout(cut));
    queueMicrotask(() => this.onEnd(Disconnect.slow.code, Disconnect.slow.reason));
    this.releaseWaiting();
  }

  private format(msgs: string[]): string {
    return this.sse ? msgs.map((m) => `data: ${m}\n\n`).join('') : msgs.map((m) => `${m}\n`).join('');
  }

  /** Writes what is queued; past HERALD_MAX_SEND_BUFFER waiting in the response, closes 3008. Also called mid-turn. */
  private flush(): void {
    this.scheduled = false;
    if ((this.pending.length === 0 && this.pendingBinary.length === 0) || this.res.writableEnded) return;
    const msgs = this.pending;
    const replies = this.pendingBinary;
    this.pending = [];
    this.pendingBinary = [];
    this.pendingBytes = 0;
    this.res.write(replies.length > 0 ? Buffer.concat(replies) : this.format(msgs));
    if (!this.closed && this.res.writableLength > this.maxSendBufferBytes) this.closeSlow();
  }
}

function plain(res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** 413 for a body over the limit (its rest was read and discarded, see request-body.ts); the connection then closes. */
function tooLarge(res: ServerResponse, what: string, limit: number): void {
  plain(res, 413, `${what} larger than ${limit} bytes (HERALD_MAX_MESSAGE_SIZE)`, { connection: 'close' });
}

export class EmulationEndpoint {
  private readonly sessions = new Map<string, { transport: StreamTransport; handlers: SessionHandlers }>();
  /** Unidirectional streams (uni_sse, uni_http_stream): never addressed by `POST /emulation`. */
  private readonly uniStreams = new Set<StreamTransport>();

  constructor(private readonly opts: EmulationEndpointOptions) {}

  get connectionCount(): number {
    return this.sessions.size + this.uniStreams.size;
  }

  /**
   * Handles the request if its path is an enabled emulation path; returns false (touching nothing) otherwise.
   * Never throws, and its promises never reject: a failure is logged and answered 500.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const o = this.opts;
    if (!o.httpStream && !o.sse && !o.uniHttpStream && !o.uniSse) return false;
    const target = parseRequestTarget(req.url);
    if (!target) return false;
    const path = target.path;
    const kind: StreamKind | undefined =
      o.httpStream && path === HTTP_STREAM_PATH
        ? 'stream'
        : o.sse && path === SSE_PATH
          ? 'sse'
          : (o.httpStream || o.sse) && path === EMULATION_PATH
            ? 'emulation'
            : o.uniHttpStream && path === UNI_HTTP_STREAM_PATH
              ? 'uni_stream'
              : o.uniSse && path === UNI_SSE_PATH
                ? 'uni_sse'
                : undefined;
    if (!kind) return false;
    let work: Promise<void>;
    try {
      work = this.route(req, res, kind, target.query);
    } catch (err) {
      work = Promise.reject(err);
    }
    work.catch((err: unknown) => {
      o.onError?.(err, `emulation ${path}`);
      plain(res, 500, 'internal server error');
    });
    return true;
  }

  private async route(
    req: IncomingMessage,
    res: ServerResponse,
    kind: StreamKind,
    query: URLSearchParams,
  ): Promise<void> {
    const o = this.opts;
    // Browsers send these cross-origin with CORS; the Origin policy is the WebSocket one (one function for both).
    const decision = checkRequestOrigin(req.headers, o.allowedOrigins, {
      cookieRequiresOrigin: o.cookieRequiresOrigin,
    });
    if (!decision.ok) return plain(res, 403, decision.message);
    const origin = req.headers.origin;
    if (typeof origin === 'string' && origin !== '') {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    if (kind === 'emulation') return this.onEmulation(req, res);
    const sse = kind === 'sse' || kind === 'uni_sse';
    const uni = kind === 'uni_sse' || kind === 'uni_stream';
    return this.onStream(
      req,
      res,
      sse,
      uni,
      sse && req.method === 'GET' ? (query.get('cf_connect') ?? undefined) : undefined,
    );
  }

  private async onStream(
    req: IncomingMessage,
    res: ServerResponse,
    sse: boolean,
    uni: boolean,
    connectParam: string | undefined,
  ): Promise<void> {
    const o = this.opts;
    if (!o.isAccepting()) return plain(res, 503, 'shutting down');
    // Unidirectional SSE also takes the connect request as a POST body (Centrifugo does, for non-browser clients).
    const post = req.method === 'POST' && (!sse || uni);
    if (!sse && !post) return plain(res, 405, 'POST the connect command');
    if (sse && !post && req.method !== 'GET')
      return plain(
        res,
        405,
        uni ? 'GET with ?cf_connect=<connect request>, or POST it' : 'GET with ?cf_connect=<connect command>',
      );
    // A pipelined request: an answer ahead of it on this socket is not finished, so this one could only wait behind
    // it (behind a stream: forever), while Node stops reading the socket and would not even notice it closing; its
    // session would hold a connection slot for nothing. Streams are never pipelined: close the connection.
    if (!res.socket) {
      req.socket.destroy();
      return;
    }
    // The protobuf SDK posts application/octet-stream: HTTP streaming in protobuf. SSE and the unidirectional streams
    // speak JSON only, as in Centrifugo.
    const protobuf = post && /octet-stream/i.test(req.headers['content-type'] ?? '');
    if (protobuf && (sse || uni)) return plain(res, 415, 'SSE and unidirectional streams speak the JSON protocol only');
    const limit =
      (uni ? (sse ? o.uniSseMaxRequestBodyBytes : o.uniHttpStreamMaxRequestBodyBytes) : undefined) ?? o.maxMessageBytes;
    let initial = connectParam;
    let initialBytes: Buffer | undefined;
    if (post) {
      const body = await readBoundedBody(req, limit);
      if (!body.ok) return body.tooLarge ? tooLarge(res, 'connect command', limit) : undefined;
      if (protobuf) initialBytes = body.body;
      else initial = body.body.toString('utf8');
    } else if (initial !== undefined && Buffer.byteLength(initial) > limit) {
      return tooLarge(res, 'cf_connect', limit);
    }
    if (uni) {
      const cmd = uniConnectCommand(initial);
      if (!cmd.ok) return plain(res, 400, cmd.message);
      initial = cmd.frame;
    } else if (!initial && !initialBytes?.length) {
      return plain(res, 400, sse ? 'cf_connect query parameter missing' : 'body missing: POST the connect command');
    }
    const socket = req.socket;
    if (socket.destroyed) return;
    const remoteAddress = socket.remoteAddress ?? '';
    if (o.ipConnections.full(remoteAddress)) return plain(res, 429, o.ipConnections.message(remoteAddress));

    res.writeHead(
      200,
      sse
        ? {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'private, no-cache, no-store, must-revalidate, max-age=0',
            'x-accel-buffering': 'no',
          }
        : {
            'content-type': protobuf ? 'application/octet-stream' : 'application/json',
            'cache-control': 'no-store',
            'x-accel-buffering': 'no',
          },
    );
    res.flushHeaders();

    const session = randomUUID();
    const releaseIp = o.ipConnections.acquire(remoteAddress);
    let handlers: SessionHandlers | undefined;
    const onSocketClose = () => transport.gone();
    const transport = new StreamTransport(
      res,
      sse,
      remoteAddress,
      uni ? undefined : { session, node: o.node },
      o.maxSendBufferBytes,
      (code, reason) => {
        releaseIp();
        socket.off('close', onSocketClose);
        this.sessions.delete(session);
        this.uniStreams.delete(transport);
        try {
          handlers?.onClose(code, reason);
        } catch (err) {
          o.onError?.(err, 'stream close');
        }
      },
      uni ? encodeUniDisconnect : undefined,
      protobuf ? 'protobuf' : 'json',
    );
    const request = { headers: req.headers, remoteAddress, url: req.url ?? '' };
    handlers = o.onConnection(uni ? new UniTransport(transport, false) : transport, request);
    if (uni) this.uniStreams.add(transport);
    else this.sessions.set(session, { transport, handlers });
    // The session lives as long as its response and its socket, whichever ends first.
    res.on('close', onSocketClose);
    socket.on('close', onSocketClose);
    // The checks above leave one of them non-empty.
    handlers.onFrame(initialBytes ?? initial!);
  }

  private async onEmulation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return plain(res, 405, 'POST {"session","node","data"}');
    const limit = this.opts.maxMessageBytes + EMULATION_ENVELOPE_BYTES;
    const body = await readBoundedBody(req, limit);
    if (!body.ok) return body.tooLarge ? tooLarge(res, 'emulation request', limit) : undefined;
    if (/octet-stream/i.test(req.headers['content-type'] ?? '')) {
      // The protobuf SDK: an EmulationRequest whose data are length-delimited Commands.
      const r = decodeEmulationRequest(body.body);
      if (!r) return plain(res, 400, 'expected a protobuf EmulationRequest {node, session, data}');
      return this.answerEmulation(res, r.session, r.node, r.data);
    }
    let msg: unknown;
    try {
      msg = JSON.parse(body.body.toString('utf8'));
    } catch {
      msg = undefined;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg))
      return plain(res, 400, 'expected JSON {"session","node","data"}');
    const { session, node, data } = msg as { session?: unknown; node?: unknown; data?: unknown };
    if (typeof session !== 'string' || !this.reach(session, node)) return plain(res, 404, 'unknown session');
    // `data` as JSON (not text) is serialized again for the session: past what a command may nest (the data's limit plus
    // the command and its params, as on WebSocket) it is refused first, by an iterative walk, since JSON.stringify
    // recurses and overflows the stack on a few thousand levels, which a body within the size limit holds.
    const maxDepth = this.opts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
    if (typeof data === 'object' && data !== null && jsonDepthProblem(data, maxDepth + 2))
      return plain(res, 400, depthMessage(maxDepth));
    const text = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    return this.answerEmulation(res, session, node, text);
  }

  /** Hands an emulation request's commands to their session, here or through the relay, and answers its status. */
  private async answerEmulation(
    res: ServerResponse,
    session: string,
    node: unknown,
    data: string | Uint8Array,
  ): Promise<void> {
    const reach = this.reach(session, node);
    if (!reach) return plain(res, 404, 'unknown session');
    const status =
      (await (reach.relay ? reach.relay(node as string, session, data) : undefined)) ??
      (await this.deliver(session, data));
    plain(res, status, STATUS_TEXT[status] ?? '');
  }

  /**
   * How a session is reached: here, or (held by another node: round-robin balancing, no sticky sessions) through the
   * engine's relay; undefined for a session that is neither.
   */
  private reach(
    session: string,
    node: unknown,
  ): { relay?: NonNullable<EmulationEndpointOptions['relay']> } | undefined {
    const local = this.sessions.get(session);
    const relay =
      !local && typeof node === 'string' && node !== '' && node.length <= 128 && node !== this.opts.node
        ? this.opts.relay
        : undefined;
    if (relay) return { relay };
    return local && !local.transport.closed ? {} : undefined;
  }

  /**
   * Hands one emulation request's commands to a session of this node (a local `POST /emulation`, or one relayed by
   * another node); resolves with the HTTP status: 200, 404 unknown session, 429 too many waiting, 500.
   * While the session's queue is full the request waits (its answer too) and is let in when the queue drains, in
   * arrival order: a client posting faster than its commands are handled is slowed down, never refused.
   */
  deliver(session: string, text: string | Uint8Array): Promise<number> {
    const entry = this.sessions.get(session);
    if (!entry || entry.transport.closed) return Promise.resolve(404);
    return new Promise<number>((resolve) => {
      const admitted = entry.transport.admit(() => {
        if (entry.transport.closed) return resolve(404);
        try {
          entry.handlers.onFrame(text);
        } catch (err) {
          this.opts.onError?.(err, `emulation ${EMULATION_PATH}`);
          return resolve(500);
        }
        resolve(200);
      });
      if (!admitted) resolve(429);
    });
  }

  terminateAll(): void {
    for (const { transport } of [...this.sessions.values()]) transport.gone();
    for (const transport of [...this.uniStreams]) transport.gone();
  }
}
