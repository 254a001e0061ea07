// The outbox across real `herald serve` processes: two nodes sharing one table, nodes killed mid-batch, and a
// Postgres cluster of our own restarted under a running node.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateOutbox } from '../../packages/server/src/index.js';
import { loadSqliteDriver } from '../../packages/server/src/outbox/sqlite.js';
import {
  collect,
  createTestSchema,
  waitFor,
  type Collector,
  type TestSchema,
} from '../../packages/server/test/outbox-helpers.js';
import {
  API_KEY,
  bin,
  killAll,
  startHerald,
  startReadyHerald,
  throwawayOutboxDatabase,
  type HeraldProcess,
} from './nodes.js';

const cleanups: (() => unknown)[] = [];
after(async () => {
  await killAll();
  for (const c of cleanups.reverse())
    await Promise.resolve()
      .then(c)
      .catch((err) => console.error('cleanup failed:', err));
});

async function schema(): Promise<TestSchema> {
  const db = await createTestSchema();
  cleanups.push(() => db.drop());
  await migrateOutbox(db.url);
  return db;
}

/** Every `data.n` the node holds in its history of `channels` (its memory engine: only what this process published). */
async function historyOf(node: HeraldProcess, channels: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const channel of channels) {
    const r = await node.api('history', { channel, limit: 5000 });
    for (const p of r.publications as { data: { n: number } }[]) out.push(p.data.n);
  }
  return out;
}

test('two Herald nodes consuming one Postgres outbox publish every row exactly once, each partition in id order', async (t) => {
  const db = await schema();
  const env = { HERALD_OUTBOX_BATCH_SIZE: '25', HERALD_OUTBOX_WORKERS: '4' };
  const [a, b] = await Promise.all([startReadyHerald(db.url, env), startReadyHerald(db.url, env)]);
  const partitions = 8;
  const perPartition = 250;
  const channels = Array.from({ length: partitions }, (_, p) => `part${p}`);
  const subs: Collector[] = [await collect(a!.port, channels), await collect(b!.port, channels)];
  cleanups.push(() => subs.forEach((s) => s.close()));

  const started = performance.now();
  // Ten transactions of 200 rows, interleaving partitions, while both nodes consume.
  for (let chunk = 0; chunk < 10; chunk++) {
    const rows = [];
    for (let k = 0; k < perPartition / 10; k++) {
      for (let p = 0; p < partitions; p++)
        rows.push({ channel: `part${p}`, data: { p, i: chunk * (perPartition / 10) + k }, partition: p });
    }
    await db.insert(rows);
  }
  const total = partitions * perPartition;
  const received = () => subs[0]!.received.length + subs[1]!.received.length;
  await waitFor(() => received() >= total, `${total} publications across both nodes`, 30_000);
  const elapsed = performance.now() - started;
  await waitFor(async () => (await db.count()) === 0, 'outbox drained');

  const all = [...subs[0]!.received, ...subs[1]!.received];
  assert.equal(all.length, total, 'no row published twice');
  assert.equal(new Set(all.map((r) => `${r.data.p}/${r.data.i}`)).size, total, 'every row published');
  const logs = [...a!.published(), ...b!.published()];
  assert.equal(logs.length, total);
  assert.equal(new Set(logs.map((l) => l.id)).size, total);
  // Order across nodes: the publish times both nodes logged, merged per partition, must follow id order.
  for (let p = 0; p < partitions; p++) {
    const ids = logs
      .filter((l) => l.partition === p)
      .sort((x, y) => x.at - y.at)
      .map((l) => l.id);
    assert.deepEqual(
      ids,
      [...ids].sort((x, y) => x - y),
      `partition ${p} published in id order across both nodes`,
    );
  }
  const share = [a!.published().length, b!.published().length];
  assert.ok(share[0]! > 0 && share[1]! > 0, `both nodes took work (${share.join(' / ')})`);
  t.diagnostic(
    `${total} rows through 2 nodes in ${Math.round(elapsed)} ms (${Math.round(total / (elapsed / 1000))} rows/s); split ${share.join(' / ')}`,
  );
});

test('a node killed mid-batch on Postgres: the batch is published again after restart and no row is lost', async (t) => {
  const db = await schema();
  // A test-only trigger makes every DELETE wait for an advisory lock this test holds: the node claims and publishes its
  // batch, then hangs before deleting, which is exactly where we kill it.
  const key = Math.floor(Math.random() * 1e9);
  await db.pool.query(`CREATE FUNCTION hold_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock_shared(${key}); RETURN OLD; END $$`);
  await db.pool.query(
    `CREATE TRIGGER hold_delete BEFORE DELETE ON herald_outbox FOR EACH ROW EXECUTE FUNCTION hold_delete()`,
  );
  const holder = await db.pool.connect();
  await holder.query('SELECT pg_advisory_lock($1)', [key]);
  let held = true;
  cleanups.push(async () => {
    if (held) await holder.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => {});
    holder.release();
  });
  const channels = ['k0', 'k1', 'k2'];
  const rows = Array.from({ length: 300 }, (_, n) => ({ channel: channels[n % 3]!, data: { n } }));
  await db.insert(rows);

  const first = await startReadyHerald(db.url, { HERALD_OUTBOX_BATCH_SIZE: '1000' });
  await waitFor(
    async () => (await historyOf(first, channels)).length === 300,
    'the first node published the whole batch',
  );
  assert.equal(await db.count(), 300, 'the batch is not deleted yet');
  await first.kill('SIGKILL');
  await holder.query('SELECT pg_advisory_unlock($1)', [key]);
  held = false;

  const started = performance.now();
  const second = await startReadyHerald(db.url, { HERALD_OUTBOX_BATCH_SIZE: '1000' });
  await waitFor(async () => (await db.count()) === 0, 'outbox drained by the restarted node', 20_000);
  const again = await historyOf(second, channels);
  assert.deepEqual(
    [...again].sort((x, y) => x - y),
    rows.map((r) => r.data.n),
    'every row of the killed batch published again, once',
  );
  t.diagnostic(
    `300 rows re-delivered ${Math.round(performance.now() - started)} ms after restart (includes process start)`,
  );
});

