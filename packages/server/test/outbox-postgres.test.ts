// The transactional outbox on the real Postgres (127.0.0.1:5432, database `test`), one schema per run.
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  createHerald,
  createOutboxConsumer,
  createMemoryEngine,
  HeraldError,
  migrateOutbox,
  type Herald,
  type OutboxConsumer,
} from '../src/index.js';
import type { Engine } from '../src/engine/engine.js';
import { engineFactories } from './support/engines.js';
import {
  collect,
  createTestSchema,
  openChannels,
  startFaultProxy,
  waitFor,
  PG_PORT,
  type Collector,
  type FaultProxy,
  type TestSchema,
} from './outbox-helpers.js';

const API_KEY = 'outbox-test-key';

interface Node {
  herald: Herald;
  port: number;
  consumer: OutboxConsumer;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse())
    await Promise.resolve()
      .then(c)
      .catch(() => {});
});

/** A fresh schema per test, so no node of another test consumes its rows; dropped when the test ends. */
async function schema(t: TestContext, migrate = true): Promise<TestSchema> {
  const db = await createTestSchema();
  cleanups.push(() => db.drop());
  if (migrate) await migrateOutbox(db.url);
  return db;
}

async function startNode(
  t: TestContext,
  url: string,
  opts: { engine?: Engine; workers?: number; batchSize?: number } = {},
): Promise<Node> {
  const herald = createHerald({
    env: { HERALD_CLIENT_INSECURE: 'true', HERALD_API_KEY: API_KEY },
    logger: false,
    config: openChannels,
    engine: opts.engine,
  });
  const addr = await herald.listen(0, '127.0.0.1');
  const consumer = createOutboxConsumer({
    herald,
    url,
    pollIntervalMs: 200,
    workers: opts.workers,
    batchSize: opts.batchSize,
    maxBackoffMs: 500,
    schemaRecheckMs: 100,
  });
  await consumer.start();
  t.after(async () => {
    await consumer.stop();
    await herald.close();
  });
  return { herald, port: addr.port, consumer };
}

