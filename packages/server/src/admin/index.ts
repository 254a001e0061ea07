import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { executeApi } from '../api/methods.js';
import { defaultNamespaceOptions, type HeraldConfig } from '../config/index.js';
import type { HeraldHooks } from '../hooks.js';
import type { Logger } from '../logger.js';
import type { HeraldNode } from '../node.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { encodeApiError } from '../protocol/replies.js';
import { checkOrigin } from '../transport/origin.js';
import { readBoundedBody } from '../transport/request-body.js';
import { parseRequestTarget } from '../transport/request-target.js';
import { ADMIN_NAMESPACE, ADMIN_TOKEN_TTL_SEC, ADMIN_USER, mintAdminToken, withAdminHooks } from './connection.js';
import { ConnectionRegistry } from './connections.js';
import { LoginLimiter } from './login-limiter.js';
import type { AdminSources } from './outbox-source.js';
import {
  ADMIN_COOKIE,
  ADMIN_SESSION_MS,
  cookieValue,
  passwordMatches,
  signSession,
  verifySession,
} from './session-cookie.js';
import { staticFile } from './static-files.js';
import { startStatsPublisher } from './stats.js';

export { ADMIN_STATS_CHANNEL, ADMIN_USER } from './connection.js';
export type { AdminStats } from './stats.js';

/** The server API methods the UI may call through POST <path>/api/call/<method> (api/methods.ts runs them). */
const CALLABLE = new Set([
  'info',
  'channels',
  'presence',
  'presence_stats',
  'history',
  'history_remove',
  'publish',
  'broadcast',
  'subscribe',
  'unsubscribe',
  'disconnect',
]);

/** Dead letters listed at most (the newest). */
const DEAD_LETTERS_LISTED = 100;
/** Connections listed by one Users query at most. */
const CONNECTIONS_LIMIT = 500;

/**
 * Prepares the configuration and hooks for the admin UI before the node is built: the `$admin` namespace (nothing
 * allowed to clients) and the admin connection in front of the app's hooks. Returns the secret that signs sessions and
 * admin tokens (a random one per process under admin.insecure without a secret).
 */
export function prepareAdmin(
  config: HeraldConfig,
  hooks: HeraldHooks | undefined,
): { hooks: HeraldHooks; secret: string; registry: ConnectionRegistry } {
  const secret = config.admin.secret ?? randomBytes(32).toString('hex');
  config.channel.namespaces.set(ADMIN_NAMESPACE, { ...defaultNamespaceOptions });
  const registry = new ConnectionRegistry();
  return { hooks: registry.wrap(withAdminHooks(hooks ?? {}, secret)), secret, registry };
}

export interface AdminOptions {
  config: HeraldConfig;
  node: HeraldNode;
  log: Logger;
  secret: string;
  registry: ConnectionRegistry;
  /** What extensions registered (the outbox's dead letters). */
  sources: AdminSources;
  /** The WebSocket paths (the UI connects to the first one). */
  wsPaths: readonly string[];
}

export interface Admin {
  /** Answers the request when its path is under the admin path; returns false (touching nothing) otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

function isTls(req: IncomingMessage): boolean {
  return Boolean((req.socket as TLSSocket).encrypted) || req.headers['x-forwarded-proto'] === 'https';
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

function fail(res: ServerResponse, status: number, code: number, message: string, headers?: Record<string, string>) {
  json(res, status, encodeApiError({ code, message }), headers);
}

const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function createAdmin(opts: AdminOptions): Admin {
  const { config, node, log, secret } = opts;
  const base = config.admin.path;
  const limiter = new LoginLimiter();
  const stop = startStatsPublisher({
    registry: node.metrics.registry,
    engine: node.engine,
    namespace: node.rulesOf(`${ADMIN_NAMESPACE}:stats`).options,
    nodeInfo: () => selfInfo(),
    log,
  });
  if (config.admin.insecure) log.warn(`admin UI at ${base} without a password (admin.insecure): development only`);
  else log.info(`admin UI at ${base}`);

  function authenticated(req: IncomingMessage): boolean {
    return config.admin.insecure || verifySession(secret, cookieValue(header(req, 'cookie'), ADMIN_COOKIE));
  }

  /** A state-changing request must come from a page of this server (or an origin listed in allowed_origins). */
  function originProblem(req: IncomingMessage): string | undefined {
    const origin = header(req, 'origin');
    if (!origin) return 'forbidden: the Origin header is missing (admin requests come from the admin page)';
    if ((config.allowedOrigins ?? []).some((o) => o !== '*' && o === origin)) return undefined;
    const d = checkOrigin(
      origin,
      { host: header(req, 'host'), forwardedHost: header(req, 'x-forwarded-host') },
      undefined,
      true,
    );
    return d.ok
      ? undefined
      : `forbidden: Origin ${origin} is not this server's (Host: ${header(req, 'host') ?? 'none'}); admin requests come from the admin page itself (behind a proxy, pass X-Forwarded-Host, or list the page's origin in client.allowed_origins)`;
  }

