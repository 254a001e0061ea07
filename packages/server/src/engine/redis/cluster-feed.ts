import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { Feed } from './feed.js';
import { keySlot } from './slots.js';

/** Waits between attempts to find the cluster's new topology after a feed connection was lost. */
const RECOVER_DELAYS_MS = [50, 100, 200, 400, 800, 1000];

/**
 * Sharded pub/sub on a Redis Cluster (SSUBSCRIBE, Redis 7+): a shard channel's messages stay within the shard that
 * owns its slot, so each node keeps one subscriber connection per primary that owns a slot it subscribes, and
 * subscribes each name there (one SSUBSCRIBE per slot: Redis refuses several slots in one).
 *
 * A subscription ends without a word when its primary dies, and with an unsolicited SUNSUBSCRIBE when its slot moves
 * (a failover, a resharding). Either, and a slot map (refreshed every second) that puts a subscribed slot on another
 * primary, counts as lost: every subscriber connection is dropped, the slot map is read again until the cluster
 * answers, and `onReady` has the broker subscribe everything on the primaries that own the slots now, then recover
 * its clients from history (what was published meanwhile).
 */
export class ClusterFeed implements Feed {
  /** Subscriber connection per primary ("host:port"). */
  private readonly conns = new Map<string, Redis>();
  /** Subscribed name -> the primary it was subscribed on, and its slot. */
  private readonly where = new Map<string, { node: string; slot: number }>();
  /** Subscribed slot -> its primary and how many subscribed names it holds (the topology check walks these). */
  private readonly slotsInUse = new Map<number, { node: string; names: number }>();
  private messageHandler: (name: string, message: string) => void = () => {};
  private readonly readyHandlers: (() => void)[] = [];
  private readonly lostHandlers: (() => void)[] = [];
  private broken = false;
  private recovering = false;
  private closed = false;
  private everReady = false;

  constructor(
    private readonly cluster: Cluster,
    /** Options of the subscriber connections (credentials, TLS, timeouts). */
    private readonly connectionOptions: RedisOptions,
    private readonly onProblem: (message: string) => void,
  ) {
    cluster.on('ready', () => {
      if (this.everReady && !this.broken) this.lost('the cluster connection was re-established');
      else if (!this.everReady && !this.recovering) {
        this.everReady = true;
        for (const h of this.readyHandlers) h();
      }
    });
    cluster.on('refresh', () => this.checkTopology());
  }

  ready(): boolean {
    return this.everReady && !this.broken && this.cluster.status === 'ready';
  }

  async subscribe(names: string[]): Promise<void> {
    const bySlot = new Map<number, string[]>();
    for (const name of names) {
      const slot = keySlot(name);
      const list = bySlot.get(slot);
      if (list) list.push(name);
      else bySlot.set(slot, [name]);
    }
    const sent: Promise<unknown>[] = [];
    for (const [slot, group] of bySlot) {
      const node = this.cluster.slots[slot]?.[0];
      if (node === undefined) throw new Error(`no primary owns slot ${slot} (cluster not fully covered)`);
      const conn = this.connTo(node);
      sent.push(
        conn.ssubscribe(...group).then(
          () => {
            for (const name of group) {
              if (this.where.has(name)) continue;
              this.where.set(name, { node, slot });
              const used = this.slotsInUse.get(slot);
              if (used) used.names++;
              else this.slotsInUse.set(slot, { node, names: 1 });
            }
          },
          (err: unknown) => {
            // A MOVED answer: the slot map is out of date.
            this.lost(`SSUBSCRIBE on ${node} failed (${err instanceof Error ? err.message : String(err)})`);
            throw err;
          },
        ),
      );
    }
    await Promise.all(sent);
  }

  async unsubscribe(name: string): Promise<void> {
    const at = this.where.get(name);
    if (at === undefined) return;
    this.where.delete(name);
    const used = this.slotsInUse.get(at.slot);
    if (used && --used.names <= 0) this.slotsInUse.delete(at.slot);
    const conn = this.conns.get(at.node);
    if (conn?.status === 'ready') await conn.sunsubscribe(name);
  }

  onMessage(handler: (name: string, message: string) => void): void {
    this.messageHandler = handler;
  }

