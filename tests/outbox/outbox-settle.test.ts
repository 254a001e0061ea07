// When an outbox row counts as settled: every item of it stored (or dead-lettered item by item for a permanent
// reason), whatever else fails. Real Redis servers of the test's own (stopped and started), the real Postgres and
// SQLite files; Herald in-process so its store and limits can be set per test.
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  createHerald,
  createOutboxConsumer,
  migrateOutbox,
  type Herald,
  type OutboxStore,
} from '../../packages/server/src/index.js';
import { createPostgresStore } from '../../packages/server/src/outbox/postgres.js';
import { createSqliteStore, loadSqliteDriver, type SqliteDb } from '../../packages/server/src/outbox/sqlite.js';
import { shardOf } from '../../packages/server/src/engine/redis/shards.js';
import { createTestSchema, openChannels, waitFor, type TestSchema } from '../../packages/server/test/outbox-helpers.js';
import { startTestRedis, type TestRedis } from '../scaling/support/redis-server.js';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse())
    await Promise.resolve()
      .then(c)
      .catch((err) => console.error('cleanup failed:', err));
});

const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-settle-'));
cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
const sqlite = await loadSqliteDriver();

/** The application's side of one outbox database, Postgres or SQLite. */
interface Db {
  kind: 'postgres' | 'sqlite';
  store(): OutboxStore;
  /** Inserts rows in one transaction; `payload` is JSON text. */
  insert(rows: { method?: string; payload: string; partition?: number }[]): Promise<void>;
  count(): Promise<number>;
  dead(): Promise<{ id: number; payload: string; error: string }[]>;
  sql(text: string): Promise<void>;
}

async function postgres(opts: { before?: (s: TestSchema) => Promise<void> } = {}): Promise<Db> {
  const s = await createTestSchema();
  cleanups.push(() => s.drop());
  await opts.before?.(s);
  await migrateOutbox(s.url);
  return {
    kind: 'postgres',
    store: () => createPostgresStore(s.url),
    async insert(rows) {
      const c = await s.pool.connect();
      try {
        await c.query('BEGIN');
        // An untyped parameter takes the column's type (jsonb, or json in a Centrifugo-style table).
        for (const r of rows)
          await c.query('INSERT INTO herald_outbox (method, payload, partition) VALUES ($1, $2, $3)', [
            r.method ?? 'publish',
            r.payload,
            r.partition ?? 0,
          ]);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    },
    count: async () =>
      Number((await s.pool.query<{ n: string }>('SELECT count(*) AS n FROM herald_outbox')).rows[0]?.n),
    dead: async () =>
      (await s.pool.query('SELECT id::int AS id, payload::text AS payload, error FROM herald_outbox_dead ORDER BY id'))
        .rows,
    sql: async (text) => void (await s.pool.query(text)),
  };
}

let files = 0;
async function sqliteFile(): Promise<Db> {
  const url = `file:${join(dir, `settle-${++files}.db`)}`;
  await migrateOutbox(url);
  const app: SqliteDb = sqlite.open(url.slice(5));
  app.exec('PRAGMA busy_timeout = 2000');
  cleanups.push(() => app.close());
  return {
    kind: 'sqlite',
    store: () => createSqliteStore(url, { driver: sqlite.name }),
    async insert(rows) {
      app.exec('BEGIN IMMEDIATE');
      for (const r of rows)
        app
          .prepare('INSERT INTO herald_outbox (method, payload, partition) VALUES (?, ?, ?)')
          .run(r.method ?? 'publish', r.payload, r.partition ?? 0);
      app.exec('COMMIT');
    },
    count: async () => (app.prepare('SELECT count(*) AS n FROM herald_outbox').all()[0] as { n: number }).n,
    dead: async () =>
      app.prepare('SELECT id, payload, error FROM herald_outbox_dead ORDER BY id').all() as {
        id: number;
        payload: string;
        error: string;
      }[],
    sql: async (text) => app.exec(text),
  };
}

const databases: [string, () => Promise<Db>][] = [
  ['Postgres', () => postgres()],
  ['SQLite', sqliteFile],
];

async function redis(): Promise<TestRedis> {
  const r = await startTestRedis();
  cleanups.push(() => r.stop());
  return r;
}

interface Node {
  herald: Herald;
  port: number;
  /** Parsed log lines (debug and up). */
  logs: Record<string, any>[];
  /** Data of every publication in a channel's history (the engine's record of what was stored). */
  history(channel: string): Promise<unknown[]>;
  metric(name: string): Promise<number>;
}

async function startNode(
  t: TestContext,
  db: Db,
  opts: {
    redis?: TestRedis[];
    store?: OutboxStore;
    maxPayloadBytes?: number;
    maxBatchBytes?: number;
    stuckAfterMs?: number;
  } = {},
): Promise<Node> {
  const logs: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const env: Record<string, string> = { HERALD_CLIENT_INSECURE: 'true' };
  if (opts.redis) {
    Object.assign(env, {
      HERALD_ENGINE: 'redis',
      REDIS_URL: opts.redis.map((r) => r.url).join(','),
      HERALD_REDIS_TIMEOUT: '500ms',
      HERALD_REDIS_PREFIX: `settle${++files}`,
    });
  }
  const herald = createHerald({ env, logger: pino({ level: 'debug' }, sink), config: openChannels });
  const { port } = await herald.listen(0, '127.0.0.1');
  const consumer = createOutboxConsumer({
    herald,
    store: opts.store ?? db.store(),
    pollIntervalMs: 50,
    maxBackoffMs: 300,
    schemaRecheckMs: 100,
    maxPayloadBytes: opts.maxPayloadBytes,
    maxBatchBytes: opts.maxBatchBytes,
    stuckAfterMs: opts.stuckAfterMs,
  });
  await consumer.start();
  t.after(async () => {
    await consumer.stop();
    await herald.close();
  });
  await consumer.whenRunning();
  return {
    herald,
    port,
    logs,
    async history(channel) {
      const r = (await herald.call('history', { channel, limit: 100 })) as {
        result?: { publications: { data: unknown }[] };
        publications?: { data: unknown }[];
      };
      return (r.publications ?? r.result?.publications ?? []).map((p) => p.data);
    },
    async metric(name) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : Number.NaN;
    },
  };
}

