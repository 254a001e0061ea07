// The admin UI's outbox endpoints over real HTTP, on a real Postgres schema of their own and on a SQLite file: the
// summary (pending rows, oldest age, dead letters), and a dead letter listed, retried (the consumer takes it again)
// and deleted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createHerald, createOutboxConsumer, migrateOutbox } from '../src/index.js';
import { createPostgresStore } from '../src/outbox/postgres.js';
import { loadSqliteDriver } from '../src/outbox/sqlite.js';
import { createTestSchema } from './outbox-helpers.js';
import { waitFor } from './support/herald.js';

const PASSWORD = 'outbox-admin-password';

async function adminOn(url: string, insertBad: () => Promise<void>, t: { after(fn: () => Promise<void>): void }) {
  const herald = createHerald({
    logger: false,
    env: {
      HERALD_CLIENT_INSECURE: 'true',
      HERALD_ADMIN_ENABLED: 'true',
      HERALD_ADMIN_PASSWORD: PASSWORD,
      HERALD_ADMIN_SECRET: 'outbox-admin-secret-0123456789',
    },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${addr.port}`;
  const consumer = createOutboxConsumer({ herald, url, pollIntervalMs: 100, schemaRecheckMs: 100 });
  await consumer.start();
  t.after(async () => {
    await consumer.stop();
    await herald.close();
  });
  await consumer.whenRunning(20_000);
  const login = await fetch(`${base}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base },
    body: JSON.stringify({ password: PASSWORD }),
  });
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const post = async (route: string, body: unknown = {}) => {
    const res = await fetch(`${base}/admin/api/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base, cookie },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  await insertBad();
  return { post };
}

async function deadLetterRoundTrip(post: (route: string, body?: unknown) => Promise<{ status: number; body: any }>) {
  const first = await waitFor(async () => {
    const r = await post('outbox');
    return r.body.result.dead.length === 1 ? r.body.result : undefined;
  }, 'a dead letter listed');
  assert.equal(first.enabled, true);
  assert.equal(first.summary.pending, 0);
  assert.equal(first.summary.dead, 1);
  const dead = first.dead[0];
  assert.equal(dead.partition, '3');
  assert.match(dead.error, /unknown channel/);
  assert.deepEqual(JSON.parse(dead.payload), { channel: 'nowhere:x', data: { n: 1 } });

  assert.equal((await post('outbox/retry', { id: dead.id })).status, 200);
  // Taken again by the consumer, still refused (the namespace does not exist): dead again under a new id.
  const again = await waitFor(async () => {
    const r = await post('outbox');
    const d = r.body.result.dead;
    return d.length === 1 && d[0].id !== dead.id ? d[0] : undefined;
  }, 'the retried row dead-lettered again');
  assert.equal((await post('outbox/retry', { id: dead.id })).status, 404, 'the old id is gone');

  assert.equal((await post('outbox/delete', { id: again.id })).status, 200);
  const after = await post('outbox');
  assert.deepEqual(after.body.result.dead, []);
  assert.equal(after.body.result.summary.dead, 0);
  assert.equal((await post('outbox/delete', { id: 'x1' })).status, 400);
}

describe('admin outbox endpoints', () => {
  test('on Postgres a dead letter is listed with its payload and error, retried through the consumer and deleted', async (t) => {
    const schema = await createTestSchema();
    t.after(() => schema.drop());
    await migrateOutbox(schema.url);
    const { post } = await adminOn(
      schema.url,
      () => schema.insert([{ channel: 'nowhere:x', data: { n: 1 }, partition: 3 }]),
      t,
    );
    await deadLetterRoundTrip(post);
  });

  test('on SQLite a dead letter is listed with its payload and error, retried through the consumer and deleted', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-admin-outbox-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'outbox.db');
    const { post } = await adminOn(
      `file:${file}`,
      async () => {
        // node:sqlite where this Node has it (CI's Node 24 run), else better-sqlite3: the driver Herald itself picks.
        const db = (await loadSqliteDriver()).open(file);
        db.prepare('INSERT INTO herald_outbox (payload, partition) VALUES (?, 3)').run(
          JSON.stringify({ channel: 'nowhere:x', data: { n: 1 } }),
        );
        db.close();
      },
      t,
    );
    await deadLetterRoundTrip(post);
  });

  test('without an outbox the endpoint says so', async (t) => {
    const herald = createHerald({
      logger: false,
      env: { HERALD_ADMIN_ENABLED: 'true', HERALD_ADMIN_INSECURE: 'true' },
    });
    const addr = await herald.listen(0, '127.0.0.1');
    t.after(() => herald.close());
    const base = `http://127.0.0.1:${addr.port}`;
    const res = await fetch(`${base}/admin/api/outbox`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: '{}',
    });
    assert.deepEqual(await res.json(), { result: { enabled: false } });
  });
});

describe('admin outbox overview', () => {
  test('on Postgres the overview never counts a row as both waiting and dead (nor as neither) while it is moved back and forth', async (t) => {
    const schema = await createTestSchema();
    t.after(() => schema.drop());
    await migrateOutbox(schema.url);
    const store = createPostgresStore(schema.url);
    t.after(() => store.close());
    await store.connect();
    await schema.insert([{ channel: 'nowhere:x', data: { n: 1 }, partition: 1 }]);
    // What the consumer (dead-lettering) and the admin UI's retry do, each in one transaction, 150 times each way.
    const toDead = `WITH gone AS (DELETE FROM herald_outbox RETURNING id, method, payload, partition, created_at)
      INSERT INTO herald_outbox_dead (id, method, payload, partition, created_at, error)
      SELECT id, method, payload, partition, created_at, 'moved' FROM gone`;
    const back = `WITH gone AS (DELETE FROM herald_outbox_dead RETURNING method, payload, partition)
      INSERT INTO herald_outbox (method, payload, partition) SELECT method, payload, partition FROM gone`;
    let moving = true;
    const mover = (async () => {
      for (let i = 0; i < 150; i++) {
        await schema.pool.query(toDead);
        await schema.pool.query(back);
      }
      moving = false;
    })();
    const seen: string[] = [];
    let reads = 0;
    while (moving && reads < 2000) {
      const { summary, dead } = await store.admin!.overview(10);
      reads++;
      const shape = `pending ${summary.pending}, dead ${summary.dead}, listed ${dead.length}`;
      if (summary.pending + (summary.dead ?? 0) !== 1 || dead.length !== summary.dead) seen.push(shape);
    }
    await mover;
    assert.ok(reads > 10, `only ${reads} overviews were read while the row moved`);
    assert.deepEqual(seen, []);
  });
});
