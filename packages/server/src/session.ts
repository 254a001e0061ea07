import { randomUUID } from 'node:crypto';
import type { ChannelRules } from './channels/rules.js';
import {
  checkHistory,
  checkMapWrite,
  checkPresence,
  checkPublish,
  checkSubscribe,
  resolveChannel,
  userLimitedAllows,
} from './channels/rules.js';
import type { HeraldConfig } from './config/index.js';
import type { Engine } from './engine/engine.js';
import type { ClientInfo, Publication, StreamPosition } from './engine/types.js';
import type { HeraldHooks } from './hooks.js';
import type { Hub, HubSubscriber } from './hub.js';
import { decodeFrame, jsonText, type DecodedCommand } from './protocol/codec.js';
import { decodeProtobufFrame } from './protocol/protobuf/commands.js';
import {
  Disconnect,
  ErrorCode,
  HeraldDisconnect,
  HeraldError,
  UnsubscribeCode,
  type DisconnectInfo,
} from './protocol/codes.js';
import {
  parseCommand,
  publishWithoutData,
  tokenNotString,
  unknownDeltaType,
  type ChannelParams,
  type ClientCommand,
  type ConnectParams,
  type HistoryParams,
  type PublishParams,
  type RefreshParams,
  type RpcParams,
  type SendParams,
  type SubRefreshParams,
  type SubscribeParams,
  type UnsubscribeParams,
} from './protocol/commands.js';
import {
  EMPTY_RESULT,
  encodeConnectResult,
  encodeError,
  encodeHistoryResult,
  encodeKeyedPublication,
  encodeKeyedPubPush,
  encodeMapListWithin,
  encodeMapSubscribeResult,
  encodeMessagePush,
  encodePresenceResultWithin,
  encodePresenceStatsResult,
  encodePublicationListWithin,
  encodeRefreshResult,
  encodeReply,
  encodeRpcResult,
  encodeSubRefreshResult,
  encodeSubscribePush,
  encodeSubscribeResult,
  encodeUnsubscribePush,
  PING_FRAME,
  ttlSeconds,
} from './protocol/replies.js';
import { mapWriteOptions, publishOptions, streamOptions } from './channels/engine-options.js';
import type { NamespaceOptions } from './config/namespace.js';
import { parseTagsFilter, matchesTags, type TagsFilter } from './protocol/tags-filter.js';
import { DEFAULT_CLOCK_TOLERANCE_SEC } from './auth/token-auth.js';
import type { ClientTransport, SharedFrame, UpgradeRequestInfo } from './transport/connection.js';
import type { Proxies, ProxyConnection, RefreshOutcome } from './proxy/proxies.js';
import { SmallMap } from './small-map.js';
import type { SharedPolls } from './shared-poll/polls.js';

/** The headers of a connected session nothing reads again (SessionNode.keepRequestHeaders). */
const NO_HEADERS: UpgradeRequestInfo['headers'] = Object.freeze({});

/** Publishes of one connection in the engine at once (see Session.drain). */
export const PUBLISHES_IN_FLIGHT = 64;

/** What a session needs from its node (herald.ts). */
export interface SessionNode {
  readonly config: HeraldConfig;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly hooks: HeraldHooks;
  /** The app's proxy backends (docs/proxy.md); undefined when none is configured. */
  readonly proxies?: Proxies;
  /** The node's shared poll channels (docs/shared-poll.md). */
  readonly sharedPolls?: SharedPolls;
  /**
   * The app's hooks or proxies may read a connection's request headers after connect; when neither can, a connected
   * session drops them (a browser's Cookie header alone holds a NextAuth session of 1-4 KB, for as long as it stays).
   */
  readonly keepRequestHeaders: boolean;
  readonly version: string;
  verifyConnectionToken(token: string): Promise<ConnectionCredentialsLike>;
  verifySubscriptionToken(
    token: string,
    expect: { client: string; user: string; channel: string },
  ): Promise<{ expireAt?: number; info?: string }>;
  /** Maps a failure from token checks to a reply error or a disconnect. */
  tokenFailure(err: unknown): { reply?: HeraldError; disconnect?: DisconnectInfo };
  register(session: Session): void;
  unregister(session: Session): void;
  /** The transport reported the connection over: the node forgets the session (registered or not). */
  closed(session: Session): void;
  userConnectionCount(user: string): number;
  metrics: SessionMetrics;
  logWarn(obj: object, msg: string): void;
}

export interface ConnectionCredentialsLike {
  user: string;
  expireAt?: number;
  info?: string;
  channels?: string[];
  /** Token `subs` claim: server-side channels with the subscription's info and data (JSON text). */
  subs?: Record<string, { info?: string; data?: string }>;
}

export interface SessionMetrics {
  command(method: string): void;
  error(code: number): void;
  disconnect(code: number): void;
  delivered(n: number): void;
  /** A client's publish was accepted. */
  published(): void;
}

const F_JOIN_LEAVE = 1;
const F_PRESENCE = 2;
const F_INVALIDATED = 4;
const F_ACTIVE = 8;
const F_SERVER_SIDE = 16;
const F_SERVER_REFRESH = 32;
const F_REFRESHING = 64;
const F_SHARED_POLL = 128;

/**
 * One subscription of a session. Its flags share one number, and it is its own channel rules (an idle connection holds
 * one of these per channel, and nothing else for it).
 */
class Subscription implements ChannelRules {
  private flags = 0;
  readonly channel: string;
  readonly namespace: string | undefined;
  readonly options: NamespaceOptions;
  /** A map subscription listed in this map_clients channel (map_clients_presence_channel_prefix) while active. */
  mapPresence: { channel: string; options: NonNullable<NamespaceOptions['map']>; refreshAt: number } | undefined =
    undefined;

  constructor(
    rules: ChannelRules,
    public chanInfo: string | undefined,
    public expireAt: number,
    init: {
      joinLeave?: boolean;
      presence?: boolean;
      active?: boolean;
      serverSide?: boolean;
      serverRefresh?: boolean;
      sharedPoll?: boolean;
    } = {},
  ) {
    this.channel = rules.channel;
    this.namespace = rules.namespace;
    this.options = rules.options;
    this.flags =
      (init.joinLeave ? F_JOIN_LEAVE : 0) |
      (init.presence ? F_PRESENCE : 0) |
      (init.active ? F_ACTIVE : 0) |
      (init.serverSide ? F_SERVER_SIDE : 0) |
      (init.serverRefresh ? F_SERVER_REFRESH : 0) |
      (init.sharedPoll ? F_SHARED_POLL : 0);
  }

  get rules(): ChannelRules {
    return this;
  }

  private flag(f: number, v: boolean): void {
    this.flags = v ? this.flags | f : this.flags & ~f;
  }

  get joinLeave(): boolean {
    return (this.flags & F_JOIN_LEAVE) !== 0;
  }

  get presence(): boolean {
    return (this.flags & F_PRESENCE) !== 0;
  }

  /** The feed skipped publications while the subscribe reply was being prepared: recover right after it. */
  get invalidated(): boolean {
    return (this.flags & F_INVALIDATED) !== 0;
  }

  set invalidated(v: boolean) {
    this.flag(F_INVALIDATED, v);
  }

  get active(): boolean {
    return (this.flags & F_ACTIVE) !== 0;
  }

  set active(v: boolean) {
    this.flag(F_ACTIVE, v);
  }

  get serverSide(): boolean {
    return (this.flags & F_SERVER_SIDE) !== 0;
  }

  /** Herald refreshes it through the sub_refresh proxy at expireAt (the client is not told a ttl). */
  get serverRefresh(): boolean {
    return (this.flags & F_SERVER_REFRESH) !== 0;
  }

  get refreshing(): boolean {
    return (this.flags & F_REFRESHING) !== 0;
  }

  set refreshing(v: boolean) {
    this.flag(F_REFRESHING, v);
  }

  /** A shared poll subscription: its keys are tracked in the node's SharedPolls, not in the hub. */
  get sharedPoll(): boolean {
    return (this.flags & F_SHARED_POLL) !== 0;
  }
}

/**
 * A map subscription between its first step and going live (state pages, or stream pages of a recovery): what the
 * first step authorized, so that the next steps need no token or hook again.
 */
interface MapStep {
  rules: ChannelRules;
  /** The subscription type asked for: 1 map, 2 map clients. */
  type: number;
  chanInfo: string | undefined;
  expireAt: number;
  replyData: string | undefined;
  filter: TagsFilter | undefined;
  /** The stream position of the first state page (state pages), or of the last stream page (recovery). */
  position: StreamPosition | undefined;
  /** Paging through the stream (a recovery too far behind for one reply). */
  stream: boolean;
  /** Fossil delta negotiated: payloads go as JSON strings, each key's changes as patches of its previous value. */
  delta: boolean;
}

/** What subscribeInternal is asked for: from a subscribe command, connect's `subs`, or a server-side subscribe. */
interface SubscribeOptions {
  recover: boolean;
  offset: number;
  epoch: string;
  joinLeave: boolean;
  recoverable: boolean;
  positioned: boolean;
  rejectUnrecovered: boolean;
  /** The client asked for fossil delta compression. */
  delta: boolean;
  data?: string;
  /** The namespace refreshes subscriptions through the sub_refresh proxy: no `ttl` in the reply. */
  serverRefresh?: boolean;
}

const FLAG_REJECT_UNRECOVERED = 2;

/** client.proto SubscribeRequest.type of each namespace subscription_type. */
const SUBSCRIPTION_TYPES: Record<NamespaceOptions['subscription_type'], number> = {
  stream: 0,
  map: 1,
  map_clients: 2,
  shared_poll: 4,
};

/** Map subscribe phases (client.proto SubscribeRequest.phase): live, stream pages, state pages. */
const MAP_PHASE_LIVE = 0;
const MAP_PHASE_STREAM = 1;
const MAP_PHASE_STATE = 2;