const publish = (channel: string, data: unknown) => JSON.stringify({ channel, data });

/** `n` channel names that live on shard `shard` of `count` (the engine's own rendezvous hashing). */
function channelsOnShard(shard: number, count: number, n: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (shardOf(`${prefix}${i}`, count) === shard) out.push(`${prefix}${i}`);
  return out;
}

for (const [name, open] of databases) {
  describe(`outbox rows are settled item by item (${name})`, () => {
    test('with Redis down, broadcast and batch rows stay until Redis returns, then every item is delivered exactly once', async (t) => {
      const db = await open();
      const r = await redis();
      const node = await startNode(t, db, { redis: [r] });
      await r.stop();
      await db.insert([
        { method: 'broadcast', payload: JSON.stringify({ channels: ['bc-a', 'bc-b'], data: { row: 'broadcast' } }) },
        {
          method: 'batch',
          payload: JSON.stringify({
            commands: [
              { publish: { channel: 'bt-a', data: { row: 'batch' } } },
              { broadcast: { channels: ['bt-b', 'bt-c'], data: { row: 'batch' } } },
            ],
          }),
        },
        { payload: publish('pub-a', { row: 'publish' }) },
      ]);
      await waitFor(
        () => node.logs.some((l) => /outbox publish failed temporarily/.test(l.msg)),
        'a publish attempt while Redis is down',
      );
      await r.restart(0);
      await waitFor(async () => (await db.count()) === 0, 'every row settled after Redis returned', 20_000);
      for (const ch of ['bc-a', 'bc-b', 'bt-a', 'bt-b', 'bt-c', 'pub-a']) {
        assert.equal((await node.history(ch)).length, 1, `channel ${ch} got its publication exactly once`);
      }
      assert.deepEqual(await db.dead(), []);
      assert.equal(await node.metric('herald_outbox_rows_total{outcome="published"}'), 3);
    });

    test("with one of two Redis shards down, the healthy shard's partitions go out, and a half-stored broadcast is completed without duplicates", async (t) => {
      const db = await open();
      const shards = [await redis(), await redis()];
      const node = await startNode(t, db, { redis: shards, stuckAfterMs: 200 });
      const healthy = channelsOnShard(0, 2, 21, 'ok-');
      const [down1, down2] = channelsOnShard(1, 2, 2, 'down-');
      await shards[1]!.stop();
      await db.insert([
        {
          method: 'broadcast',
          payload: JSON.stringify({ channels: [healthy[20], down1], data: { row: 'split' } }),
          partition: 100,
        },
        { payload: publish(down2!, { row: 'down' }), partition: 101 },
        ...healthy.slice(0, 20).map((ch, i) => ({ payload: publish(ch, { row: i }), partition: i })),
      ]);
      await waitFor(
        async () => (await db.count()) === 2,
        'the 20 rows of the healthy shard published while the other shard is down',
        10_000,
      );
      for (const ch of healthy) assert.equal((await node.history(ch)).length, 1, `${ch} published once`);
      await waitFor(
        () => node.logs.some((l) => l.code === 'outbox_partition_stuck'),
        'an outbox_partition_stuck log line',
      );
      assert.equal(await node.metric('herald_outbox_waiting_partitions'), 2);
      assert.equal(await node.metric('herald_outbox_stuck_partitions'), 2);
      assert.ok((await node.metric('herald_outbox_oldest_waiting_seconds')) > 0);
      const warnings = node.logs.filter((l) => l.level >= 40 && /failed temporarily/.test(l.msg));
      assert.equal(warnings.length, 2, 'one warning per waiting partition, however many retries');

      await shards[1]!.restart(0);
      await waitFor(async () => (await db.count()) === 0, "the down shard's rows once it is back", 20_000);
      assert.equal(
        (await node.history(healthy[20]!)).length,
        1,
        'the item stored before the outage was not stored again',
      );
      assert.equal((await node.history(down1!)).length, 1);
      assert.equal((await node.history(down2!)).length, 1);
      assert.equal(await node.metric('herald_outbox_waiting_partitions'), 0);
      assert.deepEqual(await db.dead(), []);
    });

    test('a row whose Redis reply is an error about the request (history since offset 1e300) is dead-lettered and its partition goes on', async (t) => {
      const db = await open();
      const r = await redis();
      const node = await startNode(t, db, { redis: [r] });
      await db.insert([
        {
          method: 'history',
          payload: JSON.stringify({ channel: 'hist', since: { offset: 1e300, epoch: 'x' } }),
          partition: 7,
        },
        { payload: publish('after-hist', { n: 1 }), partition: 7 },
      ]);
      await waitFor(async () => (await db.count()) === 0, 'both rows settled');
      assert.equal((await node.history('after-hist')).length, 1);
      const dead = await db.dead();
      assert.equal(dead.length, 1);
      assert.match(dead[0]!.error, /since\.offset.*\(code 107\)/);
      // The request's own error is never taken for a temporary one. (A Redis timeout of 500 ms on a loaded machine
      // may retry a row once; that is a different error and is not what this test is about.)
      const temporary = node.logs.filter((l) => /failed temporarily/.test(l.msg));
      assert.deepEqual(
        temporary.filter((l) => /since|offset|code 107/i.test(JSON.stringify(l.err ?? ''))).map((l) => l.err),
        [],
        'the error about the request was never retried as temporary',
      );
    });

    test('a row over HERALD_OUTBOX_MAX_PAYLOAD is dead-lettered unread with the limit named, and no batch reads more than HERALD_OUTBOX_MAX_BATCH_BYTES', async (t) => {
      const db = await open();
      const inner = db.store();
      const batches: number[] = [];
      const store: OutboxStore = {
        ...inner,
        dialect: inner.dialect,
        target: inner.target,
        runBatch: (claim, deliver) =>
          inner.runBatch(claim, (rows) => {
            batches.push(
              rows.reduce((sum, row) => sum + (row.payload === undefined ? 0 : Buffer.byteLength(row.payload)), 0),
            );
            return deliver(rows);
          }),
      };
      const node = await startNode(t, db, { store, maxPayloadBytes: 4096, maxBatchBytes: 10_000 });
      const filler = 'x'.repeat(3000);
      await db.insert([
        ...[1, 2, 3, 4, 5, 6].map((n) => ({ payload: publish('sized', { n, filler }) })),
        { payload: publish('sized', { n: 'big', filler: 'y'.repeat(8000) }) },
        { payload: publish('sized', { n: 7 }) },
      ]);
      await waitFor(async () => (await db.count()) === 0, 'every row settled');
      assert.deepEqual(
        (await node.history('sized')).map((d) => (d as { n: unknown }).n),
        [1, 2, 3, 4, 5, 6, 7],
      );
      const dead = await db.dead();
      assert.equal(dead.length, 1);
      assert.match(dead[0]!.error, /HERALD_OUTBOX_MAX_PAYLOAD \(4096 bytes\)/);
      assert.match(dead[0]!.error, /code 106/);
      assert.match(dead[0]!.payload, /"n": ?"big"/, 'the payload is kept in the dead-letter table');
      assert.ok(batches.length >= 2, `the rows took several batches (${batches.join(', ')})`);
      for (const b of batches) assert.ok(b <= 10_000, `a batch read ${b} payload bytes`);
    });

    test('a payload nested deeper than HERALD_MAX_JSON_DEPTH is dead-lettered as a bad request and the rows after it are published', async (t) => {
      const db = await open();
      const node = await startNode(t, db);
      // Deep enough that JSON.stringify overflows the stack; Postgres's jsonb refuses such a row at insert, so less there.
      const levels = db.kind === 'postgres' ? 2000 : 50_000;
      const deep = '['.repeat(levels) + ']'.repeat(levels);
      await db.insert([{ payload: `{"channel":"deep","data":${deep}}` }, { payload: publish('deep', { n: 2 }) }]);
      await waitFor(async () => (await db.count()) === 0, 'both rows settled');
      assert.deepEqual(await node.history('deep'), [{ n: 2 }]);
      const dead = await db.dead();
      assert.equal(dead.length, 1);
      assert.match(dead[0]!.error, /nested deeper than \d+ levels.*code 107/);
    });

    test('a broadcast with one bad channel publishes the good ones and dead-letters the row naming the bad item', async (t) => {
      const db = await open();
      const node = await startNode(t, db);
      await db.insert([
        {
          method: 'broadcast',
          payload: JSON.stringify({ channels: ['good-1', 'bad channel', 'good-2'], data: { n: 1 } }),
        },
      ]);
      await waitFor(async () => (await db.count()) === 0, 'the row settled');
      assert.equal((await node.history('good-1')).length, 1);
      assert.equal((await node.history('good-2')).length, 1);
      const dead = await db.dead();
      assert.equal(dead.length, 1);
      assert.match(
        dead[0]!.error,
        /^1 of 3 items cannot be published \(the other 2 were\): \[1\] publish to "bad channel": bad request/,
      );
      assert.equal(await node.metric('herald_outbox_rows_total{outcome="dead"}'), 1);
      assert.equal(await node.metric('herald_outbox_rows_total{outcome="published"}'), 0);
    });
  });
}