  function sessionCookie(req: IncomingMessage, value: string, maxAgeSec: number): string {
    const secure = isTls(req) ? '; Secure' : '';
    return `${ADMIN_COOKIE}=${value}; Path=${base}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure}`;
  }

  async function readJson(req: IncomingMessage, res: ServerResponse): Promise<Record<string, unknown> | undefined> {
    const read = await readBoundedBody(req, config.apiMaxBodyBytes);
    if (!read.ok) {
      if (read.tooLarge)
        fail(res, 413, ErrorCode.badRequest, `request body larger than ${config.apiMaxBodyBytes} bytes`, {
          connection: 'close',
        });
      return undefined;
    }
    try {
      const v: unknown = read.body.length === 0 ? {} : JSON.parse(read.body.toString('utf8'));
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // answered below
    }
    fail(res, 400, ErrorCode.badRequest, 'bad request: the body must be a JSON object');
    return undefined;
  }

  /** This node's row of the nodes table (node.nodes() lists it first), with its uid. */
  function selfInfo() {
    const self = node.nodes()[0]!;
    return { uid: node.uid, ...self };
  }

  function connections(user: string | undefined) {
    const { name } = selfInfo();
    return opts.registry.list(user, CONNECTIONS_LIMIT).map((c) => ({ ...c, node: name, node_uid: node.uid }));
  }

  async function api(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    if (req.method !== 'POST')
      return fail(res, 405, ErrorCode.badRequest, 'use POST with a JSON body', { allow: 'POST' });
    const bad = originProblem(req);
    if (bad) return fail(res, 403, ErrorCode.permissionDenied, bad);
    if (route === 'login') {
      const ip = req.socket.remoteAddress ?? '';
      const wait = limiter.wait(ip);
      if (wait > 0)
        return fail(res, 429, ErrorCode.tooManyRequests, `too many login attempts: try again in ${wait} s`, {
          'retry-after': String(wait),
        });
      const body = await readJson(req, res);
      if (!body) return;
      const password = typeof body.password === 'string' ? body.password : '';
      if (!config.admin.insecure && !passwordMatches(password, config.admin.password ?? '')) {
        limiter.failed(ip);
        log.warn({ ip }, 'admin login refused: wrong password');
        return fail(res, 401, ErrorCode.unauthorized, 'wrong password');
      }
      log.info({ ip: req.socket.remoteAddress }, 'admin login');
      return json(
        res,
        200,
        { ok: true },
        {
          'set-cookie': sessionCookie(req, signSession(secret), Math.floor(ADMIN_SESSION_MS / 1000)),
        },
      );
    }
    if (route === 'logout') return json(res, 200, { ok: true }, { 'set-cookie': sessionCookie(req, '', 0) });
    if (route === 'session')
      return json(res, 200, { authenticated: authenticated(req), insecure: config.admin.insecure });
    if (!authenticated(req))
      return fail(
        res,
        401,
        ErrorCode.unauthorized,
        'unauthorized: log in to the admin UI first (session cookie missing or expired)',
      );
    const body = await readJson(req, res);
    if (!body) return;
    if (route === 'token') {
      return json(res, 200, {
        token: await mintAdminToken(secret),
        ttl: ADMIN_TOKEN_TTL_SEC,
        path: opts.wsPaths[0] ?? '/connection/websocket',
        node: selfInfo().name,
      });
    }
    if (route === 'connections') {
      const user = typeof body.user === 'string' && body.user !== '' ? body.user : undefined;
      return json(res, 200, { result: { connections: connections(user), node: selfInfo().name } });
    }
    if (route === 'outbox' || route.startsWith('outbox/')) return outbox(res, route.slice(7), body);
    if (route === 'tail') {
      // The live tail: the admin connection (client id from its connect reply) is subscribed server-side.
      const channel = body.channel;
      const client = body.client;
      if (typeof channel !== 'string' || typeof client !== 'string')
        return fail(res, 400, ErrorCode.badRequest, 'bad request: channel and client are required');
      try {
        if (body.stop === true) await node.unsubscribeUser(ADMIN_USER, channel, client);
        else await node.subscribeUser(ADMIN_USER, channel, client);
        return json(res, 200, { result: {} });
      } catch (err) {
        const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
        return json(res, 200, encodeApiError(e.toReply()));
      }
    }
    if (route.startsWith('call/')) {
      const method = route.slice(5);
      if (!CALLABLE.has(method))
        return fail(res, 404, ErrorCode.methodNotFound, `method not found: "${method.slice(0, 40)}"`);
      try {
        const result = await executeApi(node, method, body, 'api');
        node.metrics.apiCalls.inc({ method, ok: 'true' });
        log.info({ method }, 'admin UI call');
        return json(res, 200, `{"result":${result}}`);
      } catch (err) {
        node.metrics.apiCalls.inc({ method, ok: 'false' });
        const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
        return json(res, e.code === ErrorCode.badRequest ? 400 : 200, encodeApiError(e.toReply()));
      }
    }
    return fail(res, 404, ErrorCode.methodNotFound, `not found: ${route.slice(0, 60)}`);
  }

