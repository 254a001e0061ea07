// Lifecycle webhooks on one node (memory engine): every event type with its fields, the signature, batching,
// retries with the same event ids, a dead endpoint counted as dropped, a full queue, the outbox's dead letters and
// the config checks. The receiver is a plain Node HTTP server on 127.0.0.1; clients are the real `centrifuge` SDK.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ConfigError, loadConfig, createOutboxConsumer, type DisconnectContext } from '../src/index.js';
import { createSqliteStore, loadSqliteDriver, type SqliteDriver } from '../src/outbox/sqlite.js';
import { api, mintToken, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';
import { DROP, HANG, startReceiver, type WebhookReceiver } from './support/webhook-receiver.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const WEBHOOK_SECRET = 'webhook-test-secret-0123456789';
const ALL_EVENTS = [
  'connect',
  'disconnect',
  'subscribe',
  'unsubscribe',
  'channel_occupied',
  'channel_vacated',
  'presence_join',
  'presence_leave',
  'outbox_dead_letter',
];

function fileConfig(webhook: Record<string, unknown>) {
  return {
    channel: {
      namespaces: [{ name: 'room', presence: true, allow_subscribe_for_client: true }],
    },
    webhooks: [{ events: ALL_EVENTS, secret: WEBHOOK_SECRET, flush_interval: '20ms', ...webhook }],
  };
}

async function withHerald(
  t: TestContext,
  webhook: Record<string, unknown>,
  opts: Parameters<typeof startHerald>[0] = {},
): Promise<TestServer> {
  const server = await startHerald({ fileConfig: fileConfig(webhook), ...opts });
  t.after(() => server.close());
  return server;
}

async function withReceiver(t: TestContext): Promise<WebhookReceiver> {
  const r = await startReceiver();
  t.after(() => r.close());
  return r;
}

async function connected(t: TestContext, server: TestServer, user: string) {
  const client = newClient(server.wsUrl, { token: await mintToken({ sub: user }) });
  t.after(() => client.disconnect());
  const up = new Promise((resolve) => client.once('connected', resolve));
  client.connect();
  await up;
  return client;
}

async function subscribed(client: ReturnType<typeof newClient>, channel: string) {
  const sub = client.newSubscription(channel);
  const up = new Promise((resolve) => sub.once('subscribed', resolve));
  sub.subscribe();
  await up;
  return sub;
}

/** The value of one series of /metrics, or undefined when absent. */
async function metric(server: TestServer, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (m[2]!.split(',').sort().join(',') === want.join(',')) return Number(m[3]);
  }
  return undefined;
}

function ofType(r: WebhookReceiver, type: string) {
  return r.events().filter((e) => e.type === type);
}

