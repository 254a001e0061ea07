// Shared by the outbox tests here and in tests/outbox: a throwaway Postgres schema, a TCP fault proxy, subscribers.
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import WebSocket from 'ws';
import { Centrifuge, type Options as CentrifugeOptions, type Subscription } from 'centrifuge';

export const PG_HOST = process.env.HERALD_TEST_PG_HOST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.HERALD_TEST_PG_PORT ?? 5432);
export const PG_DB = process.env.HERALD_TEST_PG_DB ?? 'test';

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let pgUser: string | undefined;
/** The machine's Postgres uses trust auth with either `root` or `postgres` as the role; take whichever exists. */
export async function pgRole(): Promise<string> {
  if (pgUser) return pgUser;
  for (const user of [process.env.HERALD_TEST_PG_USER, 'root', 'postgres']) {
    if (!user) continue;
    const c = new pg.Client({ host: PG_HOST, port: PG_PORT, database: PG_DB, user });
    try {
      await c.connect();
      await c.end();
      pgUser = user;
      return user;
    } catch {
      await c.end().catch(() => {});
    }
  }
  throw new Error(`no Postgres role (root, postgres) can connect to ${PG_HOST}:${PG_PORT}/${PG_DB}`);
}

export function pgUrl(user: string, schema: string, port = PG_PORT, host = PG_HOST): string {
  return `postgres://${user}@${host}:${port}/${PG_DB}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

export interface TestSchema {
  schema: string;
  /** URL whose search_path is the schema, through the real server. */
  url: string;
  /** The same through another host/port (a fault proxy). */
  urlVia(port: number): string;
  /** A pool for the test's own statements (the application's writes), search_path set to the schema. */
  pool: pg.Pool;
  insert(rows: { channel: string; data: unknown; partition?: number; method?: string }[]): Promise<void>;
  count(): Promise<number>;
  drop(): Promise<void>;
}

/** A schema of its own per test run (herald_test_<random>), dropped by `drop()`. */
export async function createTestSchema(): Promise<TestSchema> {
  const user = await pgRole();
  const schema = `herald_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, database: PG_DB, user });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = pgUrl(user, schema);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  return {
    schema,
    url,
    urlVia: (port) => pgUrl(user, schema, port),
    pool,
    async insert(rows) {
      if (rows.length === 0) return;
      const values: unknown[] = [];
      const tuples = rows.map((r, i) => {
        values.push(r.method ?? 'publish', JSON.stringify({ channel: r.channel, data: r.data }), r.partition ?? 0);
        return `($${i * 3 + 1}, $${i * 3 + 2}::jsonb, $${i * 3 + 3})`;
      });
      await pool.query(`INSERT INTO herald_outbox (method, payload, partition) VALUES ${tuples.join(',')}`, values);
    },
    async count() {
      const r = await pool.query<{ n: string }>('SELECT count(*) AS n FROM herald_outbox');
      return Number(r.rows[0]?.n);
    },
    async drop() {
      await pool.end().catch(() => {});
      const c = new pg.Client({ host: PG_HOST, port: PG_PORT, database: PG_DB, user });
      await c.connect();
      // A killed node's backend may hold its locks until Postgres notices the dead socket: retry rather than hang.
      await c.query(`SET lock_timeout = '3s'`);
      for (let attempt = 1; ; attempt++) {
        try {
          await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
      await c.end();
    },
  };
}

/** A TCP proxy we can cut (every connection closed, new ones refused) and restore, to lose the database mid-run. */
export interface FaultProxy {
  port: number;
  readonly up: boolean;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(
  targetPort: number,
  opts: { startCut?: boolean; targetHost?: string } = {},
): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let up = false;
  async function listen(): Promise<void> {
    const s = createServer((client) => {
      const upstream = connect(targetPort, opts.targetHost ?? PG_HOST);
      sockets.add(client);
      sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as { port: number }).port;
    server = s;
    up = true;
  }
  async function cut(): Promise<void> {
    up = false;
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
  await listen();
  if (opts.startCut) await cut();
  return {
    get port() {
      return port;
    },
    get up() {
      return up;
    },
    cut,
    restore: listen,
    close: cut,
  };
}

/** One WebSocket subscriber collecting every publication of some channels (insecure mode: no token). */
export interface Collector {
  client: Centrifuge;
  /** [channel, data] in arrival order. */
  received: { channel: string; data: any }[];
  close(): void;
}

export async function collect(port: number, channels: string[]): Promise<Collector> {
  const client = new Centrifuge(`ws://127.0.0.1:${port}/connection/websocket`, {
    websocket: WebSocket as unknown as CentrifugeOptions['websocket'],
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
  });
  const received: Collector['received'] = [];
  const subs: Subscription[] = [];
  for (const ch of channels) {
    const sub = client.newSubscription(ch);
    sub.on('publication', (ctx) => received.push({ channel: ch, data: ctx.data }));
    subs.push(sub);
    sub.subscribe();
  }
  client.connect();
  await Promise.all(subs.map((s) => s.ready(10_000)));
  return { client, received, close: () => client.disconnect() };
}

/** Namespace options that let insecure clients subscribe to any channel of the default namespace. */
export const openChannels = {
  channel: {
    withoutNamespace: {
      allow_subscribe_for_client: true,
      history_size: 100,
      history_ttl_ms: 300_000,
      force_recovery: true,
    },
  },
} as const;
