import { Cluster, Redis, ReplyError, type ClusterNode, type RedisOptions } from 'ioredis';
import { ErrorCode, HeraldError } from '../../protocol/codes.js';
import { ClusterFeed } from './cluster-feed.js';
import { StandaloneFeed, type Feed } from './feed.js';
import { CLUSTER, redisScripts, STANDALONE } from './scripts.js';
import { parseRedisTarget } from './url.js';

/** How often the commands connection is probed with a PING (one at a time). */
const HEALTH_INTERVAL_MS = 250;
/** A PING unanswered this long (or HERALD_REDIS_TIMEOUT if shorter) marks the node not ready. */
const HEALTH_DEADLINE_MS = 1000;

export interface RedisConnectionOptions {
  /** redis://[user:pass@]host:port[/db], rediss://, or redis+sentinel://host:port[,…]/<master name> (url.ts) */
  url?: string;
  /**
   * A Redis Cluster instead of `url`: some of its nodes, `host:port` or `redis[s]://[user:password@]host:port`
   * (credentials and TLS of the first URL apply to every node).
   */
  clusterNodes?: string[];
  /** A command that gets no answer within this fails with code 100 (temporary). @default 2000 */
  commandTimeoutMs?: number;
  /** Reconnect delays grow to at most this. @default 2000 */
  maxReconnectDelayMs?: number;
  /** Called for connection events worth a log line. */
  onEvent?: (event: RedisConnectionEvent) => void;
  /**
   * A key this node claims on this Redis with its place in the shard list (`<i>/<n>`). A Redis that another node
   * claimed with a different place means the nodes' REDIS_URL lists disagree: the engine is then not ready.
   */
  identity?: { key: string; value: string; describe: (found: string) => string };
}

export type RedisConnectionEvent =
  | { type: 'connected'; role: 'commands' | 'feed'; reconnect: boolean }
  | { type: 'disconnected'; role: 'commands' | 'feed'; error?: string }
  | { type: 'unreachable'; role: 'commands' | 'feed'; error: string }
  | { type: 'unhealthy'; error: string }
  | { type: 'healthy' }
  | { type: 'topology'; ok: boolean; message: string }
  | { type: 'feed-moved'; message: string };

/** The nodes of HERALD_REDIS_CLUSTER_NODES as ioredis takes them, with the options the first URL carries. */
export function clusterStartup(nodes: string[]): { nodes: ClusterNode[]; options: RedisOptions } {
  const options: RedisOptions = {};
  let credentialsSeen = false;
  const list = nodes.map((n): ClusterNode => {
    if (!n.includes('://')) {
      const colon = n.lastIndexOf(':');
      return { host: n.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(n.slice(colon + 1)) };
    }
    const u = new URL(n);
    if (!credentialsSeen) {
      credentialsSeen = true;
      if (u.username) options.username = decodeURIComponent(u.username);
      if (u.password) options.password = decodeURIComponent(u.password);
      if (u.protocol === 'rediss:') options.tls = {};
    }
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
  });
  return { nodes: list, options };
}

