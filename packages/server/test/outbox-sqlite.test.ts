// The transactional outbox on SQLite files, with every driver this Node can load (node:sqlite on Node >= 22.5,
// better-sqlite3 where its native build matches this Node).
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHerald, createOutboxConsumer, type Herald, type OutboxConsumer } from '../src/index.js';
import { createSqliteStore, loadSqliteDriver, type SqliteDb, type SqliteDriver } from '../src/outbox/sqlite.js';
import { collect, openChannels, waitFor, type Collector } from './outbox-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const drivers: SqliteDriver[] = [];
const unavailable: string[] = [];
for (const name of ['node:sqlite', 'better-sqlite3'] as const) {
  try {
    const d = await loadSqliteDriver(name);
    d.open(':memory:').close();
    drivers.push(d);
  } catch (err) {
    unavailable.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
  }
}

test('at least one SQLite driver loads on this Node', () => {
  assert.ok(drivers.length > 0, `no SQLite driver: ${unavailable.join('; ')}`);
});

let fileNo = 0;
function newFile(): { path: string; url: string } {
  const path = join(dir, `outbox-${++fileNo}.db`);
  return { path, url: `file:${path}` };
}

const API_KEY = 'outbox-test-key';

interface Node {
  herald: Herald;
  port: number;
  consumer: OutboxConsumer;
}

async function startNode(t: TestContext, driver: SqliteDriver, url: string): Promise<Node> {
  const herald = createHerald({
    env: { HERALD_CLIENT_INSECURE: 'true', HERALD_API_KEY: API_KEY },
    logger: false,
    config: openChannels,
  });
  const addr = await herald.listen(0, '127.0.0.1');
  const consumer = createOutboxConsumer({
    herald,
    store: createSqliteStore(url, { driver: driver.name }),
    pollIntervalMs: 20,
    maxBackoffMs: 200,
    schemaRecheckMs: 100,
  });
  await consumer.start();
  t.after(async () => {
    await consumer.stop();
    await herald.close();
  });
  return { herald, port: addr.port, consumer };
}

/** The application's own connection to the file. */
function appDb(t: TestContext, driver: SqliteDriver, path: string): SqliteDb {
  const db = driver.open(path);
  db.exec('PRAGMA busy_timeout = 2000');
  t.after(() => db.close());
  return db;
}

function insert(db: SqliteDb, channel: string, data: unknown): void {
  db.prepare('INSERT INTO herald_outbox (payload) VALUES (?)').run(JSON.stringify({ channel, data }));
}