/** Each full 64 KiB of a reply costs one more command in the rate limit (HERALD_COMMAND_RATE). */
const REPLY_BYTES_PER_COMMAND = 65_536;

/** What is left of one reply's byte budget (HERALD_MAX_REPLY_SIZE), shared by the subscriptions of a connect reply. */
interface ReplyBudget {
  left: number;
}

/** A session's rarely used state (see Session.rare). */
class SessionRare {
  mapSteps: Map<string, MapStep> | undefined = undefined;
  publishing: Map<string, Promise<void>> | undefined = undefined;
  readingPaused = false;
  errors = 0;
  meta: unknown = undefined;
  emulatedHeaders: Record<string, string> | undefined = undefined;
  refreshing = false;
  dueCheck = false;
}

const NO_MAP_STEPS: ReadonlyMap<string, MapStep> = new Map();

/** The SDKs' names, so that every connection of one SDK holds the same string rather than its own copy. */
const CLIENT_NAMES = new Map(['js', 'go', 'dart', 'swift', 'java', 'python', 'dotnet'].map((n) => [n, n]));

function internClientName(name: string): string {
  return CLIENT_NAMES.get(name) ?? name;
}

/**
 * One client connection's life: connect, subscribe, publish, recover, refresh, close. Commands run strictly in
 * arrival order; later commands wait while an earlier one (e.g. connect with an async key lookup) is pending.
 */
export class Session implements HubSubscriber {
  readonly id = randomUUID();
  user = '';
  private connInfo: string | undefined;
  private state: 'new' | 'connecting' | 'connected' | 'closed' = 'new';
  /** Most connections hold one subscription: no Map until a second (SmallMap). */
  private readonly subs: Map<string, Subscription> = new SmallMap();
  /** Commands read and not handled yet; made when a frame brings some, dropped when handled (most of the time). */
  private backlog: DecodedCommand[] | undefined;
  private processing = false;
  private expireAt = 0;
  private readonly createdAt = Date.now();
  private nextPingAt = 0;
  private pongDeadline = 0;
  private tokens: number;
  private lastRefill = Date.now();
  /** The connect command's `name` (the SDK's: "js", "go", ...). */
  private clientName = '';
  /** What few connections use, made on first use: an idle connection holds none of it (docs/benchmarks.md, target 3). */
  private rare: SessionRare | undefined;

  constructor(
    private readonly node: SessionNode,
    private readonly transport: ClientTransport,
    /** The upgrade request; its headers go at connect when nothing can read them later (keepRequestHeaders). */
    public request: UpgradeRequestInfo,
  ) {
    this.tokens = node.config.commandRatePerSecond * 2;
  }

  private get own(): SessionRare {
    return (this.rare ??= new SessionRare());
  }

  /** Map subscriptions paging through their state or stream (not in `subs` between two steps). */
  private get mapSteps(): ReadonlyMap<string, MapStep> {
    return this.rare?.mapSteps ?? NO_MAP_STEPS;
  }

  private get ownMapSteps(): Map<string, MapStep> {
    return (this.own.mapSteps ??= new SmallMap());
  }

  /**
   * Publishes handed to the engine and not answered yet, by channel (see drain); made at a connection's first
   * publish. They never reject: handle() turns errors into replies.
   */
  private get publishing(): Map<string, Promise<void>> | undefined {
    return this.rare?.publishing;
  }

  private set publishing(v: Map<string, Promise<void>> | undefined) {
    this.own.publishing = v;
  }

  /** The transport was asked to stop reading: the backlog reached queueCap (resumes at half of it). */
  private get readingPaused(): boolean {
    return this.rare?.readingPaused === true;
  }

  private set readingPaused(v: boolean) {
    if (v || this.rare) this.own.readingPaused = v;
  }

  private get errors(): number {
    return this.rare?.errors ?? 0;
  }

  private set errors(v: number) {
    this.own.errors = v;
  }

  /** `meta` from the connect or refresh proxy: never sent to the client. */
  private get meta(): unknown {
    return this.rare?.meta;
  }

  private set meta(v: unknown) {
    this.own.meta = v;
  }

  /** The connect command's `headers` map (headers emulation), for proxies' emulated_headers. */
  private get emulatedHeaders(): Record<string, string> | undefined {
    return this.rare?.emulatedHeaders;
  }

  private set emulatedHeaders(v: Record<string, string> | undefined) {
    if (v !== undefined || this.rare) this.own.emulatedHeaders = v;
  }

  /** A refresh proxy call is under way. */
  private get refreshing(): boolean {
    return this.rare?.refreshing === true;
  }

  private set refreshing(v: boolean) {
    if (v || this.rare) this.own.refreshing = v;
  }

  /** A close for a passed deadline waits for the input already sent to be read (closeIfStillDue). */
  private get dueCheck(): boolean {
    return this.rare?.dueCheck === true;
  }

  private set dueCheck(v: boolean) {
    if (v || this.rare) this.own.dueCheck = v;
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  channels(): IterableIterator<string> {
    return this.subs.keys();
  }

  hasSubscription(channel: string): boolean {
    return this.subs.has(channel);
  }

  private get context() {
    return { client: this.id, user: this.user, transport: this.request };
  }

  private clientInfo(chanInfo?: string): ClientInfo {
    const info: ClientInfo = { user: this.user, client: this.id };
    if (this.connInfo !== undefined) info.connInfo = this.connInfo;
    if (chanInfo !== undefined) info.chanInfo = chanInfo;
    return info;
  }

  // ---- transport events ------------------------------------------------------------------------------------

  /** A frame from the client: JSON text, or protobuf bytes (a `centrifuge-protobuf` WebSocket). */
  onFrame(frame: string | Uint8Array): void {
    if (this.state === 'closed') return;
    this.pongDeadline = 0;
    let commands: DecodedCommand[];
    if (typeof frame === 'string') commands = decodeFrame(frame, this.node.config.maxJsonDepth);
    else {
      const decoded = decodeProtobufFrame(frame, this.node.config.maxJsonDepth);
      if (!decoded.ok) {
        // Not protobuf: nothing in the frame can be trusted, not even where its commands end.
        this.disconnect({ code: Disconnect.badRequest.code, reason: decoded.message });
        return;
      }
      commands = decoded.commands;
    }
    const backlog = (this.backlog ??= []);
    for (const c of commands) backlog.push(c);
    // Backpressure, not a refusal: a client pipelining faster than its commands are handled is no longer read until
    // the backlog drains to half (one frame already read may take it past the cap: at most HERALD_MAX_MESSAGE_SIZE).
    // Only a client over HERALD_COMMAND_RATE is refused (rateLimited: 111, then 3013).
    if (!this.readingPaused && backlog.length >= this.queueCap) {
      this.readingPaused = true;
      this.transport.pause();
    }
    if (!this.processing)
      this.drain().catch((err: unknown) => this.node.logWarn({ err, client: this.id }, 'command loop failed'));
  }

  /** Commands queued per connection before reading from it pauses: 4 x max(HERALD_COMMAND_RATE, 64). */
  private get queueCap(): number {
    return 4 * Math.max(this.node.config.commandRatePerSecond, 64);
  }

  private resumeReading(): void {
    this.readingPaused = false;
    // The client's pongs waited unread behind its commands: give it a full pong timeout from now.
    if (this.pongDeadline > 0)
      this.pongDeadline = Math.max(this.pongDeadline, Date.now() + this.node.config.pongTimeoutMs);
    this.transport.resume();
  }

  /** The transport's report that the connection is over (SessionCallbacks; the node hands sessions out as such). */
  onClose(code: number, reason: string): void {
    this.node.closed(this);
    this.ended(code, reason);
  }

  private ended(code: number, reason: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.backlog = undefined;
    this.node.metrics.disconnect(code);
    for (const channel of [...this.subs.keys()]) this.dropSubscription(channel, 'disconnect', code);
    if (wasConnected) {
      this.node.unregister(this);
      this.safeHook(() => this.node.hooks.onDisconnect?.({ ...this.context, code, reason }));
    }
  }

  /** Called about once a second by the node: pings, pong deadline, stale and expired connections. */
  tick(now: number): void {
    const cfg = this.node.config;
    if (this.state === 'new' || this.state === 'connecting') {
      if (now - this.createdAt > cfg.connectTimeoutMs) {
        const was = this.state;
        // Still due once what the client already sent is read: no connect came, or the one under way was already.
        this.closeIfStillDue(
          () => this.state === 'new' || (this.state === 'connecting' && was === 'connecting'),
          Disconnect.stale,
        );
      }
      return;
    }
    if (this.state !== 'connected') return;
    if (this.pongDeadline > 0 && now > this.pongDeadline && !this.readingPaused) {
      // Any frame read meanwhile (the pong among them) clears the deadline.
      this.closeIfStillDue(
        () => this.state === 'connected' && this.pongDeadline > 0 && now > this.pongDeadline && !this.readingPaused,
        Disconnect.noPong,
      );
      return;
    }
    if (cfg.pingIntervalMs > 0 && now >= this.nextPingAt) {
      this.transport.send(PING_FRAME);
      this.nextPingAt = now + cfg.pingIntervalMs;
      if (this.pongDeadline === 0 && cfg.pongTimeoutMs > 0 && !this.transport.unidirectional)
        this.pongDeadline = now + cfg.pongTimeoutMs;
    }
    const proxies = this.node.proxies;
    if (this.expireAt > 0 && proxies?.refreshEnabled) {
      if (now >= this.expireAt * 1000 && !this.refreshing) this.refreshByProxy(proxies);
    } else if (this.expireAt > 0 && now > this.expireAt * 1000 + this.node.config.expiredCloseDelayMs) {
      this.disconnect(Disconnect.expired);
      return;
    }
    for (const [channel, sub] of this.subs) {
      const mp = sub.mapPresence;
      if (mp && sub.active && mp.refreshAt > 0 && now >= mp.refreshAt)
        this.mapPresencePublish(mp, sub.chanInfo).catch((err: unknown) =>
          this.node.logWarn({ err, channel: mp.channel }, 'map presence refresh failed'),
        );
      if (sub.expireAt > 0 && sub.serverRefresh && proxies) {
        if (now >= sub.expireAt * 1000 && !sub.refreshing && sub.active) this.subRefreshByProxy(proxies, channel, sub);
      } else if (sub.expireAt > 0 && now > sub.expireAt * 1000 + this.node.config.expiredCloseDelayMs) {
        this.unsubscribeByServer(channel, UnsubscribeCode.expired, 'subscription expired', 'expired');
      }
    }
  }

  /**
   * Closes with `d` if `stillDue()` holds once the input already waiting in sockets has been read: the ticker runs in
   * the event loop's timers phase, and a node short of CPU reaches it late, with the client's pong or connect unread
   * in its socket. A setImmediate callback runs after the loop's I/O phase has read them (the scale benchmark's storm
   * saw clients that had answered closed with 3012 and 3502, then reconnect and recover again).
   */
  private closeIfStillDue(stillDue: () => boolean, d: DisconnectInfo): void {
    if (this.dueCheck) return;
    this.dueCheck = true;
    setImmediate(() => {
      this.dueCheck = false;
      if (this.state !== 'closed' && stillDue()) this.disconnect(d);
    });
  }

  // ---- HubSubscriber ---------------------------------------------------------------------------------------

  deliver(frame: SharedFrame): void {
    this.transport.sendShared(frame);
  }

  onInsufficientState(channel: string): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    if (!sub.active) {
      sub.invalidated = true;
      return;
    }
    this.unsubscribeByServer(channel, UnsubscribeCode.insufficientState, 'insufficient state', 'insufficient_state');
  }

