import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { executeApi, isApiMethod } from './methods.js';
import type { HeraldCore } from '../herald.js';

/** HTTP side of the one listener: /api/<method>, /health, /ready, /metrics, and 426 on the WebSocket paths. */

export interface HttpHandlerOptions {
  core: HeraldCore;
  apiKey: string | undefined;
  apiInsecure: boolean;
  maxBodyBytes: number;
  ratePerSecond: number;
  metricsText(): Promise<{ contentType: string; body: string }>;
  plainWs(method: string | undefined, url: string): { status: number; headers: Record<string, string>; body: string } | undefined;
  readiness(): { ready: boolean; checks: Record<string, string> };
  onApiCall(method: string, seconds: number, ok: boolean): void;
}

function keyDigest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison of the presented key with the configured one (digests equalise lengths). */
function keyMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(keyDigest(presented), keyDigest(expected));
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function errorBody(code: number, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

function presentedKey(req: IncomingMessage): string | undefined {
  const h = req.headers['x-api-key'];
  if (typeof h === 'string') return h;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^apikey\s+(\S.*)$/i.exec(auth);
    if (m) return m[1]!.trim();
  }
  return undefined;
}

class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly rate: number) {}
  allow(key: string): boolean {
    if (this.rate <= 0) return true;
    const now = Date.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size > 10_000) this.buckets.clear();
      b = { tokens: this.rate, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.rate, b.tokens + ((now - b.at) * this.rate) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HeraldError(413, `request body larger than ${limit} bytes (HERALD_API_MAX_BODY)`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        // Stop reading but keep the socket: the caller answers 413 and closes once the answer is written.
        req.removeAllListeners('data');
        req.pause();
        chunks.length = 0;
        reject(new HeraldError(413, `request body larger than ${limit} bytes (HERALD_API_MAX_BODY)`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function createHttpHandler(opts: HttpHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const limiter = new RateLimiter(opts.ratePerSecond);
  return (req, res) => {
    handle(req, res).catch((err) => {
      send(res, 500, errorBody(ErrorCode.internal, 'internal server error'));
      void err;
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const plain = opts.plainWs(req.method, url);
    if (plain) {
      res.writeHead(plain.status, { ...plain.headers, 'content-length': Buffer.byteLength(plain.body) });
      res.end(plain.body);
      return;
    }
    if (path === '/health') return send(res, 200, '{"status":"ok"}');
    if (path === '/ready') {
      const r = opts.readiness();
      return send(res, r.ready ? 200 : 503, JSON.stringify({ status: r.ready ? 'ready' : 'not ready', checks: r.checks }));
    }
    if (path === '/metrics') {
      const m = await opts.metricsText();
      res.writeHead(200, { 'content-type': m.contentType });
      res.end(m.body);
      return;
    }
    if (path.startsWith('/api/') || path === '/api') {
      return api(req, res, path.slice(5));
    }
    send(res, 404, JSON.stringify({ error: { code: 404, message: `not found: ${path.slice(0, 100)}` }, server: 'herald' }));
  }

  async function api(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (req.method !== 'POST') return send(res, 405, errorBody(ErrorCode.badRequest, 'use POST with a JSON body'), { allow: 'POST' });
    // Before the key check: guesses at the key count against the client's budget too.
    if (!limiter.allow(req.socket.remoteAddress ?? '')) {
      return send(res, 429, errorBody(ErrorCode.tooManyRequests, 'too many requests: HTTP API rate limit (HERALD_API_RATE)'), { 'retry-after': '1' });
    }
    if (!opts.apiInsecure) {
      if (!opts.apiKey) return send(res, 503, errorBody(ErrorCode.notAvailable, 'the HTTP API is off: set HERALD_API_KEY (or http_api.key) to turn it on'));
      if (!keyMatches(presentedKey(req), opts.apiKey)) {
        return send(res, 401, errorBody(ErrorCode.unauthorized, 'unauthorized: send the API key in the X-API-Key header (HERALD_API_KEY)'));
      }
    }
    if (!isApiMethod(method)) return send(res, 404, errorBody(ErrorCode.methodNotFound, `method not found: "${method.slice(0, 40)}"`));
    let body: Buffer;
    try {
      body = await readBody(req, opts.maxBodyBytes);
    } catch (err) {
      if (err instanceof HeraldError && err.code === 413) {
        res.once('finish', () => req.destroy());
        return send(res, 413, errorBody(ErrorCode.badRequest, err.message), { connection: 'close' });
      }
      return;
    }
    let params: unknown;
    try {
      params = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      return send(res, 400, errorBody(ErrorCode.badRequest, 'bad request: body is not valid JSON'));
    }
    const started = process.hrtime.bigint();
    try {
      const result = await executeApi(opts.core, method, params);
      opts.onApiCall(method, Number(process.hrtime.bigint() - started) / 1e9, true);
      send(res, 200, `{"result":${result}}`);
    } catch (err) {
      opts.onApiCall(method, Number(process.hrtime.bigint() - started) / 1e9, false);
      const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
      const status = e.code === ErrorCode.badRequest ? 400 : e.temporary || e.code === ErrorCode.internal ? 503 : 200;
      send(res, status, JSON.stringify({ error: e.toReply() }));
    }
  }
}
