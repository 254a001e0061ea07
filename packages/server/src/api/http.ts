import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isApiMethod } from '../protocol/api-commands.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { encodeApiError, encodeApiResult } from '../protocol/replies.js';
import { executeApi } from './methods.js';
import type { HeraldCore } from '../core.js';
import { checkRequestOrigin } from '../transport/origin.js';
import { readBoundedBody } from '../transport/request-body.js';
import { parseRequestTarget } from '../transport/request-target.js';

/** HTTP side of the one listener: /api/<method>, /health, /ready, /metrics, and 426 on the WebSocket paths. */

export interface HttpHandlerOptions {
  core: HeraldCore;
  apiKey: string | undefined;
  apiInsecure: boolean;
  maxBodyBytes: number;
  ratePerSecond: number;
  metricsText(): Promise<{ contentType: string; body: string }>;
  plainWs(
    method: string | undefined,
    url: string,
  ): { status: number; headers: Record<string, string>; body: string } | undefined;
  /** The checks by name: 'ok' or why not. Only a caller with the API key sees the reasons (they name hosts). */
  readiness(): { ready: boolean; checks: Record<string, string> };
  onApiCall(method: string, seconds: number, ok: boolean): void;
  /** The Origin allowlist (HERALD_ALLOWED_ORIGINS): an insecure API refuses browser pages from other origins. */
  allowedOrigins?: readonly string[] | undefined;
  /** A throw inside Herald while answering (a bug): logged; the request gets a 500, never the process. */
  onError?(err: unknown, where: string): void;
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
  return encodeApiError({ code, message });
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

/** An insecure API is reachable from any web page: only JSON bodies (a page cannot send those without CORS). */
function isJsonContentType(value: string | undefined): boolean {
  const type = (value ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

export function createHttpHandler(opts: HttpHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const limiter = new RateLimiter(opts.ratePerSecond);
  return (req, res) => {
    let work: Promise<void>;
    try {
      work = handle(req, res);
    } catch (err) {
      work = Promise.reject(err);
    }
    work.catch((err: unknown) => {
      opts.onError?.(err, `http ${req.method ?? ''} ${String(req.url).slice(0, 100)}`);
      if (res.headersSent) res.destroy();
      else send(res, 500, errorBody(ErrorCode.internal, 'internal server error'));
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const target = parseRequestTarget(url);
    if (!target)
      return send(
        res,
        400,
        errorBody(ErrorCode.badRequest, 'bad request: the request target is not a path or an http(s) URL'),
        { connection: 'close' },
      );
    const path = target.path;
    const plain = opts.plainWs(req.method, url);
    if (plain) {
      res.writeHead(plain.status, { ...plain.headers, 'content-length': Buffer.byteLength(plain.body) });
      res.end(plain.body);
      return;
    }
    if (path === '/health') return send(res, 200, '{"status":"ok"}');
    if (path === '/ready') {
      const r = opts.readiness();
      const status = r.ready ? 'ready' : 'not ready';
      // The reasons name hosts and ports (a database URL, a Redis node): only for the operator, with the API key.
      const trusted = opts.apiKey ? keyMatches(presentedKey(req), opts.apiKey) : opts.apiInsecure;
      const body = trusted
        ? { status, checks: r.checks }
        : { status, failed: Object.keys(r.checks).filter((k) => r.checks[k] !== 'ok') };
      return send(res, r.ready ? 200 : 503, JSON.stringify(body), { 'cache-control': 'no-store' });
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
    send(
      res,
      404,
      JSON.stringify({
        error: { code: ErrorCode.methodNotFound, message: `not found: ${path.slice(0, 100)}` },
        server: 'herald',
      }),
    );
  }

  async function api(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (req.method !== 'POST')
      return send(res, 405, errorBody(ErrorCode.badRequest, 'use POST with a JSON body'), { allow: 'POST' });
    // Before the key check: guesses at the key count against the client's budget too.
    if (!limiter.allow(req.socket.remoteAddress ?? '')) {
      return send(
        res,
        429,
        errorBody(ErrorCode.tooManyRequests, 'too many requests: HTTP API rate limit (HERALD_API_RATE)'),
        { 'retry-after': '1' },
      );
    }
    if (!opts.apiInsecure) {
      if (!opts.apiKey)
        return send(
          res,
          503,
          errorBody(ErrorCode.notAvailable, 'the HTTP API is off: set HERALD_API_KEY (or http_api.key) to turn it on'),
        );
      if (!keyMatches(presentedKey(req), opts.apiKey)) {
        return send(
          res,
          401,
          errorBody(ErrorCode.unauthorized, 'unauthorized: send the API key in the X-API-Key header (HERALD_API_KEY)'),
        );
      }
    } else {
      // Without a key any web page could post here (a text/plain form or fetch needs no CORS preflight): only JSON
      // bodies, and no page from a foreign origin.
      if (!isJsonContentType(req.headers['content-type'])) {
        return send(
          res,
          415,
          errorBody(
            ErrorCode.badRequest,
            'unsupported media type: send the body as Content-Type: application/json (required while HERALD_API_INSECURE=true)',
          ),
        );
      }
      const decision = checkRequestOrigin(req.headers, opts.allowedOrigins);
      if (!decision.ok)
        return send(
          res,
          403,
          errorBody(
            ErrorCode.permissionDenied,
            `forbidden: ${decision.message ?? 'origin not allowed'} (HERALD_API_INSECURE=true accepts no cross-origin browser calls)`,
          ),
        );
    }
    if (!isApiMethod(method))
      return send(res, 404, errorBody(ErrorCode.methodNotFound, `method not found: "${method.slice(0, 40)}"`));
    const read = await readBoundedBody(req, opts.maxBodyBytes);
    if (!read.ok) {
      // The rest of an oversized body was read and discarded, so the client gets the 413 rather than a reset.
      if (read.tooLarge)
        return send(
          res,
          413,
          errorBody(ErrorCode.badRequest, `request body larger than ${opts.maxBodyBytes} bytes (HERALD_API_MAX_BODY)`),
          { connection: 'close' },
        );
      return;
    }
    const body = read.body;
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
      send(res, 200, encodeApiResult(result));
    } catch (err) {
      opts.onApiCall(method, Number(process.hrtime.bigint() - started) / 1e9, false);
      const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
      const status = e.code === ErrorCode.badRequest ? 400 : e.temporary || e.code === ErrorCode.internal ? 503 : 200;
      send(res, status, encodeApiError(e.toReply()));
    }
  }
}