  // ---- server-initiated actions ----------------------------------------------------------------------------

  disconnect(d: DisconnectInfo): void {
    if (this.state === 'closed') return;
    this.transport.close(d.code, d.reason);
    this.ended(d.code, d.reason);
  }

  unsubscribeByServer(channel: string, code: number, reason: string, hookReason = 'server'): void {
    if (!this.subs.has(channel)) return;
    this.dropSubscription(channel, hookReason, code);
    this.transport.send(encodeUnsubscribePush(channel, code, reason));
  }

  /** Subscribes this client from the server side (HTTP API subscribe): a `subscribe` push tells the SDK. */
  async subscribeByServer(channel: string): Promise<void> {
    if (this.state !== 'connected' || this.subs.has(channel)) return;
    const rules = resolveChannel(this.node.config, channel);
    // A map is subscribed in steps the client drives; the protocol has no server-side map subscription.
    if (rules.options.subscription_type !== 'stream') return;
    const body = await this.subscribeInternal(
      rules,
      {
        recover: false,
        offset: 0,
        epoch: '',
        joinLeave: false,
        recoverable: true,
        positioned: true,
        rejectUnrecovered: false,
        delta: false,
      },
      undefined,
      0,
      true,
    );
    this.transport.send(encodeSubscribePush(channel, body.json));
    this.activate(channel, body.position, body.deltaBase);
  }

  sendMessage(data: string): void {
    this.transport.send(encodeMessagePush(data));
  }

  // ---- command loop ----------------------------------------------------------------------------------------

  /**
   * Commands run one after another, each finished before the next starts, except consecutive publishes to different
   * channels: up to PUBLISHES_IN_FLIGHT of them are in the engine at once, so on Redis one round trip no longer
   * bounds a connection that publishes to many channels (per-user notification channels). A publish to a channel
   * that has one in flight waits for it: a connection's publications to one channel are stored in the order sent
   * whatever the engine does on a retry. Any other command first waits for every publish in flight, so a history
   * read or a subscribe after a publish sees it. Not with an onPublish hook or a publish proxy: those run one at a
   * time, as before. Order across channels is not guaranteed (it never was across Redis shards).
   */
  private async drain(): Promise<void> {
    this.processing = true;
    try {
      for (;;) {
        const backlog = this.backlog;
        if (!backlog || backlog.length === 0 || this.state === 'closed') break;
        const cmd = backlog.shift()!;
        if (this.readingPaused && backlog.length <= this.queueCap / 2) this.resumeReading();
        const channel = this.overlappingPublish(cmd);
        const publishing = this.publishing;
        if (channel === undefined) {
          if (publishing !== undefined && publishing.size > 0) await Promise.all(publishing.values());
          const pending = this.handle(cmd);
          if (pending) await pending;
          continue;
        }
        const same = publishing?.get(channel);
        if (same) await same;
        const pending = this.handle(cmd);
        if (!pending) continue;
        const inFlight = (this.publishing ??= new Map());
        inFlight.set(channel, pending);
        const settled = () => {
          if (inFlight.get(channel) === pending) inFlight.delete(channel);
        };
        pending.then(settled, settled);
        if (inFlight.size >= PUBLISHES_IN_FLIGHT) await Promise.race(inFlight.values());
      }
    } finally {
      this.processing = false;
      if (this.backlog?.length === 0) this.backlog = undefined;
    }
  }

  /** The channel of a publish that may overlap others (see drain), or undefined: the command runs on its own. */
  private overlappingPublish(cmd: DecodedCommand): string | undefined {
    if (cmd.kind !== 'command' || cmd.method !== 'publish' || !this.publishesOverlap) return undefined;
    const channel = cmd.params.channel;
    return typeof channel === 'string' ? channel : undefined;
  }

  /** Publishes may overlap: nothing of the app's runs between parsing one and storing it (see drain). */
  private get publishesOverlap(): boolean {
    return this.node.hooks.onPublish === undefined && this.node.proxies?.publishConfigured !== true;
  }

  private rateLimited(): boolean {
    const rate = this.node.config.commandRatePerSecond;
    if (rate <= 0) return false;
    const now = Date.now();
    this.tokens = Math.min(rate * 2, this.tokens + ((now - this.lastRefill) * rate) / 1000);
    this.lastRefill = now;
    this.tokens -= 1;
    if (this.tokens < -rate * 2) {
      this.disconnect(Disconnect.tooManyRequests);
      return true;
    }
    return this.tokens < 0;
  }

  private handle(cmd: DecodedCommand): Promise<void> | undefined {
    if (cmd.kind === 'pong') return undefined;
    if (cmd.kind === 'invalid') {
      this.fail(cmd.id, new HeraldError(cmd.code, cmd.message));
      return undefined;
    }
    this.node.metrics.command(cmd.method);
    if (this.rateLimited()) {
      if (this.state !== 'closed' && cmd.id > 0) this.fail(cmd.id, new HeraldError(ErrorCode.tooManyRequests));
      return undefined;
    }
    if (cmd.method !== 'connect' && this.state !== 'connected') {
      // Commands before connect succeeded: the protocol is violated.
      this.disconnect(Disconnect.badRequest);
      return undefined;
    }
    let result: Promise<void> | void;
    try {
      result = this.dispatch(cmd.id, parseCommand(cmd.method, cmd.params));
    } catch (err) {
      this.fail(cmd.id, err);
      return undefined;
    }
    if (result) return result.catch((err: unknown) => this.fail(cmd.id, err));
    return undefined;
  }

  private dispatch(id: number, c: ClientCommand): Promise<void> | void {
    switch (c.method) {
      case 'connect':
        return this.onConnect(id, c.params);
      case 'subscribe':
        return this.onSubscribe(id, c.params);
      case 'unsubscribe':
        return this.onUnsubscribe(id, c.params);
      case 'publish':
        return this.onPublish(id, c.params);
      case 'presence':
        return this.onPresence(id, c.params);
      case 'presence_stats':
        return this.onPresenceStats(id, c.params);
      case 'history':
        return this.onHistory(id, c.params);
      case 'refresh':
        return this.onRefresh(id, c.params);
      case 'sub_refresh':
        return this.onSubRefresh(id, c.params);
      case 'rpc':
        return this.onRpc(id, c.params);
      case 'send':
        return this.onSend(c.params);
      case 'ping':
        this.reply(id, 'ping', EMPTY_RESULT);
        return;
    }
  }

  private reply(id: number, method: string, result: string): void {
    if (id > 0 && this.state !== 'closed') this.transport.send(encodeReply(id, method, result));
    this.chargeReply(result.length);
  }

  /**
   * Big replies (history, recovery, presence) cost the server far more than a ping: each 64 KiB counts as one more
   * command, so the per-connection rate limit bounds bytes built per second too. The charge never takes the bucket
   * below minus one second's rate: a client is then answered 111 for a while, and only a client that goes on
   * sending regardless reaches the 3013 disconnect.
   */
  private chargeReply(length: number): void {
    const rate = this.node.config.commandRatePerSecond;
    const extra = Math.floor(length / REPLY_BYTES_PER_COMMAND);
    if (rate <= 0 || extra === 0) return;
    this.tokens = Math.max(this.tokens - extra, Math.min(this.tokens, -rate));
  }

  /** Bytes one reply may take (HERALD_MAX_REPLY_SIZE, never more than the send buffer it must fit into). */
  private get replyBudget(): number {
    const cfg = this.node.config;
    return Math.min(cfg.maxReplyBytes, cfg.maxSendBufferBytes);
  }

  private fail(id: number, err: unknown): void {
    if (this.state === 'closed') return;
    if (err instanceof HeraldDisconnect) {
      this.disconnect(err.disconnect);
      return;
    }
    let e: HeraldError;
    if (err instanceof HeraldError) e = err;
    else {
      this.node.logWarn({ err, client: this.id }, 'command failed');
      e = new HeraldError(ErrorCode.internal);
    }
    this.node.metrics.error(e.code);
    if (e.code === ErrorCode.badRequest || e.code === ErrorCode.methodNotFound) {
      this.errors++;
      if (this.errors > this.node.config.maxErrors) {
        this.disconnect(Disconnect.tooManyErrors);
        return;
      }
    }
    this.transport.send(encodeError(id, e.toReply()));
  }

