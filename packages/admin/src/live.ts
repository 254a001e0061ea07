import { HeraldClient, type ConnectionState, type PublicationContext } from '@herald/client';
import { post } from './api';

/** What a node publishes to $admin:stats each second (packages/server/src/admin/stats.ts). */
export interface AdminStats {
  v: 1;
  node: {
    uid: string;
    name: string;
    version: string;
    num_clients: number;
    num_users: number;
    num_channels: number;
    num_subs: number;
    uptime: number;
  };
  at: number;
  interval: number;
  messages_in: number;
  messages_out: number;
  publications: Record<string, number>;
  errors: Record<string, number>;
  disconnects: Record<string, number>;
  integrations: Record<string, number>;
}

/** One second of the whole cluster, summed over the nodes heard from lately. */
export interface Point {
  at: number;
  connections: number;
  messagesIn: number;
  messagesOut: number;
  publications: Record<string, number>;
  errors: Record<string, number>;
  disconnects: Record<string, number>;
}

const KEEP_POINTS = 120;
/** A node not heard from for this long leaves the table. */
const NODE_STALE_MS = 15_000;

type Listener = () => void;

/**
 * The dashboard's own Herald connection: the `centrifuge` SDK through @herald/client, with a token from the admin
 * session. The node subscribes it server-side to $admin:stats (every node's snapshot each second) and, for a live
 * tail, to the channel being watched. Nothing is polled.
 */
export class Live {
  readonly client: HeraldClient;
  clientId = '';
  state: ConnectionState = 'disconnected';
  readonly nodes = new Map<string, AdminStats>();
  /** Channels the node has subscribed this connection to (server-side): a tail is live once its channel is here. */
  readonly serverSubs = new Set<string>();
  points: Point[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly tails = new Map<string, Set<(p: PublicationContext) => void>>();
  private readonly ticker: number;

  constructor(wsPath: string) {
    this.client = new HeraldClient({
      path: wsPath,
      getToken: async () => (await post<{ token: string }>('token')).token,
      diagnose: false,
      centrifuge: { name: 'herald-admin' },
    });
    const c = this.client.centrifuge;
    c.on('connected', (ctx) => {
      this.clientId = ctx.client;
      // A reconnect is a new client id: the tails are subscribed again.
      for (const channel of this.tails.keys()) post('tail', { channel, client: this.clientId }).catch(() => {});
      this.emit();
    });
    c.on('subscribed', (ctx) => {
      this.serverSubs.add(ctx.channel);
      this.emit();
    });
    c.on('unsubscribed', (ctx) => {
      this.serverSubs.delete(ctx.channel);
      this.emit();
    });
    c.on('disconnected', () => {
      this.serverSubs.clear();
      this.emit();
    });
    c.on('publication', (ctx) => {
      if (ctx.channel === '$admin:stats') {
        const s = ctx.data as AdminStats;
        this.nodes.set(s.node.uid, s);
      } else for (const fn of this.tails.get(ctx.channel) ?? []) fn(ctx);
    });
    this.client.onState((s) => {
      this.state = s;
      this.emit();
    });
    this.client.connect();
    this.ticker = window.setInterval(() => this.sample(), 1000);
  }

  /** Appends the cluster's current second from the latest snapshot of each node (a render step, not a request). */
  private sample(): void {
    const now = Date.now();
    for (const [uid, s] of this.nodes) if (now - s.at > NODE_STALE_MS) this.nodes.delete(uid);
    const p: Point = {
      at: now,
      connections: 0,
      messagesIn: 0,
      messagesOut: 0,
      publications: {},
      errors: {},
      disconnects: {},
    };
    const add = (into: Record<string, number>, from: Record<string, number>) => {
      for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
    };
    for (const s of this.nodes.values()) {
      p.connections += s.node.num_clients;
      p.messagesIn += s.messages_in;
      p.messagesOut += s.messages_out;
      add(p.publications, s.publications);
      add(p.errors, s.errors);
      add(p.disconnects, s.disconnects);
    }
    this.points = [...this.points.slice(-(KEEP_POINTS - 1)), p];
    this.emit();
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }

  /** Streams the publications of `channel` to `fn` until the returned function is called. */
  tail(channel: string, fn: (p: PublicationContext) => void): () => void {
    let set = this.tails.get(channel);
    if (!set) {
      this.tails.set(channel, (set = new Set()));
      if (this.clientId) post('tail', { channel, client: this.clientId }).catch(() => {});
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) {
        this.tails.delete(channel);
        if (this.clientId) post('tail', { channel, client: this.clientId, stop: true }).catch(() => {});
      }
    };
  }

  close(): void {
    window.clearInterval(this.ticker);
    this.client.disconnect();
  }
}