/** The commands our scripts add to the client (scripts.ts). */
export interface HeraldCommands {
  heraldPublish(
    stream: string,
    meta: string,
    idem: string,
    registry: string,
    envelope: string,
    size: number,
    ttlMs: number,
    metaTtlMs: number,
    feed: string,
    epoch: string,
    idemTtlMs: number,
  ): Promise<[number | string, string]>;
  heraldPublishUnstored(
    idem: string,
    feed: string,
    message: string,
    idemTtlMs: number,
  ): Promise<[number | string, string]>;
  heraldHistory(
    stream: string,
    meta: string,
    registry: string,
    epoch: string,
    metaTtlMs: number,
    since: number,
    limit: number,
    reverse: string,
    ttlMs: number,
    size: number,
  ): Promise<(string | number)[]>;
  heraldRotateEpoch(meta: string, epoch: string, next: string): Promise<string>;
  heraldPresenceAdd(hash: string, zset: string, client: string, info: string, ttlMs: number): Promise<number>;
  heraldPresenceRemove(hash: string, zset: string, client: string): Promise<number>;
  heraldPresenceGet(hash: string, zset: string, all: string): Promise<string[]>;
  heraldLifecycleHold(
    holds: string,
    counts: string,
    index: string,
    member: string,
    key: string,
    ttlMs: number,
    channel: string,
  ): Promise<number>;
  heraldLifecycleRelease(
    holds: string,
    counts: string,
    index: string,
    member: string,
    key: string,
    channel: string,
  ): Promise<number>;
  heraldLifecycleSweep(index: string, limit: number, prefix: string): Promise<string[]>;
  heraldMapWrite(
    stream: string,
    meta: string,
    idem: string,
    registry: string,
    state: string,
    keys: string,
    expiry: string,
    index: string,
    op: 'p' | 'r' | 'x',
    envelope: string,
    size: number,
    streamTtlMs: number,
    metaTtlMs: number,
    feed: string,
    epoch: string,
    idemTtlMs: number,
    key: string,
    keyTtlMs: number,
    ifNew: '0' | '1',
    channel: string,
  ): Promise<[number | string, string, string]>;
  heraldMapReadState(
    stream: string,
    meta: string,
    registry: string,
    state: string,
    keys: string,
    expiry: string,
    epoch: string,
    cursor: string,
    limit: number,
  ): Promise<(string | number)[]>;
}

/** One Redis (or the primary behind Sentinel) or a Redis Cluster, with the engine's scripts. */
export type ScriptedRedis = (Redis | Cluster) & HeraldCommands;

/**
 * The two connections a node keeps to Redis: `commands` (scripts, publishes; pipelined by the client) and `feed`
 * (pub/sub subscriptions). Both connect at construction and reconnect with backoff for as long as they live. Neither queues commands while disconnected: a publish during an outage fails at once
 * with a temporary error instead of waiting and maybe succeeding after the caller gave up.
 *
 * On a Redis Cluster `commands` is ioredis's cluster client (each command goes to the primary of its key's slot) and
 * the feed is sharded pub/sub, one subscriber connection per primary (cluster-feed.ts).
 */
export class RedisConnections {
  readonly commands: ScriptedRedis;
  readonly feed: Feed;
  /** The standalone feed's connection (undefined on a cluster, where the feed holds one per primary). */
  private readonly feedConn: Redis | undefined;
  readonly commandTimeoutMs: number;
  /** Whether this is a Redis Cluster (sharded pub/sub, per-slot keys). */
  readonly cluster: boolean;
  private healthy = true;
  /** Why this node's place in the shard list disagrees with the Redis's; undefined when it agrees. */
  private misplaced: string | undefined;
  private identityChecked = false;
  private pingTimer: NodeJS.Timeout | undefined;
  /** A health PING is in flight (the next one waits for its answer). */
  private probing = false;
  private ticks = 0;
  private closed = false;
  /** The commands socket is corked until the end of this tick (see batchWrites). */
  private corked = false;

