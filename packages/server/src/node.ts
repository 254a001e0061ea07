import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createTokenAuth, loadPublicKey, TokenError, type TokenAuth } from './auth/index.js';
import { mapWriteOptions, publishOptions, streamOptions } from './channels/engine-options.js';
import { resolveChannel, type ChannelRules } from './channels/rules.js';
import type { HeraldConfig } from './config/index.js';
import type { ApiLimits, HeraldCore, MapPublishCallOptions, MapUpdateAnswer, PublishCallOptions } from './core.js';
import type { ControlMessage, NodeInfo } from './engine/broker.js';
import { engineCapabilities, type Engine, type EngineCapabilities } from './engine/engine.js';
import type { HistoryResult } from './engine/history.js';
import type { MapBroker, MapUpdateResult } from './engine/map-broker.js';
import type { MapNamespaceOptions } from './config/namespace.js';
import type { PresenceStats } from './engine/presence.js';
import type { ClientInfo, StreamPosition } from './engine/types.js';
import { createFeedContinuity, type FeedContinuity } from './feed-continuity.js';
import type { HeraldHooks } from './hooks.js';
import { Hub } from './hub.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { jsonText } from './protocol/codec.js';
import { Disconnect, ErrorCode, HeraldError, UnsubscribeCode, type DisconnectInfo } from './protocol/codes.js';
import { EmulationRelay } from './emulation-relay.js';
import { jsonDepthProblem } from './protocol/json-depth.js';
import { Proxies } from './proxy/proxies.js';
import { SharedPolls } from './shared-poll/polls.js';
import { UserIndex } from './user-index.js';
import { OpenFilesWatch, openFilesLimit } from './fd-limit.js';
import { Session, type SessionNode } from './session.js';
import type { ClientTransport, UpgradeRequestInfo } from './transport/connection.js';
import { HERALD_VERSION } from './version.js';
import { Webhooks, withWebhookEvents } from './webhooks/index.js';
import { LifecycleTracker } from './webhooks/lifecycle.js';

export interface HeraldNodeOptions {
  config: HeraldConfig;
  engine: Engine;
  hooks?: HeraldHooks;
  log: Logger;
  /** @default a random UUID */
  uid?: string;
  /** How often the ticker calls tick(); 0: no ticker (the owner calls tick itself, as the unit tests do). @default 1000 */
  tickIntervalMs?: number;
  /** The open-files limit to warn against (tests); null: none. @default read from /proc/self/limits */
  openFilesLimit?: number | null;
}

/** What a transport hands a connection's frames and close to (transport/websocket.ts, transport/emulation.ts). */
export interface SessionCallbacks {
  onFrame(frame: string | Uint8Array): void;
  onClose(code: number, reason: string): void;
}

/** A node silent this long drops out of the node list (it announces itself every 5 s). */
const NODE_EXPIRY_MS = 30_000;
/** Ticks (seconds) between two announcements of this node on a shared engine. */
const ANNOUNCE_EVERY_TICKS = 5;

/**
 * One Herald node's state and the operations on it: the engine and its event feed, the hub (local subscribers by
 * channel) and feed continuity, the sessions with their user and client indexes, the other nodes of a shared engine
 * (announcements and expiry), control messages (server-side subscribe, unsubscribe and disconnect on every node),
 * the per-second ticker, and the HeraldCore operations the HTTP API, the in-process API and the outbox share.
 * Transports, HTTP and listeners are the front's (herald.ts): it opens sessions here.
 */
