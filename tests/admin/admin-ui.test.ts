// The admin web UI in Debian's Chromium (playwright-core), against two real `herald serve` nodes on one Redis and
// real `centrifuge` SDK clients: login, the live node table and connection chart, a publication from the form, the
// live tail and history, and a disconnect with a chosen code. Screenshots: test-results/admin-overview.png and
// test-results/admin-channel.png (not committed).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { Centrifuge, type Options } from 'centrifuge';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../e2e/support/browser.js';
import { Cluster, token, type HeraldNode } from '../scaling/support/nodes.js';
import { waitFor } from '../scaling/support/util.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `herald-admin-${process.pid}-${Date.now().toString(36)}`;
const PASSWORD = 'admin-ui-test-password';
const RESULTS = resolve(import.meta.dirname, '..', '..', 'test-results');
/** Browser waits: generous, the machine is shared; a wait that runs out fails with what it waited for. */
const UI_WAIT = 30_000;

function sdk(node: HeraldNode, user: string): Centrifuge {
  return new Centrifuge(node.wsUrl, {
    websocket: WebSocket as unknown as Options['websocket'],
    getToken: () => token(user),
    minReconnectDelay: 100,
    maxReconnectDelay: 1000,
    timeout: 10_000,
  });
}

async function connected(c: Centrifuge): Promise<void> {
  if (c.state === 'connected') return;
  await new Promise<void>((r) => c.once('connected', () => r()));
}