  constructor(private readonly options: RedisConnectionOptions) {
    const timeout = options.commandTimeoutMs ?? 2000;
    this.commandTimeoutMs = timeout;
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    const retry = (times: number) => (this.closed ? null : Math.min(50 * 2 ** Math.min(times, 6), maxDelay));
    const common = {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      connectTimeout: Math.max(timeout, 1000),
      retryStrategy: retry,
      // A primary demoted by a failover answers writes with READONLY: reconnect (through Sentinel, to the new
      // primary). The failed command itself is not resent; its caller got a temporary error.
      reconnectOnError: (err: Error) => (/^READONLY/.test(err.message) ? (1 as const) : (false as const)),
    };
    if (options.clusterNodes) {
      this.cluster = true;
      const startup = clusterStartup(options.clusterNodes);
      const nodeOptions: RedisOptions = {
        ...startup.options,
        connectTimeout: Math.max(timeout, 1000),
        maxRetriesPerRequest: 0,
      };
      const cluster = new Cluster(startup.nodes, {
        redisOptions: { ...nodeOptions, commandTimeout: timeout, connectionName: 'herald-commands' },
        enableOfflineQueue: false,
        scaleReads: 'master',
        // A command whose connection dropped is not resent: the primary may have applied it before it died, and a
        // second run would publish twice. Its caller gets a temporary error (and may retry with an idempotency key).
        retryDelayOnFailover: 0,
        // Refused without being run (CLUSTERDOWN while a failover elects, TRYAGAIN, MOVED): safe to send again.
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        maxRedirections: 16,
        slotsRefreshTimeout: Math.max(500, Math.min(timeout, 2000)),
        // A failover moves slots: notice within a second even on a node that sends nothing to the moved slots.
        slotsRefreshInterval: 1000,
        clusterRetryStrategy: retry,
      });
      // The client connects to a node on its first command, and refuses commands for a node still connecting
      // (enableOfflineQueue: false): connect to every node as soon as it is known instead.
      // Not before the cluster is ready: its ready check is refused by a node that is connecting.
      const connect = (node: Redis) => {
        if (node.status === 'wait') node.connect().catch(() => {});
      };
      cluster.on('+node', (node: Redis) => {
        if (cluster.status === 'ready') connect(node);
      });
      cluster.on('ready', () => cluster.nodes('all').forEach(connect));
      this.commands = cluster as ScriptedRedis;
      this.feedConn = undefined;
      this.feed = new ClusterFeed(cluster, nodeOptions, (message) =>
        this.options.onEvent?.({ type: 'feed-moved', message }),
      );
    } else {
      this.cluster = false;
      const target = parseRedisTarget(options.url ?? 'redis://127.0.0.1:6379');
      const open = (extra: RedisOptions): Redis => {
        if (target.kind === 'direct') return new Redis(target.url, { ...common, ...extra });
        return new Redis({
          ...common,
          ...extra,
          sentinels: target.sentinels,
          name: target.name,
          db: target.db,
          username: target.username,
          password: target.password,
          sentinelUsername: target.sentinelUsername,
          sentinelPassword: target.sentinelPassword,
          // Ask the Sentinels again on every reconnect, and keep asking while none answers.
          sentinelRetryStrategy: (times: number) =>
            this.closed ? null : Math.min(100 * 2 ** Math.min(times, 5), maxDelay),
          // A primary that Sentinel replaced is dropped as soon as Sentinel announces the switch.
          failoverDetector: true,
        });
      };
      this.commands = open({ commandTimeout: timeout, connectionName: 'herald-commands' }) as ScriptedRedis;
      this.feedConn = open({ connectionName: 'herald-feed' });
      this.feed = new StandaloneFeed(this.feedConn);
    }
    for (const [name, def] of Object.entries(redisScripts(this.cluster ? CLUSTER : STANDALONE)))
      this.commands.defineCommand(name, def);
    this.watch(this.commands, 'commands');
    if (this.feedConn) this.watch(this.feedConn, 'feed');
    this.pingTimer = setInterval(() => this.checkHealth(), HEALTH_INTERVAL_MS);
    this.pingTimer.unref();
  }

  /** Both connections up and the last health ping answered in time. */
  isReady(): boolean {
    const placed = this.options.identity === undefined || (this.identityChecked && this.misplaced === undefined);
    return placed && this.healthy && this.commands.status === 'ready' && this.feed.ready() && this.primariesReady();
  }

  /** Why isReady() is false, in words for GET /ready. */
  problem(): string | undefined {
    if (this.misplaced !== undefined) return this.misplaced;
    if (this.commands.status !== 'ready' || !this.feed.ready()) return 'not connected';
    if (!this.primariesReady()) return 'not connected to every cluster primary';
    if (!this.healthy) return `not answering a PING within ${this.healthDeadlineMs()} ms`;
    if (this.options.identity !== undefined && !this.identityChecked) return 'connecting';
    return undefined;
  }

  /** On a cluster: the connection to every primary is up (one Redis: always true). */
  private primariesReady(): boolean {
    if (!(this.commands instanceof Cluster)) return true;
    const primaries = this.commands.nodes('master');
    return primaries.length > 0 && primaries.every((n) => n.status === 'ready');
  }