async function ready(port: number): Promise<{ status: number; body: any }> {
  // The reasons are shown to the operator only (the API key).
  const res = await fetch(`http://127.0.0.1:${port}/ready`, { headers: { 'x-api-key': API_KEY } });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** A row committed after the ones under test; once it arrives, everything before it in its partition has been handled. */
async function marker(db: TestSchema, sub: Collector, channel: string, partition = 0): Promise<void> {
  const id = `marker-${Math.random()}`;
  await db.insert([{ channel, data: { marker: id }, partition }]);
  await waitFor(() => sub.received.some((r) => r.data?.marker === id), `marker ${id}`);
}

describe('outbox on Postgres', () => {
  test('herald migrate creates the table with the documented layout, and running it again changes nothing', async (t) => {
    const db = await schema(t);
    await migrateOutbox(db.url);
    const cols = await db.pool.query<{
      column_name: string;
      data_type: string;
      column_default: string | null;
      is_nullable: string;
    }>(
      `SELECT column_name, data_type, column_default, is_nullable FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'herald_outbox' ORDER BY ordinal_position`,
      [db.schema],
    );
    assert.deepEqual(
      cols.rows.map((c) => [c.column_name, c.data_type, c.is_nullable]),
      [
        ['id', 'bigint', 'NO'],
        ['method', 'text', 'NO'],
        ['payload', 'jsonb', 'NO'],
        ['partition', 'bigint', 'NO'],
        ['created_at', 'timestamp with time zone', 'NO'],
      ],
    );
    assert.match(cols.rows[0]!.column_default ?? '', /nextval/);
    assert.match(cols.rows[1]!.column_default ?? '', /'publish'/);
    const dead = await db.pool.query(`SELECT to_regclass('herald_outbox_dead') IS NOT NULL AS ok`);
    assert.equal(dead.rows[0].ok, true);
  });

  test('a committed row is published once and deleted; a rolled-back row is never published', async (t) => {
    const db = await schema(t);
    const node = await startNode(t, db.url);
    await node.consumer.whenRunning();
    const sub = await collect(node.port, ['orders']);
    cleanups.push(() => sub.close());

    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO herald_outbox (payload) VALUES ($1)`, [
        { channel: 'orders', data: { n: 'rolled-back' } },
      ]);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await client.query(`INSERT INTO herald_outbox (payload) VALUES ($1)`, [
        { channel: 'orders', data: { n: 'committed' } },
      ]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await waitFor(() => sub.received.some((r) => r.data?.n === 'committed'), 'the committed row');
    await marker(db, sub, 'orders');
    assert.equal(sub.received.filter((r) => r.data?.n === 'committed').length, 1);
    assert.equal(sub.received.filter((r) => r.data?.n === 'rolled-back').length, 0);
    await waitFor(async () => (await db.count()) === 0, 'table drained');
  });

  test('rows of one partition arrive in id order while partitions are consumed in parallel by two nodes', async (t) => {
    const db = await schema(t);
    const a = await startNode(t, db.url, { workers: 3, batchSize: 7 });
    const b = await startNode(t, db.url, { workers: 3, batchSize: 7 });
    await Promise.all([a.consumer.whenRunning(), b.consumer.whenRunning()]);
    const channels = ['p0', 'p1', 'p2', 'p3'];
    const subA = await collect(a.port, channels);
    const subB = await collect(b.port, channels);
    cleanups.push(
      () => subA.close(),
      () => subB.close(),
    );
    const perPartition = 150;
    const rows = [];
    for (let i = 0; i < perPartition; i++)
      for (let p = 0; p < 4; p++) rows.push({ channel: `p${p}`, data: { p, i }, partition: p });
    await db.insert(rows);
    const total = () => subA.received.length + subB.received.length;
    await waitFor(() => total() >= rows.length, `${rows.length} publications across both nodes`, 20_000);
    await waitFor(async () => (await db.count()) === 0, 'table drained');
    const all = [...subA.received, ...subB.received];
    assert.equal(all.length, rows.length, 'no row was published twice');
    const seen = new Set(all.map((r) => `${r.data.p}/${r.data.i}`));
    assert.equal(seen.size, rows.length, 'every row was published');
    // Each node publishes a partition's batches in order; the advisory lock keeps two nodes off one partition at once.
    for (const sub of [subA, subB]) {
      for (let p = 0; p < 4; p++) {
        const is = sub.received.filter((r) => r.data.p === p).map((r) => r.data.i as number);
        assert.deepEqual(
          is,
          [...is].sort((x, y) => x - y),
          `partition ${p} in id order on one node: ${is.join(',')}`,
        );
      }
    }
    assert.ok(
      subA.received.length > 0 && subB.received.length > 0,
      `both nodes took work (a=${subA.received.length}, b=${subB.received.length})`,
    );
    await a.consumer.stop();
    await b.consumer.stop();
  });

  test('a row that can never be published moves to herald_outbox_dead with its error and does not block the rows after it', async (t) => {
    const db = await schema(t);
    const node = await startNode(t, db.url);
    await node.consumer.whenRunning();
    const sub = await collect(node.port, ['dl']);
    cleanups.push(() => sub.close());
    await db.insert([
      { channel: 'dl', data: { n: 1 } },
      { channel: 'bad channel with spaces\n', data: { n: 2 } },
      { channel: 'dl', data: { n: 3 }, method: 'no_such_method' },
      { channel: 'dl', data: { n: 4 } },
    ]);
    await db.pool.query(`INSERT INTO herald_outbox (payload) VALUES ('[1,2,3]'::jsonb)`);
    await db.insert([{ channel: 'dl', data: { n: 5 } }]);
    await waitFor(() => sub.received.some((r) => r.data?.n === 5), 'the row after the bad ones');
    assert.deepEqual(
      sub.received.map((r) => r.data.n),
      [1, 4, 5],
    );
    // A batch is published before its transaction (delete + dead-letter move) commits: wait for the commit.
    await waitFor(async () => (await db.count()) === 0, 'table drained');
    const dead = await db.pool.query<{ method: string; error: string }>(
      'SELECT method, error FROM herald_outbox_dead ORDER BY id',
    );
    assert.equal(dead.rows.length, 3);
    assert.match(dead.rows[1]!.error, /method/i);
    assert.match(dead.rows[2]!.error, /object/i);
    const metrics = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
    assert.match(metrics, /herald_outbox_rows_total\{outcome="published"\} 3\b/);
    assert.match(metrics, /herald_outbox_rows_total\{outcome="dead"\} 3\b/);
    assert.match(metrics, /herald_outbox_running 1\b/);
    await node.consumer.stop();
  });

  test('a temporary publish failure keeps the row and retries it, in order, without duplicates', async (t) => {
    const db = await schema(t);
    const engine = createMemoryEngine();
    let failures = 3;
    const publish = engine.broker.publish.bind(engine.broker);
    engine.broker.publish = async (...args) => {
      if (failures > 0) {
        failures--;
        throw new HeraldError(100, 'engine unavailable', true);
      }
      return publish(...args);
    };
    const node = await startNode(t, db.url, { engine });
    await node.consumer.whenRunning();
    const sub = await collect(node.port, ['tmp']);
    cleanups.push(() => sub.close());
    await db.insert([1, 2, 3].map((n) => ({ channel: 'tmp', data: { n } })));
    await waitFor(() => sub.received.length >= 3, 'three rows after the engine recovers');
    await marker(db, sub, 'tmp');
    assert.deepEqual(
      sub.received.filter((r) => r.data.n).map((r) => r.data.n),
      [1, 2, 3],
    );
    assert.equal(failures, 0);
    const dead = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM herald_outbox_dead WHERE payload->>'channel' = 'tmp'`,
    );
    assert.equal(dead.rows[0]?.n, '0');
    await node.consumer.stop();
  });
});