export class HeraldNode implements HeraldCore {
  readonly uid: string;
  readonly config: HeraldConfig;
  readonly engine: Engine;
  readonly capabilities: EngineCapabilities;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly hub: Hub;
  readonly apiLimits: ApiLimits;
  /** The configured webhooks (docs/proxy.md, "Webhooks"); emit() is a no-op for event types none asked for. */
  readonly webhooks: Webhooks;
  /** Emulation requests for sessions on other nodes go there over the control channel (no sticky sessions). */
  readonly emulationRelay: EmulationRelay;
  /** Settles once the engine delivers events (rejects when it failed to start). */
  readonly running: Promise<void>;
  private readonly hooks: HeraldHooks;
  private readonly continuity: FeedContinuity;
  private readonly lifecycle: LifecycleTracker;
  private readonly tokenAuth: TokenAuth | undefined;
  /** The app's proxy backends (config client.proxy, channel.proxy, proxies, rpc); undefined when none. */
  readonly proxies: Proxies | undefined;
  /** Shared poll channels of this node (docs/shared-poll.md). */
  readonly sharedPolls: SharedPolls;
  private readonly sessionNode: SessionNode;
  private readonly sessions = new Set<Session>();
  /** The app's own hooks (before webhooks wrap them). */
  private readonly userHooks: HeraldHooks;
  /** Connections against the process's open-files limit (undefined where it cannot be read). */
  private readonly openFiles: OpenFilesWatch | undefined;
  private readonly byUser = new UserIndex<Session>();
  private readonly byClient = new Map<string, Session>();
  private readonly remoteNodes = new Map<string, NodeInfo>();
  private readonly startedAt = Date.now();
  private readonly ticker: NodeJS.Timeout | undefined;
  private tickCount = 0;
  private closed = false;