test('each client lifecycle event reaches the webhook with its fields, in signed batches of unique ids', async (t) => {
  const r = await withReceiver(t);
  const disconnects: DisconnectContext[] = [];
  const server = await withHerald(t, { endpoint: r.url }, { hooks: { onDisconnect: (ctx) => disconnects.push(ctx) } });
  const alice1 = await connected(t, server, 'alice');
  const alice2 = await connected(t, server, 'alice');
  const bob = await connected(t, server, 'bob');
  const a1 = await subscribed(alice1, 'room:1');
  await subscribed(alice2, 'room:1');
  await subscribed(bob, 'room:1');
  await waitFor(() => ofType(r, 'subscribe').length === 3, 'three subscribe events');

  // alice's first client leaves the channel: her second client keeps her present.
  a1.unsubscribe();
  await waitFor(() => ofType(r, 'unsubscribe').length === 1, 'the unsubscribe event');
  // Every connection of alice and bob is closed by the server (3503 force disconnect).
  assert.equal((await api(server, 'disconnect', { user: 'alice' })).status, 200);
  assert.equal((await api(server, 'disconnect', { user: 'bob' })).status, 200);
  await waitFor(() => ofType(r, 'channel_vacated').length === 1, 'channel_vacated');
  await waitFor(() => ofType(r, 'disconnect').length === 3, 'three disconnect events');

  const events = r.events();
  const connects = ofType(r, 'connect');
  assert.deepEqual(connects.map((e) => e.user).sort(), ['alice', 'alice', 'bob']);
  for (const e of connects) assert.equal(typeof e.client, 'string');
  const clientOf = (e: { client?: unknown }) => e.client as string;
  for (const e of ofType(r, 'subscribe')) {
    assert.equal(e.channel, 'room:1');
    assert.ok(connects.some((c) => c.client === e.client && c.user === e.user));
  }
  const [unsub] = ofType(r, 'unsubscribe');
  assert.deepEqual(
    { user: unsub!.user, channel: unsub!.channel, code: unsub!.code, reason: unsub!.reason },
    { user: 'alice', channel: 'room:1', code: 0, reason: 'client' },
  );
  // The subscriptions that ended with their connection report its close code.
  await waitFor(() => ofType(r, 'unsubscribe').length === 3, 'the unsubscribes of the disconnected clients');
  for (const e of ofType(r, 'unsubscribe').slice(1)) {
    assert.equal(e.reason, 'disconnect');
    assert.equal(e.code, 3503);
  }
  for (const e of ofType(r, 'disconnect')) {
    assert.equal(e.code, 3503);
    assert.equal(e.reason, 'force disconnect');
    assert.ok(connects.some((c) => clientOf(c) === clientOf(e) && c.user === e.user));
  }
  assert.deepEqual(
    ofType(r, 'channel_occupied').map((e) => e.channel),
    ['room:1'],
  );
  assert.deepEqual(
    ofType(r, 'channel_vacated').map((e) => e.channel),
    ['room:1'],
  );
  // Presence is per user: alice's two clients join once and leave once.
  assert.deepEqual(
    ofType(r, 'presence_join')
      .map((e) => `${e.channel} ${e.user}`)
      .sort(),
    ['room:1 alice', 'room:1 bob'],
  );
  await waitFor(() => ofType(r, 'presence_leave').length === 2, 'two presence_leave');
  assert.deepEqual(
    ofType(r, 'presence_leave')
      .map((e) => `${e.channel} ${e.user}`)
      .sort(),
    ['room:1 alice', 'room:1 bob'],
  );
  // Occupied before vacated, join before leave (arrival order of the batches).
  const at = (type: string) => events.findIndex((e) => e.type === type);
  assert.ok(at('channel_occupied') < at('channel_vacated'));

  assert.equal(new Set(r.events().map((e) => e.id)).size, r.events().length, 'every event id is unique');
  for (const e of r.events()) assert.ok(Number.isInteger(e.time) && Math.abs(e.time - Date.now()) < 60_000);
  assert.ok(r.posts.length < r.events().length, 'events share POSTs (batches)');
  for (const p of r.posts) {
    const ts = p.headers['x-herald-timestamp'] as string;
    assert.match(ts, /^\d+$/);
    const expected = 'sha256=' + createHmac('sha256', WEBHOOK_SECRET).update(`${ts}.${p.body}`).digest('hex');
    assert.equal(p.headers['x-herald-signature'], expected);
    assert.equal(p.headers['content-type'], 'application/json');
  }
  // The application's own hook still runs beside the webhook.
  assert.equal(disconnects.length, 3);
  assert.equal(await metric(server, 'herald_webhook_events_delivered_total', { endpoint: r.url }), r.events().length);
});

test('a batch answered 500, then cut off without an answer, is sent again with the same event ids until accepted', async (t) => {
  const r = await withReceiver(t);
  r.answer = (n) => (n === 0 ? 500 : n === 1 ? DROP : 200);
  const server = await withHerald(t, { endpoint: r.url, events: ['connect'] });
  await connected(t, server, 'carol');
  await waitFor(() => r.posts.length === 3, 'three POSTs');
  const ids = r.posts.map((p) => p.events.map((e) => e.id));
  assert.equal(ids[0]!.length, 1);
  assert.deepEqual(ids[1], ids[0]);
  assert.deepEqual(ids[2], ids[0]);
  assert.equal(r.posts[2]!.body, r.posts[0]!.body, 'the same body');
  assert.equal(await metric(server, 'herald_webhook_events_delivered_total', { endpoint: r.url }), 1);
  assert.equal(await metric(server, 'herald_webhook_requests_total', { endpoint: r.url, outcome: 'http_error' }), 1);
  assert.equal(
    await metric(server, 'herald_webhook_requests_total', { endpoint: r.url, outcome: 'connection_error' }),
    1,
  );
});

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

