import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createHttpHandler } from './api/http.js';
import { executeApi } from './api/methods.js';
import { createTokenAuth, loadPublicKey, TokenError, type TokenAuth } from './auth/index.js';
import type { ChannelRules } from './channels/rules.js';
import { resolveChannel } from './channels/rules.js';
import { loadConfig, type HeraldConfig, type LoadConfigInput } from './config/index.js';
import type { ControlMessage, NodeInfo, PublishOptions } from './engine/broker.js';
import type { Engine } from './engine/engine.js';
import { createMemoryEngine } from './engine/memory/index.js';
import { createRedisEngine } from './engine/redis/index.js';
import type { HeraldCore, PublishSource } from './core.js';
import type { HeraldHooks } from './hooks.js';
import { createFeedContinuity } from './feed-continuity.js';
import { Hub } from './hub.js';
import { createLogger, type Logger } from './logger.js';
import { redactRedisUrl } from './engine/redis/url.js';
import { Metrics } from './metrics.js';
import { jsonText } from './protocol/codec.js';
import { jsonDepthProblem } from './protocol/json-depth.js';
import { Disconnect, ErrorCode, HeraldError, UnsubscribeCode, type DisconnectInfo } from './protocol/codes.js';
import { Session, type SessionNode } from './session.js';
import type { ClientTransport, UpgradeRequestInfo } from './transport/connection.js';
import { EmulationEndpoint } from './transport/emulation.js';
import { IpConnections } from './transport/ip-connections.js';
import { requestPath } from './transport/request-target.js';
import { WebSocketEndpoint, type SessionHandlers } from './transport/websocket.js';
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
  /** A custom engine (e.g. a Redis engine built by the caller). @default memory, or redis when HERALD_ENGINE=redis */
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
  /** Runs one server API method by name with a Centrifugo-shaped body; resolves with the `result` object. */
  /** Runs an HTTP API method in process; `source` labels its publications in /metrics (default 'server'). */
  call(method: string, params: unknown, opts?: { source?: PublishSource }): Promise<unknown>;
  /** Handles upgrades on Herald's WebSocket paths of an existing server; other upgrades (e.g. Next.js HMR) are untouched. */
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
  /** Graceful stop: refuse new upgrades (503), close clients with 3001, wait up to the deadline, close the engine. */
  close(): Promise<void>;
  readonly connectionCount: number;
}