function count(db: SqliteDb, table = 'herald_outbox'): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${table}`).all()[0] as { n: number }).n;
}

async function marker(db: SqliteDb, sub: Collector, channel: string): Promise<void> {
  const id = `marker-${Math.random()}`;
  insert(db, channel, { marker: id });
  await waitFor(() => sub.received.some((r) => r.data?.marker === id), `marker ${id}`);
}

for (const driver of drivers) {
  describe(`outbox on SQLite (${driver.name})`, () => {
    test('a file only Herald uses gets the table created automatically, in WAL mode', async (t) => {
      const f = newFile();
      const node = await startNode(t, driver, f.url);
      await node.consumer.whenRunning();
      const db = appDb(t, driver, f.path);
      const cols = (db.prepare(`SELECT name FROM pragma_table_info('herald_outbox')`).all() as { name: string }[]).map(
        (c) => c.name,
      );
      assert.deepEqual(cols, ['id', 'method', 'payload', 'partition', 'created_at']);
      assert.equal(count(db, 'herald_outbox_dead'), 0);
      const mode = db.prepare('PRAGMA journal_mode').all()[0] as { journal_mode: string };
      assert.equal(mode.journal_mode, 'wal');
    });

    test("a file with the application's own tables is left alone: /ready is 503 until herald migrate runs", async (t) => {
      const f = newFile();
      const db = appDb(t, driver, f.path);
      db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)');
      const node = await startNode(t, driver, f.url);
      await waitFor(async () => {
        // The reasons are shown to the operator only (the API key).
        const r = await fetch(`http://127.0.0.1:${node.port}/ready`, { headers: { 'x-api-key': API_KEY } });
        const body = (await r.json()) as { checks?: Record<string, string> };
        return r.status === 503 && (body.checks?.outbox ?? '').includes('herald migrate');
      }, '/ready 503 naming herald migrate');
      const tables = db
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'herald%'`)
        .all().length;
      assert.equal(tables, 0, 'Herald created nothing in a file it shares');
      const migrator = createSqliteStore(f.url, { driver: driver.name });
      await migrator.connect();
      await migrator.migrate();
      await migrator.close();
      await node.consumer.whenRunning(15_000);
    });

    test('a committed row is published once and deleted; a rolled-back row is never published', async (t) => {
      const f = newFile();
      const node = await startNode(t, driver, f.url);
      await node.consumer.whenRunning();
      const sub = await collect(node.port, ['orders']);
      t.after(() => sub.close());
      const db = appDb(t, driver, f.path);
      db.exec('BEGIN');
      insert(db, 'orders', { n: 'rolled-back' });
      db.exec('ROLLBACK');
      db.exec('BEGIN');
      insert(db, 'orders', { n: 'committed' });
      db.exec('COMMIT');
      await waitFor(() => sub.received.some((r) => r.data?.n === 'committed'), 'the committed row');
      await marker(db, sub, 'orders');
      assert.equal(sub.received.filter((r) => r.data?.n === 'committed').length, 1);
      assert.equal(sub.received.filter((r) => r.data?.n === 'rolled-back').length, 0);
      await waitFor(() => count(db) === 0, 'table drained');
      const metrics = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
      assert.match(
        metrics,
        /^herald_publications_total\{source="outbox"\} 2$/m,
        'the committed row and the marker count as outbox publications',
      );
      assert.doesNotMatch(metrics, /^herald_publications_total\{source="(api|server)"\} [1-9]/m, 'and as nothing else');
    });

    test('rows are published in id order, and a malformed row goes to herald_outbox_dead without blocking the rest', async (t) => {
      const f = newFile();
      const node = await startNode(t, driver, f.url);
      await node.consumer.whenRunning();
      const sub = await collect(node.port, ['seq']);
      t.after(() => sub.close());
      const db = appDb(t, driver, f.path);
      db.exec('BEGIN');
      for (let n = 1; n <= 120; n++) {
        if (n === 50) db.prepare('INSERT INTO herald_outbox (payload) VALUES (?)').run('{"channel": "seq", "data": ');
        else insert(db, 'seq', { n });
      }
      db.exec('COMMIT');
      await waitFor(() => sub.received.length >= 119, '119 publications');
      assert.deepEqual(
        sub.received.map((r) => r.data.n),
        Array.from({ length: 120 }, (_, i) => i + 1).filter((n) => n !== 50),
      );
      await waitFor(() => count(db) === 0, 'table drained');
      const dead = db.prepare('SELECT payload, error FROM herald_outbox_dead').all() as {
        payload: string;
        error: string;
      }[];
      assert.equal(dead.length, 1);
      assert.match(dead[0]!.error, /not JSON/);
    });

    test('while the application holds the write lock, published rows are not published again once it lets go', async (t) => {
      const f = newFile();
      const node = await startNode(t, driver, f.url);
      await node.consumer.whenRunning();
      const sub = await collect(node.port, ['busy']);
      t.after(() => sub.close());
      const db = appDb(t, driver, f.path);
      insert(db, 'busy', { n: 1 });
      await waitFor(() => sub.received.length === 1, 'first row');
      // Consumer and test share this thread: nothing runs between these two synchronous calls.
      insert(db, 'busy', { n: 2 });
      db.exec('BEGIN IMMEDIATE');
      // Herald reads (WAL readers are never blocked) and publishes, but cannot delete while we hold the lock.
      try {
        await waitFor(() => sub.received.length === 2, 'second row published under the lock');
      } finally {
        db.exec('COMMIT');
      }
      await marker(db, sub, 'busy');
      assert.deepEqual(sub.received.map((r) => r.data.n).filter(Boolean), [1, 2]);
      await waitFor(() => count(db) === 0, 'table drained');
    });
  });
}