test('a dead endpoint: the batch is retried for max_retry_duration, then counted as dropped and logged once, and the node serves on', async (t) => {
  const endpoint = `http://127.0.0.1:${await deadPort()}/hook?token=not-in-logs`;
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const server = await withHerald(
    t,
    { endpoint, events: ['connect'], max_retry_duration: '600ms', timeout: '200ms' },
    { logger: pino({ level: 'warn' }, sink) },
  );
  const label = endpoint.replace(/\?.*$/, '');
  await connected(t, server, 'dave');
  await waitFor(
    async () =>
      (await metric(server, 'herald_webhook_events_dropped_total', {
        endpoint: label,
        reason: 'retries_exhausted',
      })) === 1,
    'one event dropped after its retries',
  );
  const attempts = await metric(server, 'herald_webhook_requests_total', {
    endpoint: label,
    outcome: 'connection_error',
  });
  assert.ok(attempts !== undefined && attempts >= 2, `retried (${attempts} attempts)`);
  const dropped = lines.filter((l) => l.code === 'webhook_batch_dropped');
  assert.equal(dropped.length, 1);
  assert.equal(dropped[0]!.endpoint, label);
  assert.equal(dropped[0]!.events, 1);
  assert.ok(!JSON.stringify(lines).includes('not-in-logs'), 'the query string is never logged');
  // The node is not held up by the endpoint.
  const pub = await api(server, 'publish', { channel: 'room:x', data: { ok: true } });
  assert.equal(pub.status, 200);
  await connected(t, server, 'erin');
});

test('a full queue drops new events and counts them (queue_full) instead of growing', async (t) => {
  const r = await withReceiver(t);
  r.answer = () => HANG;
  const server = await withHerald(t, {
    endpoint: r.url,
    events: ['connect'],
    max_batch_size: 1,
    max_queue_size: 2,
    timeout: '30s',
  });
  for (let i = 0; i < 10; i++) await connected(t, server, `u${i}`);
  // 4 batches of one event in flight (never answered), 2 queued, 4 dropped.
  await waitFor(() => r.posts.length === 4, 'four POSTs in flight');
  assert.equal(
    await metric(server, 'herald_webhook_events_dropped_total', { endpoint: r.url, reason: 'queue_full' }),
    4,
  );
  assert.equal(await metric(server, 'herald_webhook_queue_events', { endpoint: r.url }), 6);
});

test('the outbox dead-letters a malformed row and the webhook gets an outbox_dead_letter event', async (t) => {
  let driver: SqliteDriver | undefined;
  for (const name of ['node:sqlite', 'better-sqlite3'] as const) {
    driver ??= await loadSqliteDriver(name).catch(() => undefined);
  }
  assert.ok(driver, 'a SQLite driver loads');
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhook-outbox-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'outbox.db');
  const r = await withReceiver(t);
  const server = await withHerald(t, { endpoint: r.url, events: ['outbox_dead_letter'] });
  const consumer = createOutboxConsumer({
    herald: server.herald,
    store: createSqliteStore(`file:${path}`, { driver: driver.name }),
    pollIntervalMs: 20,
  });
  await consumer.start();
  t.after(() => consumer.stop());
  await consumer.whenRunning();
  const db = driver.open(path);
  t.after(() => db.close());
  db.exec('PRAGMA busy_timeout = 2000');
  db.prepare('INSERT INTO herald_outbox (payload) VALUES (?)').run('{"channel": "room:1", "data": ');
  await waitFor(() => r.events().length === 1, 'the outbox_dead_letter event');
  const [e] = r.events();
  assert.equal(e!.type, 'outbox_dead_letter');
  assert.equal(e!.method, 'publish');
  assert.equal(e!.dead_letter_table, true);
  assert.match(String(e!.error), /not JSON/);
  assert.equal(typeof e!.outbox_id, 'string');
  assert.equal(typeof e!.partition, 'string');
});