// On both engines: the rows' idempotency keys (herald-outbox-<id>) must hold on a channel without history too.
for (const engineName of ['memory', 'redis'] as const)
  describe(`outbox re-delivery on Postgres (${engineName} engine)`, () => {
    test('rows published but not deleted (the delete failed twice) are published again, and no subscriber receives one twice', async (t) => {
      const db = await schema(t);
      const engine = await engineFactories[engineName]!();
      // Sequences ignore rollbacks, so the count survives the failing transactions.
      await db.pool.query(`CREATE SEQUENCE fail_delete_seq`);
      await db.pool.query(`CREATE FUNCTION fail_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF nextval('fail_delete_seq') <= 2 THEN RAISE EXCEPTION 'injected failure of the outbox delete'; END IF; RETURN OLD; END $$`);
      await db.pool.query(
        `CREATE TRIGGER fail_delete BEFORE DELETE ON herald_outbox FOR EACH STATEMENT EXECUTE FUNCTION fail_delete()`,
      );
      const node = await startNode(t, db.url, { engine });
      await node.consumer.whenRunning();
      const sub = await collect(node.port, ['redo']);
      cleanups.push(() => sub.close());
      await db.insert([1, 2, 3].map((n) => ({ channel: 'redo', data: { n } })));
      await waitFor(async () => (await db.count()) === 0, 'the rows deleted once the delete works', 15_000);
      await marker(db, sub, 'redo');
      const seq = await db.pool.query<{ n: string }>(`SELECT last_value AS n FROM fail_delete_seq`);
      assert.ok(Number(seq.rows[0]?.n) >= 3, 'the delete failed twice before it worked');
      assert.deepEqual(
        sub.received.filter((r) => r.data.n).map((r) => r.data.n),
        [1, 2, 3],
        'each row delivered once',
      );
      await node.consumer.stop();
    });
  });