export function createHerald(options: HeraldOptions = {}): Herald {
  const loaded = loadConfig({
    env: options.env ?? process.env,
    configFile: options.configFile,
    fileConfig: options.fileConfig,
    overrides: options.config,
  });
  const { warnings, ...config } = loaded;
  const log: Logger = options.logger === false ? createLogger('silent', false) : options.logger ?? createLogger(config.logLevel);
  for (const w of warnings) log.warn(w);

  const engine = options.engine ?? createEngineFromConfig(config, log);
  const hooks = options.hooks ?? {};
  const nodeUid = randomUUID();
  const startedAt = Date.now();
  const sessions = new Set<Session>();
  const byUser = new Map<string, Set<Session>>();
  const byClient = new Map<string, Session>();
  const remoteNodes = new Map<string, NodeInfo>();
  const readiness = new Map<string, { ok: boolean; reason?: string }>();
  let accepting = true;
  let closing: Promise<void> | undefined;
  const servers: Server[] = [];

  let tokenAuth: TokenAuth | undefined;
  const t = config.token;
  if (t.hmacSecret || t.publicKey || t.jwksUrl) {
    tokenAuth = createTokenAuth({
      hmacSecret: t.hmacSecret,
      publicKeyPem: t.publicKey ? loadPublicKey(t.publicKey) : undefined,
      jwksUrl: t.jwksUrl,
      audience: t.audience,
      issuer: t.issuer,
      requireExp: t.requireExp,
      maxInfoBytes: config.maxInfoBytes,
      maxJsonDepth: config.maxJsonDepth,
    });
  }

  const metrics = new Metrics(() => ({ connections: byClient.size, subscriptions: hub.numSubscriptions, channels: hub.numChannels }));
  const hub = new Hub(
    engine.broker,
    (err, channel) => log.warn({ err, channel }, 'broker unsubscribe failed'),
    (channel, epoch, seen, feed) => {
      continuity.rewound(channel, epoch, { seenOffset: seen, feedOffset: feed })
        .catch((err: unknown) => log.error({ err, channel, code: 'stream_rewound' }, 'handling a rewound stream failed'));
    },
  );
  const continuity = createFeedContinuity({ hub, engine, log, rulesOf });

  function publishOptions(rules: ChannelRules): PublishOptions {
    return { historySize: rules.options.history_size, historyTtlMs: rules.options.history_ttl_ms };
  }

  function noKey(): TokenError {
    return new TokenError('no_key_configured', 'this server has no token key configured: set HERALD_TOKEN_SECRET (or NEXTAUTH_SECRET, HERALD_TOKEN_PUBLIC_KEY, HERALD_TOKEN_JWKS_URL)');
  }

  const sessionNode: SessionNode = {
    config, engine, hub, hooks, version: HERALD_VERSION,
    async verifyConnectionToken(token) {
      if (!tokenAuth) throw noKey();
      return tokenAuth.verifyConnectionToken(token);
    },
    async verifySubscriptionToken(token, expect) {
      if (!tokenAuth) throw noKey();
      return tokenAuth.verifySubscriptionToken(token, expect);
    },
    tokenFailure(err) {
      if (err instanceof TokenError) {
        if (err.code === ErrorCode.tokenExpired) return { reply: new HeraldError(ErrorCode.tokenExpired, err.message) };
        if (err.code < 1000) return { reply: new HeraldError(err.code, err.message, err.temporary) };
        log.info({ reason: err.reason }, 'token refused');
        return { disconnect: { code: err.code, reason: err.disconnectReason } };
      }
      return { reply: err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal) };
    },
    register(s) {
      byClient.set(s.id, s);
      let set = byUser.get(s.user);
      if (!set) byUser.set(s.user, (set = new Set()));
      set.add(s);
    },
    unregister(s) {
      byClient.delete(s.id);
      const set = byUser.get(s.user);
      if (set) {
        set.delete(s);
        if (set.size === 0) byUser.delete(s.user);
      }
    },
    userConnectionCount: (user) => byUser.get(user)?.size ?? 0,
    publishOptions,
    metrics: {
      command: (m) => metrics.commands.inc({ method: m }),
      error: (c) => metrics.errors.inc({ code: String(c) }),
      disconnect: (c) => metrics.disconnects.inc({ code: String(c) }),
      delivered: (n) => metrics.delivered.inc(n),
      published: () => metrics.published.inc({ source: 'client' }),
    },
    logWarn: (obj, msg) => log.warn(obj, msg),
  };

  /** A throw that reached an entry point (request, upgrade, frame): a bug, logged; the peer got a 500 or a closed socket. */
  function logEntryError(err: unknown, where: string): void {
    log.error({ err, where }, `unexpected error in ${where}: answered 500 or closed the connection; please report it`);
  }

  function openSession(transport: ClientTransport, request: UpgradeRequestInfo): SessionHandlers {
    const session = new Session(sessionNode, transport, request);
    sessions.add(session);
    return {
      onFrame: (text) => session.onFrame(text),
      onClose: (code, reason) => {
        sessions.delete(session);
        session.onClose(code, reason);
      },
    };
  }

  const ipConnections = new IpConnections(config.ipConnectionLimit);
  const endpoint = new WebSocketEndpoint({
    paths: config.wsPaths,
    version: HERALD_VERSION,
    maxMessageBytes: config.maxMessageBytes,
    maxSendBufferBytes: config.maxSendBufferBytes,
    allowedOrigins: config.allowedOrigins,
    requireOrigin: false,
    cookieRequiresOrigin: config.cookieRequiresOrigin,
    ipConnections,
    isAccepting: () => accepting,
    onConnection: openSession,
    onRejected(status, reason, request) {
      log.info({ status, reason, origin: request.headers.origin, ip: request.remoteAddress }, 'upgrade refused');
    },
    onError: logEntryError,
  });

  const emulation = new EmulationEndpoint({
    httpStream: config.httpStream,
    sse: config.sse,
    node: nodeUid,
    maxMessageBytes: config.maxMessageBytes,
    maxSendBufferBytes: config.maxSendBufferBytes,
    allowedOrigins: config.allowedOrigins,
    cookieRequiresOrigin: config.cookieRequiresOrigin,
    ipConnections,
    isAccepting: () => accepting,
    onConnection: openSession,
    onError: logEntryError,
  });

  function onControl(msg: ControlMessage): void {
    switch (msg.type) {
      case 'node':
        if (msg.node.uid !== nodeUid) remoteNodes.set(msg.node.uid, msg.node);
        return;
      case 'disconnect':
        for (const s of [...(byUser.get(msg.user) ?? [])]) {
          if (!msg.client || s.id === msg.client) s.disconnect({ code: msg.code, reason: msg.reason });
        }
        return;
      case 'unsubscribe':
        for (const s of byUser.get(msg.user) ?? []) {
          if (!msg.client || s.id === msg.client) s.unsubscribeByServer(msg.channel, UnsubscribeCode.server, 'server unsubscribe');
        }
        return;
      case 'subscribe':
        for (const s of byUser.get(msg.user) ?? []) {
          if (!msg.client || s.id === msg.client) s.subscribeByServer(msg.channel).catch((err) => log.warn({ err, channel: msg.channel }, 'server-side subscribe failed'));
        }
        return;
    }
  }

  const brokerRunning = engine.broker.run({
    onPublication(channel, pub, position) {
      metrics.delivered.inc(hub.onPublication(channel, pub, position));
    },
    onJoin: (channel, info) => hub.onJoin(channel, info),
    onLeave: (channel, info) => hub.onLeave(channel, info),
    onControl,
    onFeedInterrupted(affects) {
      log.warn('broker feed was interrupted: channels whose stream moved meanwhile make their subscribers recover');
      continuity.afterFeedLoss(affects).catch((err) => {
        log.warn({ err }, 'feed recheck failed: every subscriber of the channels concerned recovers');
        for (const channel of [...hub.channelNames()]) if (!affects || affects(channel)) hub.invalidate(channel);
      });
    },
  });
  brokerRunning.catch((err) => log.error({ err }, 'engine failed to start'));

  function selfInfo(): NodeInfo {
    return {
      uid: nodeUid,
      name: config.name || hostname(),
      version: HERALD_VERSION,
      num_clients: byClient.size,
      num_users: byUser.size,
      num_channels: hub.numChannels,
      num_subs: hub.numSubscriptions,
      uptime: Math.floor((Date.now() - startedAt) / 1000),
      channels: [...hub.channelNames()].slice(0, 10_000),
      updatedAt: Date.now(),
    };
  }

  let tickCount = 0;
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const s of sessions) s.tick(now);
    tickCount++;
    if (engine.name !== 'memory') {
      if (tickCount % Math.max(1, Math.floor(config.presenceTtlMs / 3000)) === 0) {
        for (const s of sessions) for (const p of s.refreshPresence()) p.catch(() => {});
      }
      if (tickCount % 5 === 0) engine.broker.publishControl({ type: 'node', node: selfInfo() }).catch(() => {});
      for (const [uid, n] of remoteNodes) if (now - n.updatedAt > 30_000) remoteNodes.delete(uid);
    }
  }, 1000);
  ticker.unref();

  function rulesOf(channel: string): ChannelRules {
    return resolveChannel(config, channel);
  }

  const core: HeraldCore = {
    apiLimits: {
      maxJsonDepth: config.maxJsonDepth,
      maxReplyBytes: config.apiMaxReplyBytes,
      maxBatchCommands: config.apiMaxBatchCommands,
      maxBroadcastChannels: config.apiMaxBroadcastChannels,
    },
    async publish(channel, data, opts = {}) {
      const rules = rulesOf(channel);
      const started = performance.now();
      const po: PublishOptions = publishOptions(rules);
      if (opts.idempotencyKey) po.idempotencyKey = opts.idempotencyKey;
      // Checked iteratively before JSON.stringify, whose recursion deep data (in-process callers, the outbox) overflows.
      const tooDeep = jsonDepthProblem(data, config.maxJsonDepth);
      if (tooDeep) throw new HeraldError(ErrorCode.badRequest, tooDeep);
      let text: string;
      try {
        text = jsonText(data);
      } catch {
        throw new HeraldError(ErrorCode.badRequest, 'bad request: data is not JSON-serializable');
      }
      const input = opts.tags ? { data: text, tags: opts.tags } : { data: text };
      const pos = await engine.broker.publish(rules.channel, input, po);
      metrics.publishLatency.observe((performance.now() - started) / 1000);
      metrics.published.inc({ source: opts.source ?? 'server' });
      return pos;
    },
    async subscribeUser(user, channel, client) {
      rulesOf(channel);
      await engine.broker.publishControl(client ? { type: 'subscribe', user, channel, client } : { type: 'subscribe', user, channel });
    },
    async unsubscribeUser(user, channel, client) {
      await engine.broker.publishControl(client ? { type: 'unsubscribe', user, channel, client } : { type: 'unsubscribe', user, channel });
    },
    async disconnectUser(user, opts = {}) {
      const d: DisconnectInfo = { code: opts.code ?? Disconnect.forceNoReconnect.code, reason: opts.reason ?? Disconnect.forceNoReconnect.reason };
      const msg: ControlMessage = { type: 'disconnect', user, code: d.code, reason: d.reason };
      if (opts.client) msg.client = opts.client;
      await engine.broker.publishControl(msg);
    },
    async presence(channel) {
      const rules = rulesOf(channel);
      if (!rules.options.presence) throw new HeraldError(ErrorCode.notAvailable, `presence is not enabled for channel "${channel}"`);
      return engine.presence.presence(channel);
    },
    async presenceStats(channel) {
      const rules = rulesOf(channel);
      if (!rules.options.presence) throw new HeraldError(ErrorCode.notAvailable, `presence is not enabled for channel "${channel}"`);
      return engine.presence.presenceStats(channel);
    },
    async history(channel, opts = {}) {
      const o = rulesOf(channel).options;
      if (o.history_size <= 0) throw new HeraldError(ErrorCode.notAvailable, `history is not enabled for channel "${channel}"`);
      const r = await engine.history.history(channel, {
        limit: opts.limit ?? 0, since: opts.since, reverse: opts.reverse,
        historySize: o.history_size, historyTtlMs: o.history_ttl_ms, historyMetaTtlMs: o.history_meta_ttl_ms,
      });
      if (opts.since && opts.since.epoch !== '' && opts.since.epoch !== r.position.epoch) throw new HeraldError(ErrorCode.unrecoverablePosition);
      return r;
    },
    async removeHistory(channel) {
      rulesOf(channel);
      await engine.history.removeHistory(channel);
    },
    async channels() {
      const out = new Map<string, number>();
      for (const ch of hub.channelNames()) out.set(ch, hub.subscriberCount(ch));
      for (const n of remoteNodes.values()) for (const ch of n.channels ?? []) if (!out.has(ch)) out.set(ch, 0);
      return out;
    },
    nodes() {
      const strip = ({ uid: _u, channels: _c, updatedAt: _t, ...rest }: NodeInfo) => rest;
      return [strip(selfInfo()), ...[...remoteNodes.values()].map(strip)];
    },
  };

  function isReady(): boolean {
    if (!accepting || !engine.isReady()) return false;
    for (const r of readiness.values()) if (!r.ok) return false;
    return true;
  }

  const apiHandler = createHttpHandler({
    core,
    apiKey: config.apiKey,
    apiInsecure: config.apiInsecure,
    maxBodyBytes: config.apiMaxBodyBytes,
    ratePerSecond: config.apiRatePerSecond,
    metricsText: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    plainWs: (method, url) => (endpoint.ownsPath(url) ? endpoint.answerPlainRequest(method) : undefined),
    readiness: () => {
      const checks: Record<string, string> = {
        engine: engine.isReady() ? 'ok' : engine.notReadyReason?.() ?? `${engine.name} engine not reachable`,
        accepting: accepting ? 'ok' : 'shutting down',
      };
      for (const [name, r] of readiness) checks[name] = r.ok ? 'ok' : r.reason ?? 'not ready';
      return { ready: isReady(), checks };
    },
    onApiCall: (method, _s, ok) => metrics.apiCalls.inc({ method, ok: String(ok) }),
    allowedOrigins: config.allowedOrigins,
    onError: logEntryError,
  });
  /** The request listener (listen) and handleRequest (embedding): nothing thrown inside gets out. */
  const httpHandler: typeof apiHandler = (req, res) => {
    try {
      if (!emulation.handle(req, res)) apiHandler(req, res);
    } catch (err) {
      logEntryError(err, 'http request');
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
        res.end('{"error":{"code":100,"message":"internal server error"}}');
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
    ...core,
    config,
    engine,
    log,
    metrics,
    async call(method, params, opts = {}) {
      return JSON.parse(await executeApi(core, method, params, opts.source ?? 'server'));
    },
    attach(server, opts = {}) {
      const paths = opts.path === undefined ? undefined : Array.isArray(opts.path) ? opts.path : [opts.path];
      if (paths) config.wsPaths.splice(0, config.wsPaths.length, ...paths);
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
      await brokerRunning;
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
      log.info({ port: addr.port, host: addr.address, engine: engine.name, paths: config.wsPaths, version: HERALD_VERSION }, `Herald listening on ${addr.address}:${addr.port}`);
      return addr;
    },
    setReadiness(name, state) {
      readiness.set(name, state);
    },
    isReady,
    get connectionCount() {
      return byClient.size;
    },
    close() {
      closing ??= (async () => {
        accepting = false;
        // The listeners stay open while draining: upgrades get 503 and /ready 503, so clients and balancers are told
        // why, instead of meeting a refused connection.
        for (const s of [...sessions]) s.disconnect(Disconnect.shutdown);
        const deadline = Date.now() + config.shutdownTimeoutMs;
        while (endpoint.connectionCount + emulation.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        for (const s of servers) s.close();
        endpoint.terminateAll();
        emulation.terminateAll();
        for (const s of servers) s.closeAllConnections?.();
        clearInterval(ticker);
        await engine.close().catch((err) => log.warn({ err }, 'engine close failed'));
        log.info('Herald stopped');
      })();
      return closing;
    },
  };
  return herald;
}

/** The accept queue asked of the kernel for `listen` (capped by net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;

/** Engines by name: memory (the single-node default) or redis (scale-out, docs/scaling.md). */
function createEngineFromConfig(config: HeraldConfig, log: Logger): Engine {
  if (config.engine === 'redis') {
    const many = config.redisUrls.length > 1;
    const where = config.redisUrls.map((u, i) => redactRedisUrl(u, many ? `REDIS_URL entry ${i + 1} (unparsable)` : 'REDIS_URL (unparsable)'));
    return createRedisEngine({
      url: config.redisUrls,
      prefix: config.redisPrefix,
      commandTimeoutMs: config.redisTimeoutMs,
      minReplicas: config.redisMinReplicas,
      onEvent(e, i) {
        const at = many ? { redis: where[i], shard: `${i + 1}/${config.redisUrls.length}` } : { redis: where[i] };
        if (e.type === 'connected') log.info({ ...at, role: e.role }, e.reconnect ? 'redis reconnected' : 'redis connected');
        else if (e.type === 'disconnected') log.warn({ ...at, role: e.role }, 'redis connection lost: publishes fail with 503 until it is back; reconnecting with backoff');
        else if (e.type === 'unreachable') log.warn({ ...at, role: e.role, error: e.error }, 'redis not reachable: /ready is 503 and publishes fail until it is; retrying with backoff (check REDIS_URL)');
        else if (e.type === 'unhealthy') log.warn({ ...at, error: e.error }, 'redis stopped answering: /ready is 503 and publishes fail until it answers again');
        else if (e.type === 'topology') {
          if (e.ok) log.info({ ...at }, 'redis shard list agrees with the other nodes again');
          else log.error({ ...at, code: 'redis_shard_mismatch' }, `${e.message} Until then /ready is 503.`);
        } else log.info({ ...at }, 'redis answers again');
      },
      onError: (what, err) => log.warn({ err, what }, 'redis engine error'),
    });
  }
  return createMemoryEngine();
}
