import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientTransport, SharedFrame, UpgradeRequestInfo } from './connection.js';
import type { IpConnections } from './ip-connections.js';
import { checkOrigin } from './origin.js';
import type { SessionHandlers } from './websocket.js';

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
  /** This node's id, echoed by clients in emulation requests. */
  node: string;
  maxMessageBytes: number;
  maxSendBufferBytes: number;
  allowedOrigins: readonly string[] | undefined;
  /** Refuse requests that carry a Cookie header but no Origin. */
  cookieRequiresOrigin: boolean;
  /** Per-IP connection counts, shared with the WebSocket endpoint. */
  ipConnections: IpConnections;
  isAccepting(): boolean;
  onConnection(transport: ClientTransport, request: UpgradeRequestInfo): SessionHandlers;
}

export const HTTP_STREAM_PATH = '/connection/http_stream';
export const SSE_PATH = '/connection/sse';
export const EMULATION_PATH = '/emulation';

class StreamTransport implements ClientTransport {
  private pending: string[] = [];
  private scheduled = false;
  closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly sse: boolean,
    readonly remoteAddress: string,
    readonly emulation: { session: string; node: string },
    private readonly maxSendBufferBytes: number,
    private readonly onEnd: (code: number, reason: string) => void,
  ) {}

  send(text: string): void {
    if (this.closed) return;
    this.pending.push(text);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  sendShared(frame: SharedFrame): void {
    this.send(frame.text);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.pending.push(JSON.stringify({ push: { disconnect: { code, reason } } }));
    this.flush();
    this.end(code, reason);
  }

  /** The client went away (aborted fetch, closed EventSource). */
  gone(): void {
    if (!this.closed) this.end(1000, 'connection closed');
  }

  private end(code: number, reason: string): void {
    this.closed = true;
    this.res.end();
    this.onEnd(code, reason);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || this.res.writableEnded) return;
    const msgs = this.pending;
    this.pending = [];
    this.res.write(this.sse ? msgs.map((m) => `data: ${m}\n\n`).join('') : msgs.map((m) => `${m}\n`).join(''));
    if (this.res.writableLength > this.maxSendBufferBytes && !this.closed) this.close(3008, 'slow');
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

function plain(res: ServerResponse, status: number, body = ''): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export class EmulationEndpoint {
  private readonly sessions = new Map<string, { transport: StreamTransport; handlers: SessionHandlers }>();

  constructor(private readonly opts: EmulationEndpointOptions) {}

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Handles the request if its path is an enabled emulation path; returns false (touching nothing) otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const o = this.opts;
    const isStream = o.httpStream && path === HTTP_STREAM_PATH;
    const isSse = o.sse && path === SSE_PATH;
    const isEmulation = (o.httpStream || o.sse) && path === EMULATION_PATH;
    if (!isStream && !isSse && !isEmulation) return false;

    // Browsers send these cross-origin with CORS; the Origin policy is the WebSocket one.
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const decision = checkOrigin(origin, { host: req.headers.host }, o.allowedOrigins, o.cookieRequiresOrigin && req.headers.cookie !== undefined);
    if (!decision.ok) {
      plain(res, 403, decision.message);
      return true;
    }
    if (origin) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-methods': 'GET, POST', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '600' });
      res.end();
      return true;
    }
    if (isEmulation) void this.onEmulation(req, res);
    else if (isStream) void this.onStream(req, res, false, undefined);
    else void this.onStream(req, res, true, url.searchParams.get('cf_connect') ?? undefined);
    return true;
  }

  private async onStream(req: IncomingMessage, res: ServerResponse, sse: boolean, connectParam: string | undefined): Promise<void> {
    const o = this.opts;
    if (!o.isAccepting()) return plain(res, 503, 'shutting down');
    if (!sse && req.method !== 'POST') return plain(res, 405, 'POST the connect command');
    if (sse && req.method !== 'GET') return plain(res, 405, 'GET with ?cf_connect=<connect command>');
    // The protobuf SDK posts application/octet-stream; Herald speaks JSON only (WebSocket refuses it with 3506).
    if (!sse && /octet-stream/i.test(req.headers['content-type'] ?? '')) return plain(res, 415, 'Herald speaks the JSON protocol only');
    const initial = sse ? connectParam : await readBody(req, o.maxMessageBytes);
    if (!initial) return plain(res, 400, sse ? 'cf_connect query parameter missing' : 'body missing or too large');
    const remoteAddress = req.socket.remoteAddress ?? '';
    if (o.ipConnections.full(remoteAddress)) return plain(res, 429, o.ipConnections.message(remoteAddress));

    res.writeHead(200, sse
      ? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'private, no-cache, no-store, must-revalidate, max-age=0', 'x-accel-buffering': 'no' }
      : { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.flushHeaders();

    const session = randomUUID();
    const releaseIp = o.ipConnections.acquire(remoteAddress);
    let handlers: SessionHandlers | undefined;
    const transport = new StreamTransport(res, sse, remoteAddress, { session, node: o.node }, o.maxSendBufferBytes, (code, reason) => {
      releaseIp();
      this.sessions.delete(session);
      handlers?.onClose(code, reason);
    });
    handlers = o.onConnection(transport, { headers: req.headers, remoteAddress, url: req.url ?? '' });
    this.sessions.set(session, { transport, handlers });
    res.on('close', () => transport.gone());
    handlers.onFrame(initial);
  }

  private async onEmulation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return plain(res, 405, 'POST {"session","node","data"}');
    const body = await readBody(req, this.opts.maxMessageBytes + 1024);
    let msg: { session?: unknown; node?: unknown; data?: unknown };
    try {
      msg = JSON.parse(body ?? '') as typeof msg;
    } catch {
      return plain(res, 400, 'expected JSON {"session","node","data"}');
    }
    const entry = typeof msg.session === 'string' ? this.sessions.get(msg.session) : undefined;
    if (!entry || entry.transport.closed) return plain(res, 404, 'unknown session');
    const text = typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data ?? null);
    entry.handlers.onFrame(text);
    plain(res, 200);
  }

  terminateAll(): void {
    for (const { transport } of [...this.sessions.values()]) transport.gone();
  }
}