  private safeHook(fn: () => unknown): void {
    try {
      const r = fn();
      if (r && typeof (r as Promise<unknown>).catch === 'function') {
        (r as Promise<unknown>).catch((err) => this.node.logWarn({ err }, 'hook failed'));
      }
    } catch (err) {
      this.node.logWarn({ err }, 'hook failed');
    }
  }

  private subscribed(channel: string): Subscription {
    const sub = this.subs.get(channel);
    if (!sub || !sub.active)
      throw new HeraldError(ErrorCode.permissionDenied, `permission denied: not subscribed to "${channel}"`);
    return sub;
  }

  // ---- connect ---------------------------------------------------------------------------------------------

  private async onConnect(id: number, p: ConnectParams): Promise<void> {
    if (this.state !== 'new') {
      this.disconnect(Disconnect.badRequest);
      return;
    }
    const token = p.token;
    if (token === null) throw tokenNotString();
    this.state = 'connecting';
    this.clientName = internClientName(p.name ?? '');
    const cfg = this.node.config;
    let creds: ConnectionCredentialsLike | undefined;
    let replyData: string | undefined;
    this.emulatedHeaders = p.headers;
    try {
      const hook = this.node.hooks.onConnecting;
      if (hook) {
        const r = await hook({
          client: this.id,
          transport: this.request,
          token: token || undefined,
          data: p.data,
          name: p.name,
          version: p.version,
          headers: p.headers,
        });
        if (r?.disconnect) {
          this.disconnect(r.disconnect);
          return;
        }
        if (r) {
          creds = {
            user: r.user ?? '',
            expireAt: r.expireAt,
            info: r.info === undefined ? undefined : this.hookInfo(r.info, 'onConnecting'),
            channels: r.channels,
          };
          if (r.data !== undefined) replyData = jsonText(r.data);
        }
      }
      if (!creds && token) {
        creds = await this.verifyTokenOrClose(token);
        if (!creds) return;
      } else if (!creds && this.node.proxies?.connectEnabled) {
        // No token: the app's connect proxy decides (Centrifugo's order: a token never reaches the proxy).
        const g = await this.node.proxies.connect(this.proxyConnection, {
          name: p.name,
          version: p.version,
          data: p.data,
        });
        if (g) {
          creds = { user: g.user, expireAt: g.expireAt, info: g.info, channels: g.channels, subs: g.subs };
          if (g.data !== undefined) replyData = g.data;
          this.meta = g.meta;
        }
      }
      if (!creds) {
        if (cfg.insecure || cfg.allowAnonymous) creds = { user: '' };
        else {
          throw new HeraldError(
            ErrorCode.unauthorized,
            'unauthorized: a connection token is required (pass token or getToken to the client; anonymous connections are off)',
          );
        }
      }
    } catch (err) {
      if (this.state === 'connecting') this.state = 'new';
      throw err;
    }
    if (this.state !== 'connecting') return;
    const nowSec = Date.now() / 1000;
    // The same leeway the token verifier gives exp (docs/auth.md, "Clock tolerance"), also for hook credentials.
    if (creds.expireAt !== undefined && creds.expireAt > 0 && creds.expireAt + DEFAULT_CLOCK_TOLERANCE_SEC <= nowSec) {
      this.state = 'new';
      throw new HeraldError(ErrorCode.tokenExpired);
    }
    const serverChannels = new Set([...(creds.channels ?? []), ...Object.keys(creds.subs ?? {})]);
    if (serverChannels.size > cfg.channelLimit) {
      this.state = 'new';
      throw new HeraldError(
        ErrorCode.limitExceeded,
        `limit exceeded: the connection's channels and subs (token claims or onConnecting) list ${serverChannels.size} channels, more than the ${cfg.channelLimit} allowed per connection (HERALD_CHANNEL_LIMIT)`,
      );
    }
    this.user = creds.user;
    this.connInfo = creds.info;
    if (
      cfg.userConnectionLimit > 0 &&
      this.user !== '' &&
      this.node.userConnectionCount(this.user) >= cfg.userConnectionLimit
    ) {
      this.disconnect(Disconnect.connectionLimit);
      return;
    }
    this.expireAt = creds.expireAt && creds.expireAt > 0 ? creds.expireAt : 0;
    this.state = 'connected';
    if (!this.node.keepRequestHeaders && this.request.headers !== NO_HEADERS)
      this.request = { url: this.request.url, remoteAddress: this.request.remoteAddress, headers: NO_HEADERS };
    this.nextPingAt = Date.now() + cfg.pingIntervalMs;
    this.node.register(this);

    // Server-side subscriptions from the token's `channels` and `subs` claims (`subs` adds per-channel info and
    // data), recovered when the client asks in `subs`.
    const subs: [string, string][] = [];
    const activations: [string, StreamPosition | undefined, Publication | undefined][] = [];
    const budget: ReplyBudget = { left: this.replyBudget - 1024 };
    for (const channel of serverChannels) {
      const claimed = creds.subs && Object.hasOwn(creds.subs, channel) ? creds.subs[channel] : undefined;
      if (this.subs.has(channel)) continue;
      let rules: ChannelRules;
      try {
        rules = resolveChannel(cfg, channel);
      } catch (err) {
        this.node.logWarn({ channel, err: (err as Error).message }, 'server-side channel from token skipped');
        continue;
      }
      if (rules.options.subscription_type !== 'stream') {
        // A map is subscribed in steps the client drives; the protocol has no server-side map subscription.
        this.node.logWarn(
          { channel },
          'server-side channel from token skipped: map channels are subscribed by clients',
        );
        continue;
      }
      const req = p.subs.get(channel);
      const body = await this.subscribeInternal(
        rules,
        {
          recover: req?.recover ?? false,
          offset: req?.offset ?? 0,
          epoch: req?.epoch ?? '',
          joinLeave: false,
          recoverable: true,
          positioned: true,
          rejectUnrecovered: false,
          delta: false,
          ...(claimed?.data !== undefined ? { data: claimed.data } : {}),
        },
        claimed?.info,
        0,
        true,
        budget,
      );
      if (this.state !== 'connected') return;
      subs.push([channel, body.json]);
      activations.push([channel, body.position, body.deltaBase]);
    }

    const result = encodeConnectResult({
      client: this.id,
      version: this.node.version,
      pingSec: cfg.pingIntervalMs > 0 ? Math.round(cfg.pingIntervalMs / 1000) : 0,
      // With a refresh proxy Herald refreshes the connection itself at expiry: the client is not told to.
      expireAt: this.node.proxies?.refreshEnabled ? 0 : this.expireAt,
      nowSec,
      data: replyData,
      emulation: this.transport.emulation,
      subs,
    });
    this.reply(id, 'connect', result);
    for (const [channel, position, base] of activations) this.activate(channel, position, base);
    this.safeHook(() => this.node.hooks.onConnect?.(this.context));
  }

  /** Verifies a connection token; an invalid one closes the connection (undefined), an expired one throws 109. */
  private async verifyTokenOrClose(token: string): Promise<ConnectionCredentialsLike | undefined> {
    try {
      return await this.node.verifyConnectionToken(token);
    } catch (err) {
      const f = this.node.tokenFailure(err);
      if (f.disconnect) {
        this.disconnect(f.disconnect);
        return undefined;
      }
      throw f.reply ?? err;
    }
  }

  private async onRefresh(id: number, p: RefreshParams): Promise<void> {
    const creds = await this.verifyTokenOrClose(p.token);
    if (!creds) return;
    if (creds.user !== this.user) {
      this.disconnect({
        code: Disconnect.invalidToken.code,
        reason: 'invalid token: refresh token is for another user',
      });
      return;
    }
    const nowSec = Date.now() / 1000;
    if (creds.expireAt !== undefined && creds.expireAt > 0 && creds.expireAt + DEFAULT_CLOCK_TOLERANCE_SEC <= nowSec)
      throw new HeraldError(ErrorCode.tokenExpired);
    this.expireAt = creds.expireAt && creds.expireAt > 0 ? creds.expireAt : 0;
    if (creds.info !== undefined) this.connInfo = creds.info;
    this.reply(
      id,
      'refresh',
      encodeRefreshResult({ client: this.id, version: this.node.version, expireAt: this.expireAt, nowSec }),
    );
  }

  // ---- subscriptions ---------------------------------------------------------------------------------------