describe('the dead-letter write never blocks the outbox (Postgres)', () => {
  test('a NUL in a tag key of a json payload column is dead-lettered as text instead of retrying forever', async (t) => {
    const db = await postgres({
      before: async (s) => {
        // Centrifugo's layout allows a json (not jsonb) payload column, which keeps \u0000 that jsonb refuses.
        await s.pool.query(
          `CREATE TABLE herald_outbox (id bigserial PRIMARY KEY, method text NOT NULL DEFAULT 'publish', payload json NOT NULL, partition bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now())`,
        );
      },
    });
    const node = await startNode(t, db);
    await db.insert([
      { payload: '{"channel":"bad channel","data":1,"tags":{"k\\u0000":"v"}}' },
      { payload: publish('after-nul', { n: 2 }) },
    ]);
    await waitFor(async () => (await db.count()) === 0, 'both rows settled');
    assert.deepEqual(await node.history('after-nul'), [{ n: 2 }]);
    const dead = await db.dead();
    assert.equal(dead.length, 1);
    assert.match(dead[0]!.error, /invalid channel.*payload stored as text/);
    assert.equal(
      JSON.parse(dead[0]!.payload).herald_unstorable_payload,
      '{"channel":"bad channel","data":1,"tags":{"k\\u0000":"v"}}',
    );
  });

  test('when herald_outbox_dead refuses a row, it stays, is counted and logged once, its partition backs off, the others go on', async (t) => {
    const db = await postgres();
    await db.sql(
      `CREATE FUNCTION refuse_dead() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'dead-letter table refuses rows'; END $$`,
    );
    await db.sql(
      `CREATE TRIGGER refuse_dead BEFORE INSERT ON herald_outbox_dead FOR EACH ROW EXECUTE FUNCTION refuse_dead()`,
    );
    const node = await startNode(t, db);
    await db.insert([
      { payload: publish('bad channel', 1), partition: 1 },
      { payload: publish('other', { n: 1 }), partition: 2 },
    ]);
    await waitFor(
      async () => (await node.metric('herald_outbox_dead_letter_failures_total')) >= 3,
      'three refused dead-letter writes',
    );
    assert.equal(await db.count(), 1, 'the refused row stays in herald_outbox');
    assert.deepEqual(await node.history('other'), [{ n: 1 }]);
    assert.equal(
      node.logs.filter((l) => l.code === 'outbox_dead_letter_failed' && l.level >= 50).length,
      1,
      'one error line, not one per retry',
    );
    await db.sql('DROP TRIGGER refuse_dead ON herald_outbox_dead');
    await waitFor(async () => (await db.count()) === 0, 'the row dead-lettered once the table accepts it');
    assert.equal((await db.dead()).length, 1);
  });
});