  constructor(opts: HeraldNodeOptions) {
    const { config, engine, log } = opts;
    this.uid = opts.uid ?? randomUUID();
    this.config = config;
    this.engine = engine;
    this.capabilities = engineCapabilities(engine);
    this.log = log;
    this.apiLimits = {
      maxJsonDepth: config.maxJsonDepth,
      maxReplyBytes: config.apiMaxReplyBytes,
      maxBatchCommands: config.apiMaxBatchCommands,
      maxBroadcastChannels: config.apiMaxBroadcastChannels,
    };
    const t = config.token;
    if (t.hmacSecret || t.publicKey || t.jwksUrl) {
      this.tokenAuth = createTokenAuth({
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
    this.metrics = new Metrics(() => ({
      connections: this.byClient.size,
      subscriptions: this.hub.numSubscriptions,
      channels: this.hub.numChannels,
    }));
    this.webhooks = new Webhooks(config.webhooks, this.metrics.registry, log);
    this.lifecycle = new LifecycleTracker({
      emitter: this.webhooks,
      // One node sees every transition of an engine it does not share.
      store: this.capabilities.shared ? engine.lifecycle : undefined,
      node: this.uid,
      ttlMs: config.presenceTtlMs,
      log,
      onStateError: () => this.webhooks.metrics?.stateErrors.inc(),
    });
    this.userHooks = opts.hooks ?? {};
    this.hooks = withWebhookEvents(
      this.userHooks,
      this.webhooks,
      this.lifecycle,
      (channel) => this.rulesOf(channel).options.presence,
    );
    this.hub = new Hub(
      engine.broker,
      (err, channel) => log.warn({ err, channel }, 'broker unsubscribe failed'),
      (channel, epoch, seen, feed) => {
        this.continuity
          .rewound(channel, epoch, { seenOffset: seen, feedOffset: feed })
          .catch((err: unknown) =>
            log.error({ err, channel, code: 'stream_rewound' }, 'handling a rewound stream failed'),
          );
      },
    );
    this.continuity = createFeedContinuity({ hub: this.hub, engine, log, rulesOf: (channel) => this.rulesOf(channel) });
    this.proxies = Proxies.configured(config.proxy)
      ? new Proxies(config.proxy, {
          warn: (obj, msg) => log.warn(obj, msg),
          maxInfoBytes: config.maxInfoBytes,
          maxJsonDepth: config.maxJsonDepth,
          registry: this.metrics.registry,
        })
      : undefined;
    this.sharedPolls = new SharedPolls({
      config: config.sharedPoll,
      proxies: this.proxies,
      warn: (obj, msg) => log.warn(obj, msg),
    });
    this.sessionNode = this.createSessionNode();
    const limit = opts.openFilesLimit === undefined ? openFilesLimit() : opts.openFilesLimit;
    this.openFiles =
      limit === undefined || limit === null
        ? undefined
        : new OpenFilesWatch(limit, (connections, max) =>
            log.warn(
              { connections, limit: max, code: 'open_files_near_limit' },
              `${connections} connections on this node, near the process's limit of ${max} open files: past it new connections are closed at once without an error. Raise it (systemd LimitNOFILE, ulimit -n, Docker --ulimit nofile) or add nodes (docs/deployment.md)`,
            ),
          );
    this.emulationRelay = new EmulationRelay(engine.broker, this.uid, this.capabilities.shared, (err) =>
      log.warn({ err }, 'relaying an emulation request failed'),
    );

    this.running = engine.broker.run({
      onPublication: (channel, pub, position) => {
        this.metrics.countDelivered(this.hub.onPublication(channel, pub, position));
      },
      onJoin: (channel, info) => this.hub.onJoin(channel, info),
      onLeave: (channel, info) => this.hub.onLeave(channel, info),
      onControl: (msg) => this.onControl(msg),
      onFeedInterrupted: (affects) => {
        log.warn('broker feed was interrupted: channels whose stream moved meanwhile make their subscribers recover');
        this.continuity.afterFeedLoss(affects).catch((err: unknown) => {
          log.warn({ err }, 'feed recheck failed: every subscriber of the channels concerned recovers');
          for (const channel of [...this.hub.channelNames()])
            if (!affects || affects(channel)) this.hub.invalidate(channel);
        });
      },
    });
    this.running.catch((err: unknown) => log.error({ err }, 'engine failed to start'));

    const every = opts.tickIntervalMs ?? 1000;
    if (every > 0) {
      this.ticker = setInterval(() => this.tick(Date.now()), every);
      this.ticker.unref();
    }
  }

  /** Clients connected to this node. */
  get connectionCount(): number {
    return this.byClient.size;
  }

  /** A transport's new connection: a session on this node; the transport hands it frames and its close. */
  openSession(transport: ClientTransport, request: UpgradeRequestInfo): SessionCallbacks {
    const session = new Session(this.sessionNode, transport, request);
    this.sessions.add(session);
    // The session is its own callbacks (no closures per connection); its onClose tells the node through closed().
    return session;
  }

  /** Closes every session with `info` (shutdown: 3001). */
  disconnectAll(info: DisconnectInfo): void {
    for (const s of [...this.sessions]) s.disconnect(info);
  }

  /**
   * One second of the node's life (called by its ticker): sessions check their deadlines; on a shared engine the node
   * refreshes its clients' presence, announces itself every 5 ticks and forgets nodes silent for 30 s.
   */
  tick(now: number): void {
    for (const s of this.sessions) s.tick(now);
    this.lifecycle.tick();
    this.tickCount++;
    this.openFiles?.check(this.sessions.size);
    if (!this.capabilities.shared) return;
    if (this.tickCount % Math.max(1, Math.floor(this.config.presenceTtlMs / 3000)) === 0) {
      for (const s of this.sessions) for (const p of s.refreshPresence()) p.catch(() => {});
    }
    if (this.tickCount % ANNOUNCE_EVERY_TICKS === 0)
      this.engine.broker.publishControl({ type: 'node', node: this.selfInfo(now) }).catch(() => {});
    for (const [uid, n] of this.remoteNodes) if (now - n.updatedAt > NODE_EXPIRY_MS) this.remoteNodes.delete(uid);
  }

  /** Stops the ticker and closes the engine (after the front closed the sessions). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    this.emulationRelay.close();
    this.sharedPolls.close();
    this.proxies?.close();
    // The last vacated / leave transitions (sessions just closed) are decided on the engine: wait for them, then give
    // the webhooks a last chance to send what is queued.
    await this.lifecycle.idle(2000);
    await this.webhooks.close(Math.min(5000, this.config.shutdownTimeoutMs));
    await this.engine.close().catch((err: unknown) => this.log.warn({ err }, 'engine close failed'));
  }

  rulesOf(channel: string): ChannelRules {
    return resolveChannel(this.config, channel);
  }

  // HeraldCore

  async publish(channel: string, data: unknown, opts: PublishCallOptions = {}): Promise<StreamPosition> {
    const rules = this.rulesOf(channel);
    if (rules.options.subscription_type !== 'stream')
      throw new HeraldError(
        ErrorCode.notAvailable,
        rules.options.subscription_type === 'shared_poll'
          ? `not available: "${channel}" is a shared poll channel; its data comes from your backend's refresh proxy`
          : `not available: "${channel}" is a ${rules.options.subscription_type} channel; use map_publish / map_remove`,
      );
    const started = performance.now();
    const po = publishOptions(rules.options);
    if (opts.idempotencyKey) po.idempotencyKey = opts.idempotencyKey;
    // Checked iteratively before JSON.stringify, whose recursion deep data (in-process callers, the outbox) overflows.
    const tooDeep = jsonDepthProblem(data, this.config.maxJsonDepth);
    if (tooDeep) throw new HeraldError(ErrorCode.badRequest, tooDeep);
    let text: string;
    try {
      text = jsonText(data);
    } catch {
      throw new HeraldError(ErrorCode.badRequest, 'bad request: data is not JSON-serializable');
    }
    const input = opts.tags ? { data: text, tags: opts.tags } : { data: text };
    const pos = await this.engine.broker.publish(rules.channel, input, po);
    this.metrics.publishLatency.observe((performance.now() - started) / 1000);
    this.metrics.countPublished(opts.source ?? 'server');
    return pos;
  }

  async mapPublish(
    channel: string,
    key: string,
    data: unknown,
    opts: MapPublishCallOptions = {},
  ): Promise<MapUpdateAnswer> {
    const { rules, map } = this.mapOf(channel, key);
    const tooDeep = jsonDepthProblem(data, this.config.maxJsonDepth);
    if (tooDeep) throw new HeraldError(ErrorCode.badRequest, tooDeep);
    let text: string;
    try {
      text = jsonText(data);
    } catch {
      throw new HeraldError(ErrorCode.badRequest, 'bad request: data is not JSON-serializable');
    }
    const started = performance.now();
    const wo = mapWriteOptions(map);
    if (opts.idempotencyKey) wo.idempotencyKey = opts.idempotencyKey;
    const r = await this.mapBroker().publish(
      rules.channel,
      key,
      opts.tags ? { data: text, tags: opts.tags } : { data: text },
      wo,
    );
    this.metrics.publishLatency.observe((performance.now() - started) / 1000);
    if (!r.suppressed) this.metrics.published.inc({ source: opts.source ?? 'server' });
    return mapAnswer(r);
  }

  async mapRemove(channel: string, key: string, opts: { idempotencyKey?: string } = {}): Promise<MapUpdateAnswer> {
    const { rules, map } = this.mapOf(channel, key);
    const wo = mapWriteOptions(map);
    if (opts.idempotencyKey) wo.idempotencyKey = opts.idempotencyKey;
    return mapAnswer(await this.mapBroker().remove(rules.channel, key, wo));
  }

  /** The map options of a channel the server API may write (a "map" channel), or 108. */
  private mapOf(channel: string, key: string): { rules: ChannelRules; map: MapNamespaceOptions } {
    const rules = this.rulesOf(channel);
    const map = rules.options.map;
    if (!map || rules.options.subscription_type !== 'map')
      throw new HeraldError(
        ErrorCode.notAvailable,
        `not available: "${channel}" is not a map channel (its namespace needs subscription_type "map" and map options)`,
      );
    if (key === '') throw new HeraldError(ErrorCode.badRequest, 'bad request: a map key must be a non-empty string');
    return { rules, map };
  }

  private mapBroker(): MapBroker {
    const m = this.engine.map;
    if (!m)
      throw new HeraldError(ErrorCode.notAvailable, `not available: the ${this.engine.name} engine has no map broker`);
    return m;
  }

  async subscribeUser(user: string, channel: string, client?: string): Promise<void> {
    const rules = this.rulesOf(channel);
    if (rules.options.subscription_type !== 'stream')
      throw new HeraldError(
        ErrorCode.notAvailable,
        `not available: "${channel}" is a ${rules.options.subscription_type} channel; clients subscribe to it themselves (no server-side subscription of that kind)`,
      );
    await this.engine.broker.publishControl(
      client ? { type: 'subscribe', user, channel, client } : { type: 'subscribe', user, channel },
    );
  }

  async unsubscribeUser(user: string, channel: string, client?: string): Promise<void> {
    await this.engine.broker.publishControl(
      client ? { type: 'unsubscribe', user, channel, client } : { type: 'unsubscribe', user, channel },
    );
  }

  async disconnectUser(user: string, opts: { client?: string; code?: number; reason?: string } = {}): Promise<void> {
    const d: DisconnectInfo = {
      code: opts.code ?? Disconnect.forceNoReconnect.code,
      reason: opts.reason ?? Disconnect.forceNoReconnect.reason,
    };
    const msg: ControlMessage = { type: 'disconnect', user, code: d.code, reason: d.reason };
    if (opts.client) msg.client = opts.client;
    await this.engine.broker.publishControl(msg);
  }

  async presence(channel: string): Promise<Map<string, ClientInfo>> {
    const rules = this.rulesOf(channel);
    if (!rules.options.presence)
      throw new HeraldError(ErrorCode.notAvailable, `presence is not enabled for channel "${channel}"`);
    return this.engine.presence.presence(channel);
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    const rules = this.rulesOf(channel);
    if (!rules.options.presence)
      throw new HeraldError(ErrorCode.notAvailable, `presence is not enabled for channel "${channel}"`);
    return this.engine.presence.presenceStats(channel);
  }

  async history(
    channel: string,
    opts: { limit?: number; since?: StreamPosition; reverse?: boolean } = {},
  ): Promise<HistoryResult> {
    const o = this.rulesOf(channel).options;
    if (o.history_size <= 0)
      throw new HeraldError(ErrorCode.notAvailable, `history is not enabled for channel "${channel}"`);
    const r = await this.engine.history.history(channel, {
      limit: opts.limit ?? 0,
      since: opts.since,
      reverse: opts.reverse,
      ...streamOptions(o),
    });
    if (opts.since && opts.since.epoch !== '' && opts.since.epoch !== r.position.epoch)
      throw new HeraldError(ErrorCode.unrecoverablePosition);
    return r;
  }

  async removeHistory(channel: string): Promise<void> {
    this.rulesOf(channel);
    await this.engine.history.removeHistory(channel);
  }

  async channels(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const ch of this.hub.channelNames()) out.set(ch, this.hub.subscriberCount(ch));
    for (const n of this.remoteNodes.values()) for (const ch of n.channels ?? []) if (!out.has(ch)) out.set(ch, 0);
    return out;
  }

  nodes(): Omit<NodeInfo, 'channels' | 'updatedAt' | 'uid'>[] {
    const strip = ({ uid: _u, channels: _c, updatedAt: _t, ...rest }: NodeInfo) => rest;
    return [strip(this.selfInfo(Date.now())), ...[...this.remoteNodes.values()].map(strip)];
  }

  // Internals

  private selfInfo(now: number): NodeInfo {
    return {
      uid: this.uid,
      name: this.config.name || hostname(),
      version: HERALD_VERSION,
      num_clients: this.byClient.size,
      num_users: this.byUser.size,
      num_channels: this.hub.numChannels,
      num_subs: this.hub.numSubscriptions,
      uptime: Math.floor((now - this.startedAt) / 1000),
      channels: [...this.hub.channelNames()].slice(0, 10_000),
      updatedAt: now,
    };
  }

  /** Control messages reach every node (this one included): each acts on its own sessions. */
  private onControl(msg: ControlMessage): void {
    switch (msg.type) {
      case 'node':
        if (msg.node.uid !== this.uid) this.remoteNodes.set(msg.node.uid, msg.node);
        return;
      case 'disconnect':
        for (const s of this.byUser.list(msg.user)) {
          if (!msg.client || s.id === msg.client) s.disconnect({ code: msg.code, reason: msg.reason });
        }
        return;
      case 'unsubscribe':
        for (const s of this.byUser.list(msg.user)) {
          if (!msg.client || s.id === msg.client)
            s.unsubscribeByServer(msg.channel, UnsubscribeCode.server, 'server unsubscribe');
        }
        return;
      case 'emulation':
      case 'emulation_reply':
        this.emulationRelay.onControl(msg);
        return;
      case 'subscribe':
        for (const s of this.byUser.list(msg.user)) {
          if (!msg.client || s.id === msg.client)
            s.subscribeByServer(msg.channel).catch((err: unknown) =>
              this.log.warn({ err, channel: msg.channel }, 'server-side subscribe failed'),
            );
        }
        return;
    }
  }

  /** What sessions see of the node: config, engine, hub, token checks, the indexes and metrics. */
  private createSessionNode(): SessionNode {
    const { config, engine, hub, hooks, log, metrics, byClient, byUser } = this;
    const tokenAuth = this.tokenAuth;
    return {
      config,
      engine,
      hub,
      hooks,
      proxies: this.proxies,
      sharedPolls: this.sharedPolls,
      keepRequestHeaders: this.proxies !== undefined || Object.keys(this.userHooks).length > 0,
      version: HERALD_VERSION,
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
          if (err.code === ErrorCode.tokenExpired)
            return { reply: new HeraldError(ErrorCode.tokenExpired, err.message) };
          if (err.code < 1000) return { reply: new HeraldError(err.code, err.message, err.temporary) };
          log.info({ reason: err.reason }, 'token refused');
          return { disconnect: { code: err.code, reason: err.disconnectReason } };
        }
        return { reply: err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal) };
      },
      register(s) {
        byClient.set(s.id, s);
        byUser.add(s.user, s);
      },
      unregister(s) {
        byClient.delete(s.id);
        byUser.delete(s.user, s);
      },
      closed: (s) => {
        this.sessions.delete(s);
      },
      userConnectionCount: (user) => byUser.count(user),
      metrics: {
        command: (m) => metrics.countCommand(m),
        error: (c) => metrics.countError(c),
        disconnect: (c) => metrics.countDisconnect(c),
        delivered: (n) => metrics.countDelivered(n),
        published: () => metrics.countPublished('client'),
      },
      logWarn: (obj, msg) => log.warn(obj, msg),
    };
  }
}

function noKey(): TokenError {
  return new TokenError(
    'no_key_configured',
    'this server has no token key configured: set HERALD_TOKEN_SECRET (or NEXTAUTH_SECRET, HERALD_TOKEN_PUBLIC_KEY, HERALD_TOKEN_JWKS_URL)',
  );
}

function mapAnswer(r: MapUpdateResult): MapUpdateAnswer {
  const a: MapUpdateAnswer = { offset: r.position.offset, epoch: r.position.epoch, suppressed: r.suppressed };
  if (r.suppressReason) a.suppressReason = r.suppressReason;
  return a;
}
