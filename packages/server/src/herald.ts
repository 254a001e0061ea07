import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAdmin, prepareAdmin } from './admin/index.js';
import type { AdminSources } from './admin/outbox-source.js';
import { createHttpHandler } from './api/http.js';
import { executeApi } from './api/methods.js';
import { loadConfig, processEnv, type HeraldConfig, type LoadConfigInput } from './config/index.js';
import type { HeraldCore, PublishSource } from './core.js';
import type { Engine } from './engine/engine.js';
import { engineFromConfig } from './engine/from-config.js';
import type { HeraldHooks } from './hooks.js';
import { createLogger, type Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { WebhookEmitter } from './webhooks/events.js';
import { HeraldNode } from './node.js';
import { Disconnect, ErrorCode } from './protocol/codes.js';
import { EmulationEndpoint } from './transport/emulation.js';
import { IpConnections } from './transport/ip-connections.js';
import { requestPath } from './transport/request-target.js';
import { UNI_WEBSOCKET_PATH } from './transport/uni.js';
import { WebSocketEndpoint } from './transport/websocket.js';
import { HERALD_VERSION } from './version.js';

export interface HeraldOptions {
  /** Environment to read (WS_PORT, HERALD_*). @default process.env */
  env?: Record<string, string | undefined>;
  /** JSON config file path (Centrifugo v6 key names). @default HERALD_CONFIG */
  configFile?: string;
  /** Parsed config object instead of a file. */
  fileConfig?: unknown;
  /** Explicit settings; win over the file and the environment. */
  config?: LoadConfigInput['overrides'];
  hooks?: HeraldHooks;
  /**
   * A custom engine (e.g. `createRedisEngine` from `@herald/server/redis`); it declares `capabilities` (engine/engine.ts,
   * default shared). @default memory, or redis when HERALD_ENGINE=redis (imported with ioredis only then)
   */
  engine?: Engine;
  /** A pino logger, or false for none. @default a logger at HERALD_LOG_LEVEL */
  logger?: Logger | false;
}

export type { HeraldCore, PublishCallOptions, PublishSource } from './core.js';

export interface Herald extends HeraldCore {
  readonly config: HeraldConfig;
  readonly engine: Engine;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** What extensions show in the admin UI (the outbox registers its dead letters here; docs/admin.md). */
  readonly adminSources: AdminSources;
  /** The configured webhooks (docs/proxy.md, "Webhooks"): extensions such as the outbox emit their events here. */
  readonly webhooks: WebhookEmitter;
  /** Runs one server API method by name with a Centrifugo-shaped body; resolves with the `result` object. */
  /** Runs an HTTP API method in process; `source` labels its publications in /metrics (default 'server'). */
  call(method: string, params: unknown, opts?: { source?: PublishSource }): Promise<unknown>;
  /**
   * Handles upgrades on Herald's WebSocket paths of an existing server; other upgrades (e.g. Next.js HMR) are
   * untouched. With `path`, only that path (or those paths) on that server, which also become WebSocket paths of
   * handleUpgrade and listen() next to config.wsPaths (unchanged); servers attached earlier keep their paths.
   */
  attach(server: Server, options?: { path?: string | string[] }): void;
  /** HTTP handler for /api, /health, /ready, /metrics and the 426 probe answer; for custom servers. */
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  /** Handles an upgrade if its path is Herald's; returns false (touching nothing) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Starts Herald's own listener. @default port config.port, host config.host */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Named readiness checks shown by GET /ready (e.g. the outbox adds one). */
  setReadiness(name: string, state: { ok: boolean; reason?: string }): void;
  isReady(): boolean;
  /**
   * Runs `fn` when close() starts, before clients are closed and the engine stops (an extension such as the outbox
   * consumer stops there, so nothing it publishes meets a closed engine). close() waits for every hook; a hook that
   * throws is logged and does not stop the shutdown. Returns a function that removes the hook.
   */
  onClose(fn: () => Promise<void> | void): () => void;
  /** Graceful stop: run the onClose hooks, refuse new upgrades (503), close clients with 3001, wait up to the deadline, close the engine. */
  close(): Promise<void>;
  readonly connectionCount: number;
}

export function createHerald(options: HeraldOptions = {}): Herald {
  const loaded = loadConfig({
    env: options.env ?? processEnv(),
    configFile: options.configFile,
    fileConfig: options.fileConfig,
    overrides: options.config,
  });
  const { warnings, ...config } = loaded;
  const log: Logger =
    options.logger === false ? createLogger('silent', false) : (options.logger ?? createLogger(config.logLevel));
  for (const w of warnings) log.warn(w);

  const engine = options.engine ?? engineFromConfig(config, log);
  // The admin UI (docs/admin.md) adds its namespace and its own connection in front of the app's hooks.
  const adminSetup = config.admin.enabled ? prepareAdmin(config, options.hooks) : undefined;
  const node = new HeraldNode({ config, engine, hooks: adminSetup?.hooks ?? options.hooks, log });
  const { metrics } = node;
  const readiness = new Map<string, { ok: boolean; reason?: string }>();
  const closeHooks = new Set<() => unknown>();
  let accepting = true;
  let closing: Promise<void> | undefined;
  const servers: Server[] = [];
  /**
   * The endpoint's WebSocket paths: the configured ones and every path given to attach(). A copy: attaching never
   * changes config.wsPaths, nor the paths another attached server handles.
   */
  const wsPaths = [...config.wsPaths];

  /** A throw that reached an entry point (request, upgrade, frame): a bug, logged; the peer got a 500 or a closed socket. */
  function logEntryError(err: unknown, where: string): void {
    log.error({ err, where }, `unexpected error in ${where}: answered 500 or closed the connection; please report it`);
  }

  const ipConnections = new IpConnections(config.ipConnectionLimit);
  const endpoint = new WebSocketEndpoint({
    paths: wsPaths,
    uniPaths: config.uniWebsocket ? [UNI_WEBSOCKET_PATH] : [],
    uniJoinMessages: config.uniWebsocketJoinPushMessages,
    uniMaxMessageBytes: config.uniWebsocketMessageSizeLimit,
    version: HERALD_VERSION,
    maxMessageBytes: config.maxMessageBytes,
    maxSendBufferBytes: config.maxSendBufferBytes,
    allowedOrigins: config.allowedOrigins,
    requireOrigin: false,
    cookieRequiresOrigin: config.cookieRequiresOrigin,
    ipConnections,
    isAccepting: () => accepting,
    onConnection: (transport, request) => node.openSession(transport, request),
    onRejected(status, reason, request) {
      log.info({ status, reason, origin: request.headers.origin, ip: request.remoteAddress }, 'upgrade refused');
    },
    onError: logEntryError,
  });

  const emulation = new EmulationEndpoint({
    httpStream: config.httpStream,
    sse: config.sse,
    uniHttpStream: config.uniHttpStream,
    uniSse: config.uniSse,
    uniSseMaxRequestBodyBytes: config.uniSseMaxRequestBodyBytes,
    uniHttpStreamMaxRequestBodyBytes: config.uniHttpStreamMaxRequestBodyBytes,
    node: node.uid,
    maxMessageBytes: config.maxMessageBytes,
    maxJsonDepth: config.maxJsonDepth,
    maxSendBufferBytes: config.maxSendBufferBytes,
    allowedOrigins: config.allowedOrigins,
    cookieRequiresOrigin: config.cookieRequiresOrigin,
    ipConnections,
    isAccepting: () => accepting,
    onConnection: (transport, request) => node.openSession(transport, request),
    relay: (owner, session, data) => node.emulationRelay.relay(owner, session, data),
    onError: logEntryError,
  });
  node.emulationRelay.target = (session, data) => emulation.deliver(session, data);

  function isReady(): boolean {
    if (!accepting || !engine.isReady()) return false;
    for (const r of readiness.values()) if (!r.ok) return false;
    return true;
  }

  const apiHandler = createHttpHandler({
    core: node,
    apiKey: config.apiKey,
    apiInsecure: config.apiInsecure,
    maxBodyBytes: config.apiMaxBodyBytes,
    ratePerSecond: config.apiRatePerSecond,
    metricsText: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    plainWs: (method, url) => (endpoint.ownsPath(url) ? endpoint.answerPlainRequest(method) : undefined),
    readiness: () => {
      const checks: Record<string, string> = {
        engine: engine.isReady() ? 'ok' : (engine.notReadyReason?.() ?? `${engine.name} engine not reachable`),
        accepting: accepting ? 'ok' : 'shutting down',
      };
      for (const [name, r] of readiness) checks[name] = r.ok ? 'ok' : (r.reason ?? 'not ready');
      return { ready: isReady(), checks };
    },
    onApiCall: (method, _s, ok) => metrics.apiCalls.inc({ method, ok: String(ok) }),
    allowedOrigins: config.allowedOrigins,
    onError: logEntryError,
  });
  const adminSources: AdminSources = {};
  const admin = adminSetup && createAdmin({ config, node, log, ...adminSetup, wsPaths, sources: adminSources });
  if (admin) closeHooks.add(() => admin.close());
  /** The request listener (listen) and handleRequest (embedding): nothing thrown inside gets out. */
  const httpHandler: typeof apiHandler = (req, res) => {
    try {
      if (admin?.handle(req, res)) return;
      if (!emulation.handle(req, res)) apiHandler(req, res);
    } catch (err) {
      logEntryError(err, 'http request');
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: { code: ErrorCode.internal, message: 'internal server error' } }));
      }
    }
  };

  /** The upgrade entry point: nothing thrown inside gets out; a failure destroys that socket. */
  function safeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    try {
      return endpoint.handleUpgrade(req, socket, head);
    } catch (err) {
      logEntryError(err, 'upgrade');
      socket.destroy();
      return true;
    }
  }

  /** `own`: Herald's own server (listen), where an upgrade on any other path is answered 404 instead of left open. */
  function attachUpgrade(server: Server, paths?: string[], own = false): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = requestPath(req.url);
      if (paths && (path === undefined || !paths.includes(path))) return;
      if (!safeUpgrade(req, socket, head) && own) {
        socket.on('error', () => socket.destroy());
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    });
  }

  const herald: Herald = {
    get apiLimits() {
      return node.apiLimits;
    },
    publish: (channel, data, opts) => node.publish(channel, data, opts),
    mapPublish: (channel, key, data, opts) => node.mapPublish(channel, key, data, opts),
    mapRemove: (channel, key, opts) => node.mapRemove(channel, key, opts),
    subscribeUser: (user, channel, client) => node.subscribeUser(user, channel, client),
    unsubscribeUser: (user, channel, client) => node.unsubscribeUser(user, channel, client),
    disconnectUser: (user, opts) => node.disconnectUser(user, opts),
    presence: (channel) => node.presence(channel),
    presenceStats: (channel) => node.presenceStats(channel),
    history: (channel, opts) => node.history(channel, opts),
    removeHistory: (channel) => node.removeHistory(channel),
    channels: () => node.channels(),
    nodes: () => node.nodes(),
    config,
    engine,
    log,
    metrics,
    webhooks: node.webhooks,
    adminSources,
    async call(method, params, opts = {}) {
      return JSON.parse(await executeApi(node, method, params, opts.source ?? 'server'));
    },
    attach(server, opts = {}) {
      const paths = opts.path === undefined ? undefined : Array.isArray(opts.path) ? [...opts.path] : [opts.path];
      for (const p of paths ?? []) if (!wsPaths.includes(p)) wsPaths.push(p);
      // The app's server receives Herald's upgrades, so it gets Herald's slow-handshake bound too (never a laxer one:
      // a stricter headersTimeout the app chose stays). Node checks it every `connectionsCheckingInterval` (30 s
      // unless the app created its server with a smaller one; docs/deployment.md).
      if (server.headersTimeout === 0 || server.headersTimeout > config.handshakeTimeoutMs) {
        server.headersTimeout = config.handshakeTimeoutMs;
        if (server.requestTimeout !== 0 && server.requestTimeout < server.headersTimeout)
          server.requestTimeout = server.headersTimeout;
      }
      attachUpgrade(server, paths);
    },
    handleRequest: httpHandler,
    handleUpgrade: safeUpgrade,
    async listen(port = config.port, host = config.host) {
      // Handshake timeouts are checked every second (Node's default, 30 s, would let a slow handshake live 40 s).
      const server = createServer({ connectionsCheckingInterval: 1000 }, httpHandler);
      server.headersTimeout = config.handshakeTimeoutMs;
      server.requestTimeout = Math.max(30_000, config.handshakeTimeoutMs);
      server.keepAliveTimeout = 5_000;
      server.maxHeadersCount = 200;
      attachUpgrade(server, undefined, true);
      servers.push(server);
      await node.running;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // A reconnect storm (a node died; its clients all come back at once) overflows Node's default accept queue
        // of 511, and the kernel then drops handshakes, which clients see as a stall or a reset. The kernel caps this
        // at net.core.somaxconn (docs/deployment.md).
        server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address() as AddressInfo;
      log.info(
        { port: addr.port, host: addr.address, engine: engine.name, paths: wsPaths, version: HERALD_VERSION },
        `Herald listening on ${addr.address}:${addr.port}`,
      );
      return addr;
    },
    setReadiness(name, state) {
      readiness.set(name, state);
    },
    isReady,
    get connectionCount() {
      return node.connectionCount;
    },
    onClose(fn) {
      const hook = () => fn();
      closeHooks.add(hook);
      return () => {
        closeHooks.delete(hook);
      };
    },
    close() {
      closing ??= (async () => {
        // Extensions (the outbox) stop first, while the engine still takes their last publishes.
        await Promise.all(
          [...closeHooks].map(async (hook) => {
            try {
              await hook();
            } catch (err) {
              log.warn({ err }, 'a close hook failed; stopping anyway');
            }
          }),
        );
        accepting = false;
        // The listeners stay open while draining: upgrades get 503 and /ready 503, so clients and balancers are told
        // why, instead of meeting a refused connection.
        node.disconnectAll(Disconnect.shutdown);
        const deadline = Date.now() + config.shutdownTimeoutMs;
        while (endpoint.connectionCount + emulation.connectionCount > 0 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 25));
        for (const s of servers) s.close();
        endpoint.terminateAll();
        emulation.terminateAll();
        for (const s of servers) s.closeAllConnections?.();
        await node.close();
        log.info('Herald stopped');
      })();
      return closing;
    },
  };
  return herald;
}

/** The accept queue asked of the kernel for `listen` (capped by net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;