describe('admin UI on two Redis nodes, in Chromium', { timeout: 300_000 }, () => {
  const cluster = new Cluster(REDIS_URL, prefix, {
    HERALD_ADMIN_ENABLED: 'true',
    HERALD_ADMIN_PASSWORD: PASSWORD,
    HERALD_ADMIN_SECRET: 'admin-ui-test-secret-0123456789abcdef',
  });
  let n1: HeraldNode;
  let n2: HeraldNode;
  let browser: Browser;
  let page: Page;
  const clients: Centrifuge[] = [];
  let redis: Redis;
  const outboxDir = mkdtempSync(join(tmpdir(), 'herald-admin-outbox-'));
  const outboxFile = join(outboxDir, 'outbox.db');

  before(async () => {
    redis = new Redis(REDIS_URL);
    // node-a runs an outbox on a SQLite file of its own (created at start: the file holds only Herald's tables).
    [n1, n2] = await Promise.all([
      cluster.start('node-a', { HERALD_DATABASE_URL: `file:${outboxFile}` }),
      cluster.start('node-b'),
    ]);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(UI_WAIT);
    mkdirSync(RESULTS, { recursive: true });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await browser?.close();
    await cluster.stop();
    const keys = await redis.keys(`${prefix}.*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    rmSync(outboxDir, { recursive: true, force: true });
  });

  const nodeConnections = async (name: string) =>
    Number(
      await page
        .locator(`[data-testid="node-row"][data-node="${name}"] [data-testid="node-connections"]`)
        .textContent(),
    );
  const chartConnections = async () =>
    Number(
      await page.locator('[data-testid="chart-connections"] [data-series="connections"]').getAttribute('data-last'),
    );

  test('a wrong password is refused and the right one opens the overview with both nodes', async () => {
    await page.goto(`http://127.0.0.1:${n1.port}/admin/`);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('login-error').waitFor();
    assert.match((await page.getByTestId('login-error').textContent())!, /wrong password/);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('[data-testid="node-row"][data-node="node-a"]').waitFor();
    await page.locator('[data-testid="node-row"][data-node="node-b"]').waitFor();
    assert.equal(await page.getByTestId('live-state').textContent(), 'connected');
  });

  test('the node table and the connection chart follow 50 SDK clients connecting to node-b and leaving', async () => {
    await waitFor(async () => (await nodeConnections('node-b')) === 0, 'node-b at 0 connections', UI_WAIT);
    const before = await chartConnections();
    const batch: Centrifuge[] = [];
    for (let i = 0; i < 50; i++) batch.push(sdk(n2, `load-${i}`));
    clients.push(...batch);
    for (const c of batch) c.connect();
    await Promise.all(batch.map(connected));
    await waitFor(async () => (await nodeConnections('node-b')) === 50, 'node-b showing 50 connections', UI_WAIT);
    await waitFor(async () => (await chartConnections()) === before + 50, 'the chart at +50', UI_WAIT);
    await page.screenshot({ path: join(RESULTS, 'admin-overview.png'), fullPage: true });
    for (const c of batch) c.disconnect();
    await waitFor(async () => (await nodeConnections('node-b')) === 0, 'node-b back to 0 connections', UI_WAIT);
    await waitFor(async () => (await chartConnections()) === before, 'the chart back where it was', UI_WAIT);
  });

  test('a publication from the form reaches an SDK subscriber on the other node and shows in the live tail and history', async () => {
    const channel = 'room:admin-e2e';
    const reader = sdk(n2, 'reader');
    clients.push(reader);
    const got: unknown[] = [];
    const sub = reader.newSubscription(channel);
    sub.on('publication', (ctx) => got.push(ctx.data));
    const subscribed = new Promise<void>((r) => sub.once('subscribed', () => r()));
    sub.subscribe();
    reader.connect();
    await subscribed;

    await page.goto(`http://127.0.0.1:${n1.port}/admin/#/channels/${encodeURIComponent(channel)}`);
    await page.getByTestId('channel-name').waitFor();
    await waitFor(
      async () => (await page.getByTestId('tail-status').textContent()) === 'live',
      'the live tail',
      UI_WAIT,
    );

    const box = page.getByLabel('publication data (JSON)');
    await box.fill('{"text": ');
    await page.getByTestId('json-error').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Publish' }).isDisabled(), true);
    await box.fill('{"text": "from the admin page", "n": 1}');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByTestId('publish-result').waitFor();
    assert.match((await page.getByTestId('publish-result').textContent())!, /published at offset 1/);

    await waitFor(() => got.length === 1, 'the publication at the SDK subscriber', UI_WAIT);
    assert.deepEqual(got[0], { text: 'from the admin page', n: 1 });
    await page.getByTestId('tail-item').first().waitFor();
    assert.match((await page.getByTestId('tail-item').first().textContent())!, /"text": "from the admin page"/);
    await page.getByTestId('history-item').first().waitFor();
    assert.match((await page.getByTestId('history-item').first().textContent())!, /offset 1.*from the admin page/s);
    assert.match((await page.getByTestId('history-position').textContent())!, /top offset 1, epoch \S+/);

    // A publication from elsewhere (the HTTP API on node-b) shows in the tail too.
    const r = await n2.api('publish', { channel, data: { text: 'via the API on node-b' } });
    assert.equal(r.status, 200);
    await waitFor(
      async () => (await page.getByTestId('tail-item').first().textContent())!.includes('via the API on node-b'),
      'the API publication in the tail',
      UI_WAIT,
    );
    await page.screenshot({ path: join(RESULTS, 'admin-channel.png'), fullPage: true });
  });

  test('disconnecting a user from the UI closes their SDK connection on the other node with the chosen code', async () => {
    const bob = sdk(n2, 'bob');
    clients.push(bob);
    const closed = new Promise<number>((r) => bob.once('disconnected', (ctx) => r(ctx.code)));
    bob.connect();
    await connected(bob);

    await page.goto(`http://127.0.0.1:${n1.port}/admin/#/users`);
    await page.getByLabel('user id').fill('bob');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('button', { name: 'Disconnect bob everywhere…' }).click();
    await page.getByLabel('close code').selectOption('4500');
    await page.getByTestId('confirm').waitFor();
    assert.match((await page.getByTestId('confirm').textContent())!, /every connection of bob with code 4500/);
    await page.getByRole('button', { name: 'Confirm' }).click();
    assert.equal(await closed, 4500);
    await page.getByTestId('users-message').waitFor();
    assert.match((await page.getByTestId('users-message').textContent())!, /with 4500/);
  });

  test('a dead letter of the outbox shows up, can be inspected, retried (published again by the consumer) and deleted', async () => {
    const db = new Database(outboxFile);
    try {
      db.prepare('INSERT INTO herald_outbox (payload, partition) VALUES (?, 7)').run('{"channel": "room:x", "data": ');
    } finally {
      db.close();
    }
    await page.goto(`http://127.0.0.1:${n1.port}/admin/#/integrations`);
    const row = page.getByTestId('dead-row');
    await waitFor(
      async () => {
        await page.getByRole('button', { name: 'Reload' }).click();
        return (await row.count()) === 1;
      },
      'the dead letter in the table',
      UI_WAIT,
    );
    const firstId = (await row.first().getAttribute('data-id'))!;
    assert.match((await row.first().textContent())!, /payload is not JSON/);
    await row.first().getByRole('button', { name: 'Inspect' }).click();
    assert.match((await page.getByTestId('dead-payload').textContent())!, /"channel": "room:x"/);

    await row.first().getByRole('button', { name: 'Retry…' }).click();
    assert.match((await page.getByTestId('confirm').textContent())!, new RegExp(`dead letter ${firstId} back`));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('outbox-message').waitFor();
    // The consumer took the row again (a new id) and, its payload still broken, dead-lettered it again.
    await waitFor(
      async () => {
        await page.getByRole('button', { name: 'Reload' }).click();
        const ids = await row.evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
        return ids.length === 1 && ids[0] !== firstId;
      },
      'the retried row dead-lettered again under a new id',
      UI_WAIT,
    );
    await row.first().getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await waitFor(async () => (await row.count()) === 0, 'the dead letter deleted', UI_WAIT);
    const check = new Database(outboxFile, { readonly: true });
    try {
      assert.equal((check.prepare('SELECT count(*) AS n FROM herald_outbox_dead').get() as { n: number }).n, 0);
      assert.equal((check.prepare('SELECT count(*) AS n FROM herald_outbox').get() as { n: number }).n, 0);
    } finally {
      check.close();
    }
    assert.match((await page.getByTestId('outbox-summary').textContent())!, /0 pending row\(s\), 0 dead letter\(s\)/);
  });

  test('admin requests without the session cookie or from a foreign Origin are refused', async () => {
    const noCookie = await fetch(`http://127.0.0.1:${n1.port}/admin/api/call/disconnect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${n1.port}` },
      body: JSON.stringify({ user: 'reader' }),
    });
    assert.equal(noCookie.status, 401);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'herald_admin');
    assert.ok(session, 'the browser holds the session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    const foreign = await fetch(`http://127.0.0.1:${n1.port}/admin/api/call/disconnect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: 'http://attacker.example',
        cookie: `herald_admin=${session.value}`,
      },
      body: JSON.stringify({ user: 'reader' }),
    });
    assert.equal(foreign.status, 403);
  });
});