  /**
   * Commands sent from now to the end of this tick leave in one socket write instead of one write each: a burst of
   * publishes (a connection's publishes to many channels, the HTTP API's broadcast) costs one syscall. Only on one
   * Redis (a Cluster client has a socket per node). Nothing waits: the socket is uncorked before the tick's promise
   * callbacks run.
   */
  batchWrites(): void {
    if (this.corked || this.cluster) return;
    const stream = (this.commands as Redis).stream;
    if (stream === undefined || stream.destroyed || !stream.writable) return;
    stream.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      stream.uncork();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    await this.feed.close();
    await Promise.allSettled([quitOrDrop(this.commands), ...(this.feedConn ? [quitOrDrop(this.feedConn)] : [])]);
  }

  private watch(conn: Redis | Cluster, role: 'commands' | 'feed'): void {
    let everReady = false;
    conn.on('ready', () => {
      this.options.onEvent?.({ type: 'connected', role, reconnect: everReady });
      everReady = true;
      // A restarted Redis may have lost the claim, or another node may have made its own meanwhile.
      if (role === 'commands') this.identityCheck();
    });
    conn.on('close', () => {
      if (!this.closed && everReady) this.options.onEvent?.({ type: 'disconnected', role });
    });
    // ioredis emits 'error' for every failed attempt; one report before the first connection is enough.
    let reported = false;
    conn.on('error', (err: unknown) => {
      if (everReady || reported || this.closed) return;
      reported = true;
      this.options.onEvent?.({ type: 'unreachable', role, error: errorText(err) });
    });
  }

  /**
   * A Redis that stops answering (frozen, partitioned) keeps its TCP connection open: a PING every 250 ms (one at a
   * time) notices. One unanswered for HEALTH_DEADLINE_MS (1 s, or HERALD_REDIS_TIMEOUT if shorter) marks the node
   * not ready at once, without waiting for the command timeout: /ready turns 503 1 to 1.25 s into a freeze.
   */
  private checkHealth(): void {
    if (this.commands.status !== 'ready') return;
    // While misplaced, look again every second: the operator may fix the other nodes or clear the claim.
    if (this.misplaced !== undefined && this.ticks++ % Math.round(1000 / HEALTH_INTERVAL_MS) === 0)
      this.identityCheck();
    if (this.probing) return;
    this.probing = true;
    const deadlineMs = this.healthDeadlineMs();
    const deadline = setTimeout(() => this.setHealthy(false, `no answer to PING within ${deadlineMs} ms`), deadlineMs);
    deadline.unref();
    this.commands.ping().then(
      () => {
        clearTimeout(deadline);
        this.probing = false;
        this.setHealthy(true);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        this.probing = false;
        this.setHealthy(false, errorText(err));
      },
    );
  }

  private healthDeadlineMs(): number {
    return Math.min(HEALTH_DEADLINE_MS, this.commandTimeoutMs);
  }

  private setHealthy(healthy: boolean, error = ''): void {
    if (healthy && !this.healthy) this.options.onEvent?.({ type: 'healthy' });
    if (!healthy && this.healthy) this.options.onEvent?.({ type: 'unhealthy', error });
    this.healthy = healthy;
  }

  /** Runs checkIdentity in the background; it handles its own failures, so a rejection here is a bug to report. */
  private identityCheck(): void {
    this.checkIdentity().catch((err: unknown) =>
      this.options.onEvent?.({
        type: 'topology',
        ok: false,
        message: `shard identity check failed: ${errorText(err)}`,
      }),
    );
  }

