// A Prisma user's path: Prisma Client (driver adapter @prisma/adapter-pg, no engine binary) writes the order and the
// outbox row in one $transaction; Herald's consumer publishes it to a WebSocket subscriber.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadSqliteDriver } from '../../packages/server/src/outbox/sqlite.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHerald, createOutboxConsumer, migrateOutbox } from '../../packages/server/src/index.js';
import { collect, createTestSchema, openChannels, waitFor } from '../../packages/server/test/outbox-helpers.js';

const root = resolve(import.meta.dirname, '..', '..');
const prismaCli = join(root, 'node_modules', 'prisma', 'build', 'index.js');
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse())
    await Promise.resolve()
      .then(c)
      .catch((err) => console.error('cleanup failed:', err));
});

/**
 * `prisma generate` without network: Prisma 7's client needs no query engine, and the schema engine binary (which
 * generate does not run) only has to exist, so any file will do.
 */
function generate(schemaDir: string): void {
  if (!existsSync(prismaCli))
    throw new Error(`prisma is not installed at ${prismaCli}: run npm ci (a devDependency of @herald/server)`);
  const dir = mkdtempSync(join(tmpdir(), 'herald-prisma-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const fakeEngine = join(dir, 'schema-engine');
  writeFileSync(fakeEngine, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const r = spawnSync(
    process.execPath,
    [prismaCli, 'generate', '--schema', join(import.meta.dirname, schemaDir, 'schema.prisma')],
    {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: fakeEngine,
        PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING: '1',
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
        CHECKPOINT_DISABLE: '1',
      },
    },
  );
  if (r.status !== 0) throw new Error(`prisma generate failed (${r.status}): ${r.stderr}${r.stdout}`);
}

test('a Prisma $transaction writes the order and the outbox row together, and a subscriber receives the event', async () => {
  generate('prisma');
  const db = await createTestSchema();
  cleanups.push(() => db.drop());
  await migrateOutbox(db.url);
  await db.pool.query('CREATE TABLE orders (id serial PRIMARY KEY, total integer NOT NULL)');

  const { PrismaClient } = await import(
    pathToFileURL(join(root, 'node_modules', '.herald-outbox-prisma', 'client.ts')).href
  );
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }, { schema: db.schema }) });
  cleanups.push(() => prisma.$disconnect());

  const herald = createHerald({ env: { HERALD_CLIENT_INSECURE: 'true' }, logger: false, config: openChannels });
  const { port } = await herald.listen(0, '127.0.0.1');
  const consumer = createOutboxConsumer({ herald, url: db.url, pollIntervalMs: 200 });
  cleanups.push(async () => {
    await consumer.stop();
    await herald.close();
  });
  await consumer.start();
  await consumer.whenRunning();
  const sub = await collect(port, ['orders']);
  cleanups.push(() => sub.close());

  // The batch form a Prisma user writes: both creates commit together or not at all.
  const [order] = await prisma.$transaction([
    prisma.order.create({ data: { total: 42 } }),
    prisma.heraldOutbox.create({ data: { payload: { channel: 'orders', data: { event: 'created', total: 42 } } } }),
  ]);
  await waitFor(() => sub.received.length === 1, 'the order event');
  assert.deepEqual(sub.received[0]!.data, { event: 'created', total: 42 });

  // An interactive transaction that throws after writing both: neither the order nor the event exists.
  await assert.rejects(
    prisma.$transaction(async (tx: any) => {
      await tx.order.create({ data: { total: 7 } });
      await tx.heraldOutbox.create({ data: { payload: { channel: 'orders', data: { event: 'created', total: 7 } } } });
      throw new Error('payment declined');
    }),
    /payment declined/,
  );
  await prisma.heraldOutbox.create({ data: { payload: { channel: 'orders', data: { event: 'marker' } } } });
  await waitFor(() => sub.received.some((r) => r.data?.event === 'marker'), 'the marker event');
  assert.deepEqual(
    sub.received.map((r) => r.data.total ?? r.data.event),
    [42, 'marker'],
  );
  assert.deepEqual(
    (await prisma.order.findMany()).map((o: { id: number }) => o.id),
    [order.id],
  );
  await waitFor(async () => (await db.count()) === 0, 'outbox drained');
});

test("Prisma on SQLite (adapter-better-sqlite3) writes into Herald's SQLite table and the event is delivered", async () => {
  generate('prisma-sqlite');
  const dir = mkdtempSync(join(tmpdir(), 'herald-prisma-sqlite-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'app.db');
  await migrateOutbox(`file:${path}`);
  const setup = (await loadSqliteDriver()).open(path);
  setup.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, total INTEGER NOT NULL)');
  setup.close();

  const { PrismaClient } = await import(
    pathToFileURL(join(root, 'node_modules', '.herald-outbox-prisma-sqlite', 'client.ts')).href
  );
  const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
  // better-sqlite3's native binding is built for the Node that ran `npm ci`. Under another Node (CI runs this suite
  // on Node 24 too), .ci/run builds one for it and names it here; better-sqlite3 takes it as `nativeBinding`.
  const nativeBinding = process.env.HERALD_TEST_BETTER_SQLITE3_BINDING;
  const prisma = new PrismaClient({
    adapter: new PrismaBetterSqlite3({ url: `file:${path}`, ...(nativeBinding ? { nativeBinding } : {}) }),
  });
  cleanups.push(() => prisma.$disconnect());

  const herald = createHerald({ env: { HERALD_CLIENT_INSECURE: 'true' }, logger: false, config: openChannels });
  const { port } = await herald.listen(0, '127.0.0.1');
  const consumer = createOutboxConsumer({ herald, url: `file:${path}`, pollIntervalMs: 50 });
  cleanups.push(async () => {
    await consumer.stop();
    await herald.close();
  });
  await consumer.start();
  await consumer.whenRunning();
  const sub = await collect(port, ['orders']);
  cleanups.push(() => sub.close());

  await prisma.$transaction([
    prisma.order.create({ data: { total: 42 } }),
    prisma.heraldOutbox.create({ data: { payload: { channel: 'orders', data: { event: 'created', total: 42 } } } }),
  ]);
  await assert.rejects(
    prisma.$transaction(async (tx: any) => {
      await tx.heraldOutbox.create({ data: { payload: { channel: 'orders', data: { event: 'created', total: 7 } } } });
      throw new Error('payment declined');
    }),
    /payment declined/,
  );
  await prisma.heraldOutbox.create({ data: { payload: { channel: 'orders', data: { event: 'marker' } } } });
  await waitFor(() => sub.received.some((r) => r.data?.event === 'marker'), 'the marker event');
  assert.deepEqual(
    sub.received.map((r) => r.data.total ?? r.data.event),
    [42, 'marker'],
  );
  await waitFor(async () => (await prisma.heraldOutbox.count()) === 0, 'outbox drained');
});