describe('outbox readiness and table setups on Postgres', () => {
  test('without the table /ready answers 503 and says how to create it; after herald migrate it turns 200', async (t) => {
    const db = await schema(t, false);
    const node = await startNode(t, db.url);
    await waitFor(
      async () => (await ready(node.port)).body?.checks?.outbox?.includes('herald migrate'),
      '/ready names herald migrate',
    );
    assert.equal((await ready(node.port)).status, 503);
    const tables = await db.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`, [db.schema]);
    assert.equal(tables.rows[0].n, 0, 'Herald created nothing on Postgres by itself');
    await migrateOutbox(db.url);
    await waitFor(async () => (await ready(node.port)).status === 200, '/ready 200 after migrate', 15_000);
    await node.consumer.stop();
  });

  test('database down at start: /ready is 503 until it connects; lost mid-run: consumption pauses and resumes with nothing lost', async (t) => {
    const db = await schema(t);
    const proxy: FaultProxy = await startFaultProxy(PG_PORT, { startCut: true });
    cleanups.push(() => proxy.close());
    const node = await startNode(t, db.urlVia(proxy.port));
    await waitFor(
      async () => (await ready(node.port)).body?.checks?.outbox?.includes('not reachable'),
      '/ready says the database is not reachable',
    );
    assert.equal((await ready(node.port)).status, 503);
    await proxy.restore();
    await node.consumer.whenRunning(15_000);
    assert.equal((await ready(node.port)).status, 200);

    const sub = await collect(node.port, ['fault']);
    cleanups.push(() => sub.close());
    await db.insert([{ channel: 'fault', data: { n: 1 } }]);
    await waitFor(() => sub.received.length === 1, 'first row');
    // Cut only after its delete committed: a cut between publish and commit re-delivers (at least once, by design).
    await waitFor(async () => (await db.count()) === 0, 'first row deleted');
    await proxy.cut();
    await db.insert([2, 3, 4].map((n) => ({ channel: 'fault', data: { n } })));
    await new Promise((r) => setTimeout(r, 300)); // let the consumer notice the loss and back off
    assert.equal(sub.received.length, 1, 'nothing published while the database is unreachable');
    await proxy.restore();
    await waitFor(() => sub.received.length >= 4, 'rows inserted during the outage', 15_000);
    await marker(db, sub, 'fault');
    assert.deepEqual(sub.received.map((r) => r.data.n).filter(Boolean), [1, 2, 3, 4]);
    await node.consumer.stop();
  });
  test('a table created from the Prisma model alone (no trigger, no dead-letter table) works by polling and skips bad rows with a log', async (t) => {
    const db = await schema(t, false);
    // What `prisma migrate dev` creates from the documented model.
    await db.pool.query(`CREATE TABLE herald_outbox (
      id BIGSERIAL PRIMARY KEY, method TEXT NOT NULL DEFAULT 'publish', payload JSONB NOT NULL,
      partition BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP)`);
    await db.pool.query('CREATE INDEX "herald_outbox_partition_id_idx" ON herald_outbox (partition, id)');
    const node = await startNode(t, db.url);
    await node.consumer.whenRunning();
    const sub = await collect(node.port, ['prisma']);
    t.after(() => sub.close());
    await db.insert([
      { channel: 'prisma', data: { n: 1 } },
      { channel: 'no good', data: { n: 2 } },
      { channel: 'prisma', data: { n: 3 } },
    ]);
    await waitFor(() => sub.received.length === 2, 'the two good rows');
    await waitFor(async () => (await db.count()) === 1, 'only the bad row left');
    assert.deepEqual(
      sub.received.map((r) => r.data.n),
      [1, 3],
    );
    const left = await db.pool.query(`SELECT payload->>'channel' AS channel FROM herald_outbox`);
    assert.equal(left.rows[0].channel, 'no good');
    await db.insert([{ channel: 'prisma', data: { n: 4 } }]);
    await waitFor(() => sub.received.length === 3, 'a later row is not blocked by the skipped one');
    const metrics = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
    assert.match(metrics, /herald_outbox_rows_total\{outcome="skipped"\} 1\b/);
  });

  test('a table with the wrong column types keeps /ready at 503 and names the column', async (t) => {
    const db = await schema(t, false);
    await db.pool.query(
      `CREATE TABLE herald_outbox (id bigserial PRIMARY KEY, method text NOT NULL DEFAULT 'publish', payload text NOT NULL, partition bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now())`,
    );
    const node = await startNode(t, db.url);
    await waitFor(
      async () => /column "payload" has type text/.test((await ready(node.port)).body?.checks?.outbox ?? ''),
      '/ready names the payload column',
    );
    assert.equal((await ready(node.port)).status, 503);
  });
});