/** A self-signed certificate for 127.0.0.1 (its own CA), made with openssl. */
function selfSigned(t: TestContext): { key: string; cert: string; certFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhook-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  assert.equal(made.status, 0, made.stderr.toString());
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

test('an https endpoint with a certificate from a private CA is refused unless http.tls.server_ca_pem trusts that CA', async (t) => {
  const tls = selfSigned(t);
  const r = await startReceiver('/hook', { key: tls.key, cert: tls.cert });
  t.after(() => r.close());
  const untrusted = await withHerald(t, {
    endpoint: r.url,
    events: ['connect'],
    max_retry_duration: '300ms',
  });
  await connected(t, untrusted, 'frank');
  await waitFor(
    async () =>
      (await metric(untrusted, 'herald_webhook_events_dropped_total', {
        endpoint: r.url,
        reason: 'retries_exhausted',
      })) === 1,
    'the event dropped: the certificate is not trusted',
  );
  assert.equal(r.posts.length, 0, 'nothing reached the endpoint');

  const trusted = await withHerald(t, {
    endpoint: r.url,
    events: ['connect'],
    http: { tls: { server_ca_pem: tls.certFile } },
  });
  await connected(t, trusted, 'grace');
  await waitFor(() => r.events().some((e) => e.user === 'grace'), 'the event over https');
  assert.equal(await metric(trusted, 'herald_webhook_events_delivered_total', { endpoint: r.url }), 1);
});

test('the webhooks config refuses a missing secret, misspelt keys and event types (naming the one meant), and a non-URL endpoint', () => {
  const problems = (fileConfig: unknown): string[] => {
    try {
      loadConfig({ fileConfig });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
    assert.fail('the config was accepted');
  };
  assert.match(
    problems({ webhooks: [{ endpoint: 'https://app.test/hook', events: ['connect'] }] }).join('\n'),
    /webhooks\[0\]\.secret: required, at least 16 characters/,
  );
  assert.match(
    problems({ webhooks: [{ endpoint: 'https://app.test/hook', events: ['connect'], secret: 'short' }] }).join('\n'),
    /webhooks\[0\]\.secret: required/,
  );
  const typos = problems({
    webhooks: [{ endpiont: 'https://app.test/hook', events: ['conect', 'channel_ocupied'], secret: WEBHOOK_SECRET }],
  }).join('\n');
  assert.match(typos, /webhooks\[0\]\.endpiont: unknown option; did you mean "webhooks\[0\]\.endpoint"\?/);
  assert.match(typos, /"conect" is not an event type; did you mean "connect"\?/);
  assert.match(typos, /"channel_ocupied" is not an event type; did you mean "channel_occupied"\?/);
  assert.match(typos, /webhooks\[0\]\.endpoint: required/);
  assert.match(
    problems({ webhooks: [{ endpoint: 'ftp://app.test/hook', events: ['connect'], secret: WEBHOOK_SECRET }] }).join(
      '\n',
    ),
    /is not an http:\/\/ or https:\/\/ URL/,
  );
  assert.match(problems({ webhook: [] }).join('\n'), /webhook: unknown option; did you mean "webhooks"\?/);
  const tlsProblems = problems({
    webhooks: [
      {
        endpoint: 'https://app.test/hook',
        events: ['connect'],
        secret: WEBHOOK_SECRET,
        http: { tls: { insecure_skip_verify: true, server_ca_pem: '/nonexistent/ca.pem' } },
      },
    ],
  }).join('\n');
  assert.match(tlsProblems, /insecure_skip_verify: Herald always verifies the endpoint's certificate/);
  assert.match(tlsProblems, /server_ca_pem: the CA file \/nonexistent\/ca\.pem cannot be read \(ENOENT\)/);
  const ok = loadConfig({
    fileConfig: { webhooks: [{ endpoint: 'https://app.test/hook', events: ['connect'], secret: WEBHOOK_SECRET }] },
  });
  assert.deepEqual(ok.webhooks[0], {
    endpoint: 'https://app.test/hook',
    events: ['connect'],
    secret: WEBHOOK_SECRET,
    timeoutMs: 5000,
    maxBatchSize: 100,
    flushIntervalMs: 100,
    maxQueueSize: 10000,
    maxRetryDurationMs: 300000,
  });
});