  onReady(handler: () => void): void {
    this.readyHandlers.push(handler);
  }

  onLost(handler: () => void): void {
    this.lostHandlers.push(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dropConnections();
  }

  /** Whether the subscriber connections are ready (for /ready): none needed counts as ready. */
  connectionsReady(): boolean {
    for (const c of this.conns.values()) if (c.status !== 'ready' && c.status !== 'connecting') return false;
    return true;
  }

  private connTo(node: string): Redis {
    const existing = this.conns.get(node);
    if (existing) return existing;
    const colon = node.lastIndexOf(':');
    const conn = new Redis({
      ...this.connectionOptions,
      host: node.slice(0, colon).replace(/^\[|\]$/g, ''),
      port: Number(node.slice(colon + 1)),
      lazyConnect: false,
      // Subscribes sent while it connects wait for it (the broker bounds them with HERALD_REDIS_TIMEOUT).
      enableOfflineQueue: true,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      // A dropped connection is not reconnected: the whole feed is rebuilt on the current slot map.
      retryStrategy: () => null,
      connectionName: 'herald-feed',
    });
    conn.on('smessage', (name: string, message: string) => this.messageHandler(name, message));
    conn.on('error', () => {});
    conn.on('close', () => {
      if (this.conns.get(node) === conn) this.lost(`the feed connection to ${node} closed`);
    });
    // An unsolicited SUNSUBSCRIBE: the slot moved to another primary.
    conn.on('moved', () => {
      if (this.conns.get(node) === conn) this.lost(`a subscribed slot moved away from ${node}`);
    });
    this.conns.set(node, conn);
    return conn;
  }

  /** After a slot map refresh: a subscribed name whose slot another primary owns now means the feed moved. */
  private checkTopology(): void {
    if (this.broken || this.closed) return;
    for (const [slot, { node }] of this.slotsInUse) {
      if (this.cluster.slots[slot]?.[0] !== node) {
        this.lost(`slot ${slot} moved from ${node}`);
        return;
      }
    }
  }

  private dropConnections(): void {
    const conns = [...this.conns.values()];
    this.conns.clear();
    this.where.clear();
    this.slotsInUse.clear();
    for (const c of conns) c.disconnect(false);
  }

  private lost(why: string): void {
    if (this.closed) return;
    if (!this.broken) {
      this.broken = true;
      this.onProblem(why);
      this.dropConnections();
      for (const h of this.lostHandlers) h();
    }
    this.recover();
  }

  /** Reads the slot map again until the cluster answers with one, then has the broker subscribe everything again. */
  private recover(): void {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    this.rebuild().catch((err: unknown) => {
      this.recovering = false;
      this.onProblem(`feed rebuild failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  private async rebuild(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      await new Promise((r) => setTimeout(r, RECOVER_DELAYS_MS[Math.min(attempt, RECOVER_DELAYS_MS.length - 1)]));
      if (this.closed) break;
      const refreshed = await new Promise<boolean>((resolve) => this.cluster.refreshSlotsCache((err) => resolve(!err)));
      if (refreshed && this.cluster.status === 'ready' && (await this.primariesAnswer())) break;
    }
    this.recovering = false;
    if (this.closed) return;
    this.broken = false;
    this.everReady = true;
    for (const h of this.readyHandlers) h();
  }

  /**
   * Whether every primary the slot map names answers a PING on a subscriber connection. A primary that died keeps
   * its slots in the map until the cluster promotes its replica (cluster-node-timeout and an election later): until
   * then the feed waits rather than subscribe there and fail again.
   */
  private async primariesAnswer(): Promise<boolean> {
    const owners = new Set<string>();
    for (const nodes of this.cluster.slots) if (nodes?.[0] !== undefined) owners.add(nodes[0]);
    const answers = await Promise.all(
      [...owners].map(async (node) => {
        const conn = this.connTo(node);
        try {
          await Promise.race([
            conn.ping(),
            new Promise((_, reject) => setTimeout(() => reject(new Error('no PONG')), 1000).unref()),
          ]);
          return true;
        } catch {
          if (this.conns.get(node) === conn) this.conns.delete(node);
          conn.disconnect(false);
          return false;
        }
      }),
    );
    return answers.every(Boolean);
  }
}