  /** A hook's `info` as JSON text, capped as token info is (HERALD_MAX_INFO_SIZE): past it 100 and a warning. */
  private hookInfo(info: unknown, hook: 'onConnecting' | 'onSubscribe', channel?: string): string {
    const text = jsonText(info);
    const max = this.node.config.maxInfoBytes;
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes <= max) return text;
    const problem = `the ${hook} hook returned info of ${bytes} bytes, more than the ${max} allowed (HERALD_MAX_INFO_SIZE)`;
    this.node.logWarn({ hook, client: this.id, user: this.user, channel, bytes, max }, `${problem}: refused`);
    throw new HeraldError(ErrorCode.internal, `internal server error: ${problem}; the app's operator must fix it`);
  }

  private async onSubscribe(id: number, p: SubscribeParams): Promise<void> {
    const cfg = this.node.config;
    let rules = resolveChannel(cfg, p.channel);
    const channel = rules.channel;
    // `type` 1 (map), 2 (map clients) and 4 (shared poll) go to a channel of that subscription_type; 3 (map users) is
    // a Centrifugo kind Herald lacks: 108 as Centrifugo answers a kind the channel does not offer, rather than a
    // stream that looks empty.
    const type = p.type ?? 0;
    const offered = SUBSCRIPTION_TYPES[rules.options.subscription_type];
    if (type !== offered) {
      throw new HeraldError(
        ErrorCode.notAvailable,
        type === 3
          ? `not available: subscription type 3 (map users) is not supported`
          : `not available: channel "${channel}" offers ${rules.options.subscription_type} subscriptions (type ${offered}), not type ${JSON.stringify(p.type)}`,
      );
    }
    if (this.subs.has(channel)) throw new HeraldError(ErrorCode.alreadySubscribed);
    // Map subscribes between two steps count too (each holds its channel's permission until it goes live).
    const paging = this.mapSteps.size - (this.mapSteps.has(channel) ? 1 : 0);
    if (this.subs.size + paging >= cfg.channelLimit) {
      throw new HeraldError(
        ErrorCode.limitExceeded,
        `limit exceeded: at most ${cfg.channelLimit} channels per connection (HERALD_CHANNEL_LIMIT)`,
      );
    }
    if (offered === 4) return this.onSharedPollSubscribe(id, p, rules);
    if (offered !== 0) return this.onMapSubscribe(id, p, rules);
    const auth = await this.authorizeSubscribe(p, rules);
    if (!auth) return;
    ({ rules } = auth);
    const { chanInfo, expireAt, replyData } = auth;
    const proxies = this.node.proxies;
    if (this.state !== 'connected') return;
    if (this.subs.has(channel)) throw new HeraldError(ErrorCode.alreadySubscribed);
    if (p.delta === 'unknown') throw unknownDeltaType();
    const body = await this.subscribeInternal(
      rules,
      {
        recover: p.recover,
        offset: p.offset,
        epoch: p.epoch,
        joinLeave: p.joinLeave,
        recoverable: p.recoverable,
        positioned: p.positioned,
        rejectUnrecovered: (p.flag & FLAG_REJECT_UNRECOVERED) !== 0,
        delta: p.delta === 'fossil',
        data: replyData,
        serverRefresh: proxies?.subRefreshEnabled(rules.options) === true,
      },
      chanInfo,
      expireAt,
      false,
      { left: this.replyBudget - 1024 },
    );
    if (this.state !== 'connected') return;
    this.reply(id, 'subscribe', body.json);
    this.activate(channel, body.position, body.deltaBase);
  }

  /**
   * The subscribe's permission: a subscription token, the subscribe proxy or the namespace's allow_* options, then
   * the onSubscribe hook. Undefined when the connection closed meanwhile (nothing to answer).
   */
  private async authorizeSubscribe(
    p: SubscribeParams,
    rulesIn: ChannelRules,
  ): Promise<{ rules: ChannelRules; chanInfo?: string; expireAt: number; replyData?: string } | undefined> {
    let rules = rulesIn;
    const cfg = this.node.config;
    const channel = rules.channel;
    const token = p.token;
    if (token === null) throw tokenNotString();
    let chanInfo: string | undefined;
    let expireAt = 0;
    // Without a token, a namespace with subscribe_proxy_enabled asks the app instead of its allow_* options (a
    // user-limited channel keeps its own rule, as in Centrifugo).
    const proxies = this.node.proxies;
    const proxied =
      !token && proxies?.subscribeEnabled(rules.options) === true && userLimitedAllows(rules, this.user) === undefined;
    if (token) {
      try {
        const c = await this.node.verifySubscriptionToken(token, { client: this.id, user: this.user, channel });
        chanInfo = c.info;
        expireAt = c.expireAt && c.expireAt > 0 ? c.expireAt : 0;
      } catch (err) {
        const f = this.node.tokenFailure(err);
        if (f.reply?.code === ErrorCode.tokenExpired) throw f.reply;
        throw new HeraldError(
          ErrorCode.permissionDenied,
          `permission denied: subscription token refused (${f.disconnect?.reason ?? f.reply?.message ?? 'invalid'})`,
        );
      }
    } else if (!proxied) {
      checkSubscribe(rules, { user: this.user, insecure: cfg.insecure });
    }
    let replyData: string | undefined;
    const hook = this.node.hooks.onSubscribe;
    if (hook) {
      const r = await hook({ ...this.context, channel, data: p.data, token: token || undefined });
      if (r?.info !== undefined) chanInfo = this.hookInfo(r.info, 'onSubscribe', channel);
      if (r?.data !== undefined) replyData = jsonText(r.data);
    }
    // The hook ran first (it may refuse before the app is asked); the proxy's info and data win over the hook's.
    if (proxied && proxies && this.state === 'connected') {
      const g = await proxies.subscribe(this.proxyConnection, rules.options, { channel, data: p.data });
      if (g.info !== undefined) chanInfo = g.info;
      if (g.data !== undefined) replyData = g.data;
      expireAt = g.expireAt;
      if (Object.keys(g.override).length > 0) rules = { ...rules, options: { ...rules.options, ...g.override } };
    }
    if (this.state !== 'connected') return undefined;
    return { rules, chanInfo, expireAt, replyData };
  }

  /**
   * Registers the subscription (pending in the hub), reads history for recovery or position, adds presence and
   * builds the subscribe result. The caller sends it, then calls activate() so buffered pushes follow the reply.
   * Recovered publications must fit in `budget` (what is left of the reply's HERALD_MAX_REPLY_SIZE); when they do
   * not, the subscription is answered `recovered: false` (the client reloads its state from the application), or
   * 112 when the client asked to be refused rather than told.
   */
  private async subscribeInternal(
    rules: ChannelRules,
    p: SubscribeOptions,
    chanInfo: string | undefined,
    expireAt: number,
    serverSide: boolean,
    budget: ReplyBudget = { left: 0 },
  ): Promise<{ json: string; position: StreamPosition | undefined; deltaBase?: Publication }> {
    const o = rules.options;
    const channel = rules.channel;
    const joinLeave = o.join_leave && (p.joinLeave || o.force_push_join_leave);
    // Fossil delta is negotiated when the namespace allows it; the SDK then reads every `pub.data` as a JSON string.
    const delta = p.delta && o.allowed_delta_types.includes('fossil');
    const sub = new Subscription(rules, chanInfo, expireAt, {
      joinLeave,
      presence: o.presence,
      serverSide,
      serverRefresh: p.serverRefresh === true,
    });
    this.subs.set(channel, sub);
    try {
      await this.node.hub.add(channel, this, joinLeave, delta ? { publish: o.delta_publish } : undefined);
      const useHistory = o.history_size > 0;
      const recoverable = useHistory && (o.force_recovery || (o.allow_recovery && (p.recoverable || p.recover)));
      const positioned = recoverable || (useHistory && (o.force_positioning || (o.allow_positioning && p.positioned)));
      let position: StreamPosition | undefined;
      let pubsJson: string | undefined;
      let deltaBase: Publication | undefined;
      let recovered = false;
      const hq = streamOptions(o);
      // Cache recovery (force_recovery_mode "cache"): the channel's latest publication instead of the gap, asked for
      // with recover (the SDK's `since: {}`), or for every subscribe with auto_cache_recover.
      const cache = o.force_recovery_mode === 'cache';
      const recover = p.recover || (cache && o.auto_cache_recover);
      if (recoverable && recover && cache) {
        const r = await this.node.engine.history.history(channel, { limit: 1, reverse: true, ...hq });
        position = r.position;
        const latest = r.publications[0];
        // As Centrifuge's isCacheRecovered: a client already at the top gets nothing more and is recovered.
        const upToDate = p.offset > 0 && p.offset === position.offset && p.epoch === position.epoch;
        recovered = latest ? latest.offset === position.offset : upToDate;
        const pubs = latest && recovered && !upToDate ? [latest] : [];
        pubsJson = encodePublicationListWithin(pubs, budget.left, delta);
        if (pubsJson === undefined) recovered = false;
        else {
          budget.left -= Buffer.byteLength(pubsJson, 'utf8');
          if (delta) deltaBase = pubs[0];
        }
      } else if (recoverable && p.recover) {
        const since = { offset: p.offset, epoch: p.epoch };
        const r = await this.node.engine.history.history(channel, { since, limit: -1, ...hq });
        position = r.position;
        // An empty epoch from the client matches any epoch (the SDK sends none when the app's getState/since
        // only knows an offset), as in Centrifuge's isStreamRecovered.
        recovered =
          (since.epoch === '' || since.epoch === position.epoch) &&
          since.offset <= position.offset &&
          r.publications.length === position.offset - since.offset;
        if (recovered) {
          pubsJson = encodePublicationListWithin(r.publications, budget.left, delta);
          if (pubsJson === undefined) recovered = false;
          else {
            budget.left -= Buffer.byteLength(pubsJson, 'utf8');
            if (delta) deltaBase = r.publications.at(-1);
          }
        }
        if (!recovered && p.rejectUnrecovered) throw new HeraldError(ErrorCode.unrecoverablePosition);
      } else if (positioned) {
        position = (await this.node.engine.history.history(channel, { limit: 0, ...hq })).position;
      }
      if (this.state !== 'connected' || this.subs.get(channel) !== sub)
        throw new HeraldError(ErrorCode.internal, 'connection closed during subscribe');
      if (o.presence)
        await this.node.engine.presence.addPresence(channel, this.clientInfo(chanInfo), this.node.config.presenceTtlMs);
      if (o.join_leave) await this.node.engine.broker.publishJoin(channel, this.clientInfo(chanInfo));
      const json = encodeSubscribeResult({
        expireAt: p.serverRefresh ? 0 : expireAt,
        nowSec: Date.now() / 1000,
        recoverable,
        delta,
        position: positioned ? position : undefined,
        recovery: recoverable && recover ? { recovered, publications: pubsJson } : undefined,
        data: p.data,
      });
      return { json, position: positioned ? position : undefined, deltaBase };
    } catch (err) {
      if (this.subs.get(channel) === sub) {
        this.subs.delete(channel);
        this.node.hub.remove(channel, this);
      }
      throw err;
    }
  }

  // ---- map subscriptions -------------------------------------------------------------------------------------

  /**
   * One step of a map subscribe (docs/protocol.md#map-subscriptions). State pages (phase 2) give the state in key
   * order; the last page goes live: the subscription is registered in the hub (pending) before the last page and the
   * stream since the first page are read, so every change after the first page's position is either read or
   * buffered, and Hub.activate skips what the reply already holds. A recovery (phase 1 or 0 with a position) reads
   * the stream since it and goes live the same way, or answers a stream page (phase 1) when more changes than
   * live_transition_max_publication_limit are missing. A position the stream no longer covers answers 112: the SDK
   * starts over from the state.
   */
  private async onMapSubscribe(id: number, p: SubscribeParams, rulesIn: ChannelRules): Promise<void> {
    const channel = rulesIn.channel;
    const map = this.node.engine.map;
    if (!map)
      throw new HeraldError(ErrorCode.notAvailable, `not available: the ${this.node.engine.name} engine has no maps`);
    let step = this.mapSteps.get(channel);
    const continuing = p.cursor !== '' || (p.phase !== MAP_PHASE_STATE && step?.stream === true);
    if (p.cursor !== '' && (!step || step.stream))
      throw new HeraldError(ErrorCode.permissionDenied, 'permission denied: no map state pagination in progress');
    if (!continuing || !step) {
      if (p.phase !== MAP_PHASE_STATE && !p.recover)
        throw new HeraldError(
          ErrorCode.badRequest,
          'bad request: a map subscribe starts with a state page (phase 2) or recovers from a position',
        );
      this.rare?.mapSteps?.delete(channel);
      const auth = await this.authorizeSubscribe(p, rulesIn);
      if (!auth) return;
      let filter: TagsFilter | undefined;
      if (p.tf !== undefined) {
        if (!auth.rules.options.allow_tags_filter)
          throw new HeraldError(
            ErrorCode.badRequest,
            `bad request: tags filters are not allowed on "${channel}" (allow_tags_filter)`,
          );
        filter = parseTagsFilter(p.tf);
      }
      if (p.delta === 'unknown') throw unknownDeltaType();
      step = {
        rules: auth.rules,
        type: p.type ?? 0,
        chanInfo: auth.chanInfo,
        expireAt: auth.expireAt,
        replyData: auth.replyData,
        filter,
        position: undefined,
        stream: false,
        delta: p.delta === 'fossil' && auth.rules.options.allowed_delta_types.includes('fossil'),
      };
      this.ownMapSteps.set(channel, step);
    }
    const current = step;
    try {
      if (p.phase === MAP_PHASE_STATE) await this.mapStatePage(id, p, current);
      else await this.mapRecover(id, p, current);
    } catch (err) {
      if (this.mapSteps.get(channel) === current) this.rare?.mapSteps?.delete(channel);
      throw err;
    }
  }

  private mapPageSize(m: NonNullable<NamespaceOptions['map']>, asked: number): number {
    return Math.min(m.max_page_size, Math.max(m.min_page_size, asked > 0 ? asked : m.default_page_size));
  }

  private async mapStatePage(id: number, p: SubscribeParams, step: MapStep): Promise<void> {
    const { rules } = step;
    const channel = rules.channel;
    const m = rules.options.map!;
    const map = this.node.engine.map!;
    const first = step.position;
    const sub = await this.mapRegister(step);
    let entries: Publication[];
    let position: StreamPosition;
    let pubs: Publication[] = [];
    try {
      const r = await map.readState(channel, {
        cursor: p.cursor,
        limit: this.mapPageSize(m, p.limit),
        metaTtlMs: streamOptions(rules.options).historyMetaTtlMs,
      });
      this.mapCheckOpen(channel, sub);
      entries = r.entries;
      position = r.position;
      if (first) {
        // Later pages hold only what the first page's position covers; later changes come from the stream.
        if (r.position.epoch !== first.epoch) throw new HeraldError(ErrorCode.unrecoverablePosition);
        entries = entries.filter((e) => e.offset <= first.offset);
      }
      if (step.filter) entries = entries.filter((e) => matchesTags(step.filter!, e.tags));
      if (r.cursor !== '') {
        this.mapUnregister(channel, sub);
        step.position = first ?? r.position;
        const state = this.mapList(step, entries, 'state');
        this.reply(
          id,
          'subscribe',
          encodeMapSubscribeResult({
            ...this.mapResultBase(step),
            phase: MAP_PHASE_STATE,
            cursor: r.cursor,
            position: step.position,
            state,
          }),
        );
        return;
      }
      if (first) {
        const caught = await this.mapStreamSince(step, first);
        this.mapCheckOpen(channel, sub);
        if (!caught.complete || caught.pubs.length > m.live_transition_max_publication_limit)
          throw new HeraldError(ErrorCode.unrecoverablePosition);
        pubs = caught.pubs;
        position = caught.position;
      }
    } catch (err) {
      this.mapUnregister(channel, sub);
      throw err;
    }
    await this.mapGoLive(id, step, sub, position, entries, pubs, undefined);
  }

  private async mapRecover(id: number, p: SubscribeParams, step: MapStep): Promise<void> {
    const { rules } = step;
    const channel = rules.channel;
    const m = rules.options.map!;
    if (m.mode === 'ephemeral')
      throw new HeraldError(
        ErrorCode.badRequest,
        `bad request: "${channel}" keeps no stream (map mode "ephemeral"): subscribe from the state (phase 2)`,
      );
    const since = { offset: p.offset, epoch: p.epoch };
    if (step.position && since.epoch !== step.position.epoch) throw new HeraldError(ErrorCode.unrecoverablePosition);
    const sub = await this.mapRegister(step);
    let caught: { pubs: Publication[]; position: StreamPosition; complete: boolean };
    try {
      caught = await this.mapStreamSince(step, since);
      this.mapCheckOpen(channel, sub);
      if (!caught.complete) throw new HeraldError(ErrorCode.unrecoverablePosition);
      if (caught.pubs.length > m.live_transition_max_publication_limit) {
        // Too far behind for one reply: a stream page, and the client asks again from its last offset.
        this.mapUnregister(channel, sub);
        const page = caught.pubs.slice(0, this.mapPageSize(m, p.limit));
        const last = page.at(-1)!;
        step.stream = true;
        step.position = { offset: last.offset, epoch: caught.position.epoch };
        this.reply(
          id,
          'subscribe',
          encodeMapSubscribeResult({
            ...this.mapResultBase(step),
            phase: MAP_PHASE_STREAM,
            position: step.position,
            publications: this.mapList(step, this.mapFiltered(step, page), 'publications'),
          }),
        );
        return;
      }
    } catch (err) {
      this.mapUnregister(channel, sub);
      throw err;
    }
    await this.mapGoLive(id, step, sub, caught.position, [], caught.pubs, true);
  }

  /** The stream since `since`, at most live_transition_max_publication_limit + 1 changes, and whether nothing is missing. */
  private async mapStreamSince(
    step: MapStep,
    since: StreamPosition,
  ): Promise<{ pubs: Publication[]; position: StreamPosition; complete: boolean }> {
    const o = step.rules.options;
    const limit = o.map!.live_transition_max_publication_limit + 1;
    const r = await this.node.engine.history.history(step.rules.channel, { since, limit, ...streamOptions(o) });
    const missing = r.position.offset - since.offset;
    const complete =
      r.position.epoch === since.epoch &&
      missing >= 0 &&
      r.publications.length === Math.min(missing, limit) &&
      (r.publications.length === 0 || r.publications[0]!.offset === since.offset + 1);
    return { pubs: r.publications, position: r.position, complete };
  }

  private mapFiltered(step: MapStep, pubs: Publication[]): Publication[] {
    return step.filter ? pubs.filter((e) => matchesTags(step.filter!, e.tags)) : pubs;
  }

  private mapList(step: MapStep, pubs: Publication[], what: string): string {
    const json = encodeMapListWithin(pubs, this.replyBudget - 1024, step.delta);
    if (json === undefined)
      throw new HeraldError(
        ErrorCode.limitExceeded,
        `limit exceeded: the map's ${what} is larger than one reply may be (HERALD_MAX_REPLY_SIZE); ask for smaller pages`,
      );
    return json;
  }

  private mapResultBase(step: MapStep) {
    const o = step.rules.options;
    return {
      type: step.type,
      recoverable: o.map!.mode !== 'ephemeral',
      expireAt: step.expireAt,
      nowSec: Date.now() / 1000,
      delta: step.delta,
      publishDebounceMs: o.client_publish_debounce_interval_ms,
      data: step.replyData,
    };
  }

  /** Registers the map subscription in `subs` and, pending, in the hub (as subscribeInternal does for streams). */
  private async mapRegister(step: MapStep): Promise<Subscription> {
    const channel = step.rules.channel;
    if (this.subs.has(channel)) throw new HeraldError(ErrorCode.alreadySubscribed);
    const sub = new Subscription(step.rules, step.chanInfo, step.expireAt);
    this.subs.set(channel, sub);
    try {
      const o = step.rules.options;
      await this.node.hub.add(channel, this, false, step.delta ? { publish: o.delta_publish } : undefined, step.filter);
    } catch (err) {
      if (this.subs.get(channel) === sub) this.subs.delete(channel);
      throw err;
    }
    this.mapCheckOpen(channel, sub);
    return sub;
  }

  private mapUnregister(channel: string, sub: Subscription): void {
    if (this.subs.get(channel) !== sub) return;
    this.subs.delete(channel);
    this.node.hub.remove(channel, this);
  }

  private mapCheckOpen(channel: string, sub: Subscription): void {
    if (this.state !== 'connected' || this.subs.get(channel) !== sub)
      throw new HeraldError(ErrorCode.internal, 'connection closed during subscribe');
  }

  private async mapGoLive(
    id: number,
    step: MapStep,
    sub: Subscription,
    position: StreamPosition,
    entries: Publication[],
    pubs: Publication[],
    recovered: boolean | undefined,
  ): Promise<void> {
    const channel = step.rules.channel;
    let json: string;
    try {
      json = encodeMapSubscribeResult({
        ...this.mapResultBase(step),
        phase: MAP_PHASE_LIVE,
        position,
        state: this.mapList(step, entries, 'state'),
        publications: this.mapList(step, this.mapFiltered(step, pubs), 'publications'),
        recovered,
      });
      await this.mapPresenceAdd(sub);
      this.mapCheckOpen(channel, sub);
    } catch (err) {
      this.mapUnregister(channel, sub);
      throw err;
    }
    if (this.mapSteps.get(channel) === step) this.rare?.mapSteps?.delete(channel);
    this.reply(id, 'subscribe', json);
    // A delta subscriber now holds each key's value of the reply: the bases of the keys' next patches.
    this.activate(channel, position, undefined, step.delta ? [...entries, ...pubs] : undefined);
  }

  /** Lists this client in the map_clients channel of a subscription's namespace (map_clients_presence_channel_prefix). */
  private async mapPresenceAdd(sub: Subscription): Promise<void> {
    const prefix = sub.rules.options.map_clients_presence_channel_prefix;
    if (!prefix) return;
    const channel = prefix + sub.rules.channel;
    const options = resolveChannel(this.node.config, channel).options.map;
    if (!options) return;
    sub.mapPresence = { channel, options, refreshAt: 0 };
    await this.mapPresencePublish(sub.mapPresence, sub.chanInfo);
  }

  private async mapPresencePublish(
    presence: NonNullable<Subscription['mapPresence']>,
    chanInfo: string | undefined,
  ): Promise<void> {
    const wo = mapWriteOptions(presence.options);
    wo.ifNew = true;
    presence.refreshAt = wo.keyTtlMs > 0 ? Date.now() + wo.keyTtlMs / 3 : 0;
    await this.node.engine.map!.publish(presence.channel, this.id, { data: '', info: this.clientInfo(chanInfo) }, wo);
  }

  private activate(
    channel: string,
    position: StreamPosition | undefined,
    deltaBase?: Publication,
    keyedBases?: readonly Publication[],
  ): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    sub.active = true;
    this.node.hub.activate(channel, this, position, deltaBase, keyedBases);
    this.safeHook(() => this.node.hooks.onSubscribed?.({ ...this.context, channel }));
    if (sub.invalidated)
      this.unsubscribeByServer(channel, UnsubscribeCode.insufficientState, 'insufficient state', 'insufficient_state');
  }

  /** Removes a subscription everywhere (hub, presence, leave event, hook); sends nothing to the client. */
  private dropSubscription(channel: string, reason: string, code: number): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    this.subs.delete(channel);
    if (sub.sharedPoll) this.node.sharedPolls?.get(channel)?.leave(this);
    else this.node.hub.remove(channel, this);
    if (!sub.active) return;
    const engine = this.node.engine;
    const warn = (err: unknown) => this.node.logWarn({ err, channel }, 'leave cleanup failed');
    if (sub.presence) engine.presence.removePresence(channel, this.id, this.user).catch(warn);
    const mp = sub.mapPresence;
    if (mp) engine.map?.remove(mp.channel, this.id, mapWriteOptions(mp.options)).catch(warn);
    const m = sub.rules.options.map;
    // map.remove_client_on_unsubscribe: the entry this client owns (map.client_key) goes with its subscription.
    if (m?.remove_client_on_unsubscribe && (m.client_key === 'client_id' || this.user !== ''))
      engine.map?.remove(channel, m.client_key === 'client_id' ? this.id : this.user, mapWriteOptions(m)).catch(warn);
    if (sub.rules.options.join_leave) engine.broker.publishLeave(channel, this.clientInfo(sub.chanInfo)).catch(warn);
    this.safeHook(() => this.node.hooks.onUnsubscribe?.({ ...this.context, channel, reason, code }));
  }

  private onUnsubscribe(id: number, p: UnsubscribeParams): void {
    this.rare?.mapSteps?.delete(p.channel);
    this.dropSubscription(p.channel, 'client', UnsubscribeCode.client);
    this.reply(id, 'unsubscribe', EMPTY_RESULT);
  }

  private async onSubRefresh(id: number, p: SubRefreshParams): Promise<void> {
    if (p.type !== 0) return this.onTrack(id, p);
    const { channel, token } = p;
    const sub = this.subscribed(channel);
    let c: { expireAt?: number; info?: string };
    try {
      c = await this.node.verifySubscriptionToken(token, { client: this.id, user: this.user, channel });
    } catch (err) {
      const f = this.node.tokenFailure(err);
      if (f.reply?.code === ErrorCode.tokenExpired) throw f.reply;
      this.unsubscribeByServer(channel, UnsubscribeCode.server, 'subscription token refused');
      throw new HeraldError(ErrorCode.permissionDenied, 'permission denied: subscription token refused');
    }
    sub.expireAt = c.expireAt && c.expireAt > 0 ? c.expireAt : 0;
    this.reply(id, 'sub_refresh', encodeSubRefreshResult(sub.expireAt, Date.now() / 1000));
  }

  // ---- shared poll ------------------------------------------------------------------------------------------

  /**
   * A shared poll subscribe (type 4): permission as for any subscribe (token, subscribe proxy or allow_* options,
   * onSubscribe hook), then the channel's state on this node is joined. The reply carries the channel's epoch; data
   * flows only once keys are tracked (docs/shared-poll.md).
   */
  private async onSharedPollSubscribe(id: number, p: SubscribeParams, rulesIn: ChannelRules): Promise<void> {
    const o = rulesIn.options.shared_poll;
    const polls = this.node.sharedPolls;
    if (!o || !polls)
      throw new HeraldError(
        ErrorCode.notAvailable,
        `not available: channel "${rulesIn.channel}" has no shared_poll options (docs/shared-poll.md)`,
      );
    const auth = await this.authorizeSubscribe(p, rulesIn);
    if (!auth) return;
    const channel = rulesIn.channel;
    if (this.subs.has(channel)) throw new HeraldError(ErrorCode.alreadySubscribed);
    const ch = polls.open(channel, o);
    const sub = new Subscription(auth.rules, auth.chanInfo, auth.expireAt, { active: true, sharedPoll: true });
    this.subs.set(channel, sub);
    ch.join(this);
    const parts = ['"type":4'];
    if (ch.epoch) parts.push(`"epoch":${JSON.stringify(ch.epoch)}`);
    if (auth.expireAt > 0) parts.push(`"expires":true,"ttl":${ttlSeconds(auth.expireAt, Date.now() / 1000)}`);
    if (auth.replyData !== undefined) parts.push(`"data":${auth.replyData}`);
    this.reply(id, 'subscribe', '{' + parts.join(',') + '}');
    this.safeHook(() => this.node.hooks.onSubscribed?.({ ...this.context, channel }));
  }

  /**
   * sub_refresh type 1 (track) and 2 (untrack) of a shared poll subscription. Every batch's signature is checked
   * before anything changes: an expired one is 109 (the SDK gets a new one and tracks again), any other failure 103.
   * The reply carries the data this node already holds for the keys; what does not fit in the reply follows as pushes.
   */
  private onTrack(id: number, p: Extract<SubRefreshParams, { type: 1 | 2 }>): void {
    const { channel } = p;
    const sub = this.subscribed(channel);
    const ch = sub.sharedPoll ? this.node.sharedPolls?.get(channel) : undefined;
    if (!ch)
      throw new HeraldError(
        ErrorCode.badRequest,
        `bad request: track and untrack are for shared poll subscriptions; "${channel}" is not one`,
      );
    if (p.type === 2) {
      ch.untrack(this, p.untrack);
      this.reply(id, 'sub_refresh', EMPTY_RESULT);
      return;
    }
    const nowSec = Math.floor(Date.now() / 1000);
    let minExp = 0;
    const batches = p.track.map((b) => {
      const keys = b.items.map((it) => it.key);
      const r = this.node.sharedPolls!.checkSignature(b.signature, { user: this.user, channel, keys, nowSec });
      if (!r.ok) {
        if (r.why === 'expired')
          throw new HeraldError(
            ErrorCode.tokenExpired,
            'token expired: the track signature expired; get a new one from your backend (the SDK calls getSignature)',
          );
        throw new HeraldError(
          ErrorCode.permissionDenied,
          `permission denied: the track signature is ${r.why === 'malformed' ? 'not iat:exp:hmac' : r.why === 'not_yet_valid' ? 'issued in the future' : 'not valid for these keys, this user and this channel'} (docs/shared-poll.md#signatures)`,
        );
      }
      if (r.exp > 0) minExp = minExp === 0 ? r.exp : Math.min(minExp, r.exp);
      return { items: b.items, expiresAtMs: r.exp * 1000 };
    });
    const cached = ch.track(this, batches, p.untrack);
    let left = this.replyBudget - 256;
    const inReply: string[] = [];
    const after: string[] = [];
    const channelJson = JSON.stringify(channel);
    for (const c of cached) {
      const json = encodeKeyedPublication(c.key, c.data, c.version, false);
      left -= Buffer.byteLength(json, 'utf8') + 1;
      if (left >= 0) inReply.push(json);
      else after.push(encodeKeyedPubPush(channelJson, c.key, c.data, c.version, false));
    }
    this.reply(id, 'sub_refresh', encodeSubRefreshResult(minExp, nowSec, inReply));
    for (const push of after) this.transport.send(push);
  }

  // ---- publish, history, presence, rpc, send ---------------------------------------------------------------

  private async onPublish(id: number, p: PublishParams): Promise<void> {
    const rules = resolveChannel(this.node.config, p.channel);
    if (p.type === 1) return this.onMapPublish(id, p, rules);
    if (rules.options.subscription_type !== 'stream')
      throw new HeraldError(
        ErrorCode.notAvailable,
        rules.options.subscription_type === 'shared_poll'
          ? `not available: "${rules.channel}" is a shared poll channel; its data comes from your backend's refresh proxy`
          : `not available: "${rules.channel}" is a ${rules.options.subscription_type} channel; publish with type 1 and a key`,
      );
    if (p.data === undefined) throw publishWithoutData();
    const sub = this.subs.get(rules.channel);
    // publish_proxy_enabled: the app decides instead of the allow_publish_* options.
    const proxies = this.node.proxies;
    const proxied = proxies?.publishEnabled(rules.options) === true;
    if (!proxied) checkPublish(rules, { user: this.user, insecure: this.node.config.insecure }, sub?.active === true);
    let data: unknown = p.data;
    const hook = this.node.hooks.onPublish;
    if (hook) {
      const r = await hook({ ...this.context, channel: rules.channel, data });
      if (r && Object.hasOwn(r, 'data')) data = r.data;
    }
    const options = publishOptions(rules.options);
    let tags: Record<string, string> | undefined;
    // After the hook: the app sees the hook's data and may refuse it or replace it before it is stored.
    if (proxied && proxies) {
      const g = await proxies.publish(this.proxyConnection, rules.options, { channel: rules.channel, data });
      if (this.state !== 'connected') return;
      if (g.replaced) data = g.replaced.data;
      tags = g.tags;
      if (g.idempotencyKey) options.idempotencyKey = g.idempotencyKey;
    }
    await this.node.engine.broker.publish(
      rules.channel,
      { data: jsonText(data), info: this.clientInfo(sub?.chanInfo), ...(tags ? { tags } : {}) },
      options,
    );
    this.node.metrics.published();
    this.reply(id, 'publish', EMPTY_RESULT);
  }

  /** A map publish or remove (`publish` with `type: 1`): map.allow_publish_* / allow_remove_*, then map.client_key. */
  private async onMapPublish(id: number, p: PublishParams, rules: ChannelRules): Promise<void> {
    const sub = this.subs.get(rules.channel);
    checkMapWrite(rules, { user: this.user, insecure: this.node.config.insecure }, sub?.active === true, p.removed);
    const m = rules.options.map!;
    const map = this.node.engine.map;
    if (!map)
      throw new HeraldError(ErrorCode.notAvailable, `not available: the ${this.node.engine.name} engine has no maps`);
    let key = p.key;
    if (m.client_key === 'client_id') key = this.id;
    else if (m.client_key === 'user_id') {
      if (this.user === '')
        throw new HeraldError(ErrorCode.permissionDenied, 'permission denied: map.client_key "user_id" needs a user');
      key = this.user;
    }
    if (key === '') throw new HeraldError(ErrorCode.badRequest, 'bad request: a map publish needs a key');
    const wo = mapWriteOptions(m);
    if (p.removed) {
      await map.remove(rules.channel, key, wo);
    } else {
      if (p.data === undefined) throw publishWithoutData();
      let data: unknown = p.data;
      const hook = this.node.hooks.onPublish;
      if (hook) {
        const r = await hook({ ...this.context, channel: rules.channel, data });
        if (r && Object.hasOwn(r, 'data')) data = r.data;
      }
      if (this.state !== 'connected') return;
      await map.publish(rules.channel, key, { data: jsonText(data), info: this.clientInfo(sub?.chanInfo) }, wo);
      this.node.metrics.published();
    }
    this.reply(id, 'publish', EMPTY_RESULT);
  }

  private async onHistory(id: number, p: HistoryParams): Promise<void> {
    const rules = resolveChannel(this.node.config, p.channel);
    checkHistory(
      rules,
      { user: this.user, insecure: this.node.config.insecure },
      this.subs.get(rules.channel)?.active === true,
    );
    const since = p.since;
    const r = await this.node.engine.history.history(rules.channel, {
      since,
      limit: p.limit,
      reverse: p.reverse,
      ...streamOptions(rules.options),
    });
    if (since && since.epoch !== '' && since.epoch !== r.position.epoch)
      throw new HeraldError(ErrorCode.unrecoverablePosition);
    const budget = this.replyBudget;
    const pubs = encodePublicationListWithin(r.publications, budget - 1024);
    if (pubs === undefined) {
      throw new HeraldError(
        ErrorCode.limitExceeded,
        `limit exceeded: these ${r.publications.length} publications are more than the ${budget} bytes one reply may take (HERALD_MAX_REPLY_SIZE): ask for fewer with limit and page with since`,
      );
    }
    this.reply(id, 'history', encodeHistoryResult(pubs, r.position));
  }

  private async onPresence(id: number, p: ChannelParams): Promise<void> {
    const rules = resolveChannel(this.node.config, p.channel);
    checkPresence(
      rules,
      { user: this.user, insecure: this.node.config.insecure },
      this.subs.get(rules.channel)?.active === true,
    );
    const entries = await this.node.engine.presence.presence(rules.channel);
    const budget = this.replyBudget;
    const presence = encodePresenceResultWithin(entries, budget, 1024);
    if (presence === undefined) {
      throw new HeraldError(
        ErrorCode.limitExceeded,
        `limit exceeded: the presence of "${rules.channel}" (${entries.size} clients) is more than the ${budget} bytes one reply may take (HERALD_MAX_REPLY_SIZE): use presence_stats for counts`,
      );
    }
    this.reply(id, 'presence', presence.json);
  }

  private async onPresenceStats(id: number, p: ChannelParams): Promise<void> {
    const rules = resolveChannel(this.node.config, p.channel);
    checkPresence(
      rules,
      { user: this.user, insecure: this.node.config.insecure },
      this.subs.get(rules.channel)?.active === true,
    );
    const s = await this.node.engine.presence.presenceStats(rules.channel);
    this.reply(id, 'presence_stats', encodePresenceStatsResult(s));
  }

  private async onRpc(id: number, p: RpcParams): Promise<void> {
    const hook = this.node.hooks.onRpc;
    const method = p.method;
    const proxies = this.node.proxies;
    const route = proxies?.rpcRoute(method);
    // The hook runs first; when it returns undefined and the method's rpc namespace has proxy_enabled, the app's rpc
    // proxy answers instead.
    if (hook) {
      const data = await hook({ ...this.context, method, data: p.data });
      if (data !== undefined || route !== 'proxy') {
        this.reply(id, 'rpc', encodeRpcResult(jsonText(data ?? null)));
        return;
      }
    }
    if (route === 'proxy' && proxies) {
      this.reply(id, 'rpc', encodeRpcResult(await proxies.rpc(this.proxyConnection, { method, data: p.data })));
      return;
    }
    if (route === 'unknown')
      throw new HeraldError(
        ErrorCode.methodNotFound,
        `method not found: the rpc namespace of "${method}" is not in rpc.namespaces`,
      );
    throw new HeraldError(
      ErrorCode.notAvailable,
      route === 'disabled'
        ? `not available: rpc proxy is not enabled for "${method}" (proxy_enabled in rpc.without_namespace / rpc.namespaces)`
        : 'not available: no rpc handler is configured (onRpc hook or rpc.proxy)',
    );
  }

  private onSend(p: SendParams): void {
    const hook = this.node.hooks.onMessage;
    if (!hook) return;
    this.safeHook(() => hook({ ...this.context, data: p.data }));
  }

  /** Re-adds presence entries so they outlive the shared engine's TTL while this client stays. */
  refreshPresence(): Promise<unknown>[] {
    const out: Promise<unknown>[] = [];
    for (const [channel, sub] of this.subs) {
      if (sub.presence && sub.active)
        out.push(
          this.node.engine.presence.addPresence(channel, this.clientInfo(sub.chanInfo), this.node.config.presenceTtlMs),
        );
    }
    return out;
  }

  get name(): string {
    return this.clientName;
  }

  // ---- proxies ---------------------------------------------------------------------------------------------

  private get proxyConnection(): ProxyConnection {
    return {
      client: this.id,
      user: this.user,
      request: this.request,
      emulatedHeaders: this.emulatedHeaders,
      meta: this.meta,
    };
  }

  /** The connection's expiry came and the refresh proxy is on: the app says until when it may stay. */
  private refreshByProxy(proxies: Proxies): void {
    this.refreshing = true;
    const done = (r: RefreshOutcome) => {
      this.refreshing = false;
      if (this.state !== 'connected') return;
      if (r.expired || r.expireAt <= Date.now() / 1000) {
        this.disconnect(Disconnect.expired);
        return;
      }
      this.expireAt = r.expireAt;
      if (r.info !== undefined) this.connInfo = r.info;
      if (r.meta !== undefined) this.meta = r.meta;
    };
    proxies.refresh(this.proxyConnection).then(done, (err: unknown) => {
      this.node.logWarn({ err, client: this.id }, 'refresh proxy failed');
      done({ expired: true });
    });
  }

  /** A subscription's expiry came and its namespace has sub_refresh_proxy_enabled. */
  private subRefreshByProxy(proxies: Proxies, channel: string, sub: Subscription): void {
    sub.refreshing = true;
    const done = (r: RefreshOutcome) => {
      sub.refreshing = false;
      if (this.state !== 'connected' || this.subs.get(channel) !== sub) return;
      if (r.expired || r.expireAt <= Date.now() / 1000) {
        this.unsubscribeByServer(channel, UnsubscribeCode.expired, 'subscription expired', 'expired');
        return;
      }
      sub.expireAt = r.expireAt;
      if (r.info !== undefined) sub.chanInfo = r.info;
    };
    proxies.subRefresh(this.proxyConnection, sub.rules.options, channel).then(done, (err: unknown) => {
      this.node.logWarn({ err, client: this.id, channel }, 'sub_refresh proxy failed');
      done({ expired: true });
    });
  }
}