  /** The outbox of this node: summary and dead letters; retry and delete one (docs/admin.md). */
  async function outbox(res: ServerResponse, action: string, body: Record<string, unknown>): Promise<void> {
    const o = opts.sources.outbox;
    if (!o) return json(res, 200, { result: { enabled: false } });
    if (action === '') {
      const { summary, dead } = await o.overview(DEAD_LETTERS_LISTED);
      return json(res, 200, { result: { enabled: true, target: o.target, summary, dead } });
    }
    const id = body.id;
    if (typeof id !== 'string' || !/^\d{1,19}$/.test(id))
      return fail(res, 400, ErrorCode.badRequest, "bad request: id must be the dead letter's id as a string of digits");
    if (action !== 'retry' && action !== 'delete')
      return fail(res, 404, ErrorCode.methodNotFound, `not found: outbox/${action.slice(0, 30)}`);
    const ok = action === 'retry' ? await o.retryDead(id) : await o.deleteDead(id);
    log.info({ id, action }, `admin UI: outbox dead letter ${action === 'retry' ? 'retried' : 'deleted'}`);
    if (!ok)
      return fail(res, 404, ErrorCode.methodNotFound, `dead letter ${id} not found (already retried or deleted?)`);
    return json(res, 200, { result: { ok: true } });
  }

  function page(req: IncomingMessage, res: ServerResponse, rel: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return fail(res, 405, ErrorCode.badRequest, 'use GET', { allow: 'GET, HEAD' });
    const file = staticFile(rel);
    if (!file) {
      if (rel === '')
        return fail(
          res,
          503,
          ErrorCode.notAvailable,
          'the admin UI is not built: run `npm run build` at the repository root (it builds packages/admin into packages/server/admin-ui)',
        );
      return fail(res, 404, ErrorCode.methodNotFound, `not found: ${rel.slice(0, 60)}`);
    }
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  return {
    handle(req, res) {
      const path = parseRequestTarget(req.url ?? '/')?.path;
      if (path === undefined || (path !== base && !path.startsWith(`${base}/`))) return false;
      if (path === base) {
        res.writeHead(308, { location: `${base}/` });
        res.end();
        return true;
      }
      const rel = path.slice(base.length + 1);
      if (rel.startsWith('api/')) {
        api(req, res, rel.slice(4)).catch((err: unknown) => {
          log.error({ err }, 'admin request failed');
          if (res.headersSent) res.destroy();
          else fail(res, 500, ErrorCode.internal, 'internal server error');
        });
      } else page(req, res, rel);
      return true;
    },
    close: stop,
  };
}