test('a node killed mid-batch on SQLite: the batch is published again after restart and no row is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-kill-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'app.db');
  await migrateOutbox(`file:${path}`);
  const driver = await loadSqliteDriver();
  const app = driver.open(path);
  cleanups.push(() => app.close());
  const channels = ['s0', 's1'];
  const insert = app.prepare('INSERT INTO herald_outbox (payload) VALUES (?)');
  for (let n = 0; n < 200; n++) insert.run(JSON.stringify({ channel: channels[n % 2], data: { n } }));
  // The application holds the write lock: Herald reads and publishes (WAL readers are not blocked) but cannot delete.
  app.exec('BEGIN IMMEDIATE');
  let locked = true;
  cleanups.push(() => locked && app.exec('ROLLBACK'));

  const first = await startReadyHerald(`file:${path}`, { HERALD_OUTBOX_BATCH_SIZE: '1000' });
  await waitFor(
    async () => (await historyOf(first, channels)).length === 200,
    'the first node published the whole batch',
  );
  await first.kill('SIGKILL');
  app.exec('COMMIT');
  locked = false;
  assert.equal((app.prepare('SELECT count(*) AS n FROM herald_outbox').all()[0] as { n: number }).n, 200);

  const second = await startReadyHerald(`file:${path}`, { HERALD_OUTBOX_BATCH_SIZE: '1000' });
  await waitFor(
    () => (app.prepare('SELECT count(*) AS n FROM herald_outbox').all()[0] as { n: number }).n === 0,
    'outbox drained by the restarted node',
  );
  const again = await historyOf(second, channels);
  assert.deepEqual(
    [...again].sort((x, y) => x - y),
    Array.from({ length: 200 }, (_, n) => n),
  );
});

test('herald migrate creates both tables on Postgres and SQLite, and running it twice is harmless', async () => {
  const db = await createTestSchema();
  cleanups.push(() => db.drop());
  const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-migrate-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const url of [db.url, `file:${join(dir, 'm.db')}`]) {
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(process.execPath, [bin, 'migrate', '--database-url', url], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /herald_outbox and herald_outbox_dead are ready/);
    }
  }
  const t = await db.pool.query(
    `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename IN ('herald_outbox', 'herald_outbox_dead')`,
    [db.schema],
  );
  assert.equal(t.rows[0].n, 2);
  const none = spawnSync(process.execPath, [bin, 'migrate'], {
    encoding: 'utf8',
    env: { ...process.env, HERALD_DATABASE_URL: '' },
  });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /HERALD_DATABASE_URL/);
});

test('Postgres down at start and restarted mid-run: /ready waits for it, the node resumes and loses nothing', async (t) => {
  const { cluster, url, app, insert } = await throwawayOutboxDatabase(cleanups);

  cluster.stop();
  const node = await startHerald(url, { HERALD_OUTBOX_BATCH_SIZE: '10' });
  await waitFor(async () => {
    // The reasons are shown to the operator only (the API key).
    const r = await fetch(`http://127.0.0.1:${node.port}/ready`, { headers: { 'x-api-key': API_KEY } }).catch(
      () => undefined,
    );
    if (!r) return false;
    const body = (await r.json()) as { checks?: Record<string, string> };
    return r.status === 503 && /not reachable/.test(body.checks?.outbox ?? '');
  }, '/ready 503 saying the outbox database is not reachable');
  cluster.start();
  await waitFor(async () => (await node.ready()) === 200, '/ready 200 once Postgres is up', 20_000);

  await insert(0, 100);
  await waitFor(async () => (await historyOf(node, ['r0', 'r1'])).length === 100, 'first 100 rows');
  // Stop only after their deletes committed: a stop between publish and commit re-delivers (at least once, by design).
  await waitFor(
    async () => Number((await app.query('SELECT count(*) AS n FROM herald_outbox')).rows[0].n) === 0,
    'first 100 rows deleted',
  );
  const restartedAt = performance.now();
  cluster.stop('immediate');
  await waitFor(
    () => node.logs.some((l) => /pausing, nothing is lost/.test(l.msg ?? '')),
    'the node noticed the loss and paused',
  );
  cluster.start();
  await insert(100, 200);
  await waitFor(
    async () => (await historyOf(node, ['r0', 'r1'])).length === 200,
    'rows inserted after the restart',
    20_000,
  );
  const resumedMs = performance.now() - restartedAt;
  await waitFor(
    async () => Number((await app.query('SELECT count(*) AS n FROM herald_outbox')).rows[0].n) === 0,
    'drained',
  );
  const got = await historyOf(node, ['r0', 'r1']);
  assert.deepEqual(
    [...got].sort((x, y) => x - y),
    Array.from({ length: 200 }, (_, n) => n),
    'each row exactly once',
  );
  for (const ch of ['r0', 'r1']) {
    const ns = (await node.api('history', { channel: ch, limit: 5000 })).publications.map(
      (p: { data: { n: number } }) => p.data.n,
    );
    assert.deepEqual(
      ns,
      [...ns].sort((x: number, y: number) => x - y),
      `partition of ${ch} in id order`,
    );
  }
  t.diagnostic(`restart (immediate stop + start) to all rows delivered: ${Math.round(resumedMs)} ms`);
});