  private async checkIdentity(): Promise<void> {
    const identity = this.options.identity;
    if (!identity) return;
    const before = this.misplaced;
    try {
      await this.commands.set(identity.key, identity.value, 'NX');
      const found = await this.commands.get(identity.key);
      this.misplaced = found === null || found === identity.value ? undefined : identity.describe(found);
    } catch (err) {
      // A dropped connection checks again on its next 'ready'; a refusal (an ACL without SET) is reported.
      if (this.commands.status !== 'ready') return;
      this.misplaced = `could not claim ${identity.key} on this Redis (${errorText(err)}); the user in REDIS_URL needs GET and SET on it`;
    }
    this.identityChecked = true;
    if (this.misplaced !== undefined && this.misplaced !== before)
      this.options.onEvent?.({ type: 'topology', ok: false, message: this.misplaced });
    else if (this.misplaced === undefined && before !== undefined)
      this.options.onEvent?.({ type: 'topology', ok: true, message: identity.value });
  }
}

async function quitOrDrop(conn: Redis | Cluster): Promise<void> {
  if (conn.status === 'ready') {
    try {
      await Promise.race([conn.quit(), new Promise((_, reject) => setTimeout(reject, 500).unref())]);
      return;
    } catch {
      // fall through
    }
  }
  conn.disconnect(false);
}

export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (text.includes('enableOfflineQueue')) return 'not connected to Redis';
  if (/command timed out/i.test(text)) return 'Redis did not answer within HERALD_REDIS_TIMEOUT';
  return text;
}

/** The message of a command that got no answer within the deadline (errorText turns it into words). */
export const TIMED_OUT = 'Command timed out';

/**
 * Resolves or rejects with `p`, or rejects with a timeout after `ms`. The command itself is not withdrawn: Redis
 * may still apply it when it answers (the caller decides what a late answer means).
 */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(TIMED_OUT)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Redis error replies that say the server cannot serve right now, not that the request is wrong: a replica or a
 * demoted primary (READONLY), a restart loading its data set (LOADING), a replica without its primary (MASTERDOWN),
 * a long script (BUSY), too few replicas (NOREPLICAS), a failing snapshot (MISCONF), memory full (OOM),
 * credentials or ACLs the operator may still fix (NOAUTH, WRONGPASS, NOPERM), cluster redirections.
 */
const TRANSIENT_REPLY =
  /(?:^|[\s-])(READONLY|LOADING|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF|OOM|NOAUTH|WRONGPASS|NOPERM|MOVED|ASK|UNBLOCKED|NOSCRIPT)\b|max number of clients/;

/**
 * Whether a failed Redis call may succeed if retried unchanged. Everything is temporary (connection lost or never
 * made, no answer within HERALD_REDIS_TIMEOUT, the transient replies above) except an error reply about the request
 * itself: a command or script given arguments Redis refuses (`ERR Invalid stream ID`, `ERR value is not an
 * integer`, `WRONGTYPE`), which fails the same way every time.
 */
export function isTemporaryRedisError(err: unknown): boolean {
  if (err instanceof HeraldError) return err.temporary;
  if (!(err instanceof ReplyError)) return true;
  return TRANSIENT_REPLY.test((err as Error).message);
}

/**
 * Classifies a failed Redis call at the engine boundary, for every caller (the session, the HTTP API, the outbox,
 * which retries what is temporary and dead-letters the rest):
 * - temporary (code 100, `temporary: true`): Redis down, unreachable, not answering in time, or answering with a
 *   transient reply (isTemporaryRedisError). Retrying later may succeed; a write that got it was not stored, or
 *   (unanswered) may still be applied, which the message says.
 * - permanent (code 107 bad request, `temporary: false`): Redis refused the request's arguments. Retrying the same
 *   request never succeeds; nothing was stored.
 * `what` says which operation failed.
 */
export function redisFailure(what: string, err: unknown): HeraldError {
  if (err instanceof HeraldError) return err;
  if (!isTemporaryRedisError(err)) {
    return new HeraldError(
      ErrorCode.badRequest,
      `redis engine: ${what} refused by Redis (${errorText(err)}): the request's arguments are invalid (e.g. a stream offset beyond 2^53); fix the request, retrying it will fail the same way`,
      false,
    );
  }
  return new HeraldError(
    ErrorCode.internal,
    `redis engine: ${what} failed (${errorText(err)}); check REDIS_URL and that Redis is up, then retry`,
    true,
  );
}
