/**
 * The Next.js example, built with `next build` and started with `next start`, driven by real Chromium against a
 * real Herald: the chat test in each deployment topology, the classic failure, and one-port embedding.
 * Needs /usr/bin/chromium and /usr/sbin/nginx (Debian packages; .ci/run installs them).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import type { Browser } from 'playwright-core';
import { createHerald, createOutboxConsumer, type Herald } from '@herald/server';
import { createHeraldClient } from '@herald/client';
import { launchChromium, logIn, openPage, send, until, type UserPage } from './support/browser.js';
import { acquireDirLock } from './support/lock.js';
import { startNginx } from './support/nginx.js';
import { freePort, run, start, stopAll, waitForHttp, type Child } from './support/processes.js';
import {
  freshDb,
  generatePrismaClients,
  heraldServe,
  redisPrefix,
  removeTempDirs,
  type ExampleDb,
  type HeraldNode,
} from './support/stack.js';

const repo = resolve(import.meta.dirname, '..', '..');
const appDir = join(repo, 'examples', 'next-app');
const nextBin = join(repo, 'node_modules', 'next', 'dist', 'bin', 'next');
const DIST = '.next-e2e';
const SECRET = 'e2e-nextauth-secret-0123456789abcdef0123456789';
const WEBHOOK_SECRET = 'e2e-webhook-secret-0123456789abcdef';
/** Where the test saves a screenshot of the chat page (named in examples/next-app/README.md; not committed). */
export const SCREENSHOT = join(appDir, 'test-results', 'chat.png');

const nextEnv = (extra: Record<string, string> = {}) => ({
  NODE_ENV: 'production',
  NEXT_TELEMETRY_DISABLED: '1',
  NEXT_DIST_DIR: DIST,
  NEXTAUTH_SECRET: SECRET,
  HERALD_WEBHOOK_SECRET: WEBHOOK_SECRET,
  ...extra,
});

async function nextBuild(env: Record<string, string>): Promise<void> {
  await run('next build', process.execPath, [nextBin, 'build'], { cwd: appDir, env: nextEnv(env), timeoutMs: 240_000 });
}

async function nextStart(
  port: number,
  env: Record<string, string> = {},
  base = `http://localhost:${port}`,
): Promise<Child> {
  const child = start('next start', process.execPath, [nextBin, 'start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: appDir,
    env: nextEnv({ NEXTAUTH_URL: base, ...env }),
  });
  await waitForHttp(`http://127.0.0.1:${port}/login`, 30_000, child);
  return child;
}

interface GatedHerald {
  herald: Herald;
  port: number;
  /** While true, Herald refuses new connections with 3011 (a reconnect code): a dropped client stays away. */
  gate: { hold: boolean; refused: number };
}

/**
 * `configFile` null: Herald with no config file, so no namespaces (the README's first start). `dbUrl`: the app's
 * database, whose outbox this Herald consumes (how chat messages reach it).
 */
async function startHerald(
  port: number,
  env: Record<string, string> = {},
  configFile: string | null = join(appDir, 'herald.config.json'),
  dbUrl?: string,
): Promise<GatedHerald> {
  const gate = { hold: false, refused: 0 };
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: SECRET, ...env },
    ...(configFile === null ? {} : { configFile }),
    logger: false,
    hooks: {
      onConnecting: () => {
        if (!gate.hold) return undefined;
        gate.refused++;
        return { disconnect: { code: 3011, reason: 'force reconnect' } };
      },
    },
  });
  if (dbUrl) {
    const outbox = createOutboxConsumer({ herald, url: dbUrl, pollIntervalMs: 50 });
    herald.onClose(() => outbox.stop());
    await outbox.start();
    await outbox.whenRunning(10_000);
  }
  await herald.listen(port, '127.0.0.1');
  return { herald, port, gate };
}

/**
 * Sends a WebSocket upgrade request over a raw TCP socket and reports what came back within `waitMs`: the HTTP status
 * (and whether Herald's marker was on it), a close without an answer, or nothing with the socket still open.
 */
function upgradeOutcome(port: number, path: string, waitMs: number): Promise<string> {
  return new Promise((resolveOutcome) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const done = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolveOutcome(outcome);
    };
    const timer = setTimeout(
      () =>
        done(
          got === ''
            ? `no answer, socket open after ${waitMs} ms`
            : `partial answer ${JSON.stringify(got.slice(0, 80))}`,
        ),
      waitMs,
    );
    socket.on('error', (err) => done(`socket error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 'not HTTP';
      done(`HTTP ${status}${/\r\nx-herald-version:/i.test(got.slice(0, end)) ? ' from Herald' : ''}`);
    });
    socket.on('close', () =>
      done(got === '' ? 'closed without an answer' : `closed after ${JSON.stringify(got.slice(0, 80))}`),
    );
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
  });
}

let browser: Browser;
let releaseLock: (() => void) | undefined;

before(async () => {
  releaseLock = await acquireDirLock(join(appDir, `${DIST}.lock`), 300_000);
  generatePrismaClients();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopAll();
  await removeTempDirs();
  releaseLock?.();
});

/**
 * Alice and Bob sign in, see each other, chat; then Herald drops Alice with a reconnect code and keeps her out
 * while Bob sends five messages. When she is back her page has every message, in order, exactly once.
 */
async function chatTest(base: string, h: GatedHerald, screenshot?: string): Promise<void> {
  const alice = await openPage(browser, 'alice');
  const bob = await openPage(browser, 'bob');
  try {
    await logIn(alice, base);
    await logIn(bob, base);
    const connected = (u: UserPage) => until(`${u.name} connected`, async () => (await u.state()) === 'connected');
    await connected(alice);
    await connected(bob);
    const both = (u: UserPage) =>
      until(
        `presence on ${u.name}'s page to show alice and bob`,
        async () => JSON.stringify(await u.presence()) === '["alice","bob"]',
      );
    await both(alice);
    await both(bob);

    await send(alice, 'hello from alice');
    await until('bob to see alice', async () => (await bob.messages()).includes('alice: hello from alice'));
    await send(bob, 'hi alice');
    await until('alice to see bob', async () => (await alice.messages()).includes('bob: hi alice'));

    h.gate.hold = true;
    await h.herald.call('disconnect', { user: 'alice', disconnect: { code: 3011, reason: 'force reconnect' } });
    await until('alice to show disconnected', async () => (await alice.state()) === 'disconnected');
    const missed = [1, 2, 3, 4, 5].map((i) => `missed ${i}`);
    for (const text of missed) {
      await send(bob, text);
      await until(`bob to see "${text}"`, async () => (await bob.messages()).includes(`bob: ${text}`));
    }
    assert.equal(await alice.state(), 'disconnected', 'alice was away while bob sent');
    assert.deepEqual(await alice.messages(), ['alice: hello from alice', 'bob: hi alice']);

    h.gate.hold = false;
    await until('alice to reconnect', async () => (await alice.state()) === 'connected', 30_000);
    // A message sent after she is back: anything duplicated by recovery would show before it.
    await send(bob, 'welcome back');
    // Both pages get it from Herald's fan-out, in no fixed order: wait for each before comparing.
    await until('alice to see "welcome back"', async () => (await alice.messages()).includes('bob: welcome back'));
    await until('bob to see "welcome back"', async () => (await bob.messages()).includes('bob: welcome back'));
    const expected = [
      'alice: hello from alice',
      'bob: hi alice',
      ...missed.map((t) => `bob: ${t}`),
      'bob: welcome back',
    ];
    assert.deepEqual(await alice.messages(), expected);
    assert.deepEqual(await bob.messages(), expected);
    assert.deepEqual(await alice.states(), ['connecting', 'connected', 'disconnected', 'connected']);
    await both(alice);
    if (screenshot) {
      mkdirSync(join(screenshot, '..'), { recursive: true });
      await alice.page.screenshot({ path: screenshot, fullPage: true });
    }
  } catch (err) {
    const tail = (u: UserPage) => `${u.name} console:\n  ${u.console.slice(-10).join('\n  ')}`;
    throw new Error(`${(err as Error).message}\n${tail(alice)}\n${tail(bob)}`, { cause: err });
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
}

const messageRows = (db: ExampleDb) =>
  db.rows<{ id: number; user_id: string; text: string }>('SELECT id, user_id, text FROM messages ORDER BY id');
const outboxRows = async (db: ExampleDb) => (await db.rows<{ id: number }>('SELECT id FROM herald_outbox')).length;
/** The chat messages waiting in the outbox (other rows there: "last seen" updates from disconnect webhooks). */
const waitingMessages = async (db: ExampleDb) =>
  (await db.rows<{ payload: unknown }>('SELECT payload FROM herald_outbox ORDER BY id'))
    // JSON text on SQLite, already parsed (jsonb) on Postgres.
    .map(
      (r) =>
        (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as {
          data: { type: string; message?: { text: string } };
        },
    )
    .filter((p) => p.data.type === 'message')
    .map((p) => p.data.message?.text);

/**
 * The stack as `npm run dev` runs it, with `next start`: herald serve consuming the outbox of a fresh database
 * (SQLite file or Postgres database) and sending disconnect webhooks to the app; with two ports, two nodes on Redis
 * (alice on the first through /ws, bob on the second through /ws-2; on SQLite only the first consumes the outbox).
 */
async function stackTest({
  heraldPorts,
  database = 'sqlite',
  screenshot,
}: {
  heraldPorts: number[];
  database?: 'sqlite' | 'postgres';
  screenshot?: string;
}): Promise<void> {
  const db = await freshDb(database);
  // One consumer per SQLite file; on Postgres every node consumes the outbox.
  const consumers = database === 'postgres' ? heraldPorts.length : 1;
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const prefix = heraldPorts.length > 1 ? redisPrefix() : undefined;
  const nodes: HeraldNode[] = [];
  for (const [i, p] of heraldPorts.entries())
    nodes.push(
      await heraldServe({
        port: p,
        appPort: port,
        secret: SECRET,
        webhookSecret: WEBHOOK_SECRET,
        dbUrl: i < consumers ? db.url : null,
        ...(prefix ? { redisPrefix: prefix } : {}),
        name: `herald-${i + 1}`,
      }),
    );
  const next = await nextStart(port, { DATABASE_URL: db.url });
  const alice = await openPage(browser, 'alice');
  const bob = await openPage(browser, 'bob');
  const bobNode = nodes.length > 1 ? nodes[1]! : nodes[0]!;
  try {
    await logIn(alice, base);
    await logIn(bob, base);
    if (nodes.length > 1) await bob.page.goto(`${base}/?node=2`);
    const connected = (u: UserPage) => until(`${u.name} connected`, async () => (await u.state()) === 'connected');
    const both = (u: UserPage) =>
      until(
        `presence on ${u.name}'s page to show alice and bob`,
        async () => JSON.stringify(await u.presence()) === '["alice","bob"]',
      );
    for (const u of [alice, bob]) await connected(u);
    for (const u of [alice, bob]) await both(u);

    // Stored, then delivered through the outbox.
    await send(alice, 'hello from alice');
    await until('bob to see alice', async () => (await bob.messages()).includes('alice: hello from alice'));
    assert.deepEqual(
      (await messageRows(db)).map((r) => [r.user_id, r.text]),
      [['alice', 'hello from alice']],
    );
    await until('the outbox drained', async () => (await outboxRows(db)) === 0);

    // A reload shows the stored message once (history from the database, then live), and live messages still come.
    await bob.page.reload();
    await connected(bob);
    await send(alice, 'after the reload');
    await until('bob to see the next message', async () => (await bob.messages()).includes('alice: after the reload'));
    assert.deepEqual(await bob.messages(), ['alice: hello from alice', 'alice: after the reload']);

    // Server-side validation: refused with a visible error, nothing stored.
    const sendError = bob.page.getByTestId('send-error');
    await send(bob, '   ');
    await until('the empty-message error', async () => (await sendError.count()) === 1);
    assert.equal(await sendError.getAttribute('data-code'), 'empty');
    assert.equal(await sendError.textContent(), 'Write something before sending.');
    assert.equal(await bob.page.getByTestId('message-input').getAttribute('aria-invalid'), 'true');
    await send(bob, 'x'.repeat(501));
    await until('the too-long error', async () => (await sendError.getAttribute('data-code')) === 'too_long');
    assert.equal(await sendError.textContent(), 'Messages are at most 500 characters; this one has 501.');
    assert.equal((await messageRows(db)).length, 2);

    // Each node in turn goes down while someone posts: the message is stored, waits in the outbox (or in Redis
    // history), and reaches every page once the node is back.
    const expected = ['alice: hello from alice', 'alice: after the reload'];
    for (const [i, node] of nodes.entries()) {
      const writer = node === bobNode && nodes.length > 1 ? alice : bob;
      const away = writer === alice ? bob : alice;
      const text = `while herald-${i + 1} was down`;
      await node.stop();
      await until(`${away.name} to show disconnected`, async () => (await away.state()) === 'disconnected');
      await send(writer, text);
      await until(`${writer.name} to show the stored message`, async () =>
        (await writer.messages()).includes(`${writer.name}: ${text}`),
      );
      assert.equal((await messageRows(db)).at(-1)?.text, text, 'stored while Herald was down');
      // The node down is the only consumer: the message waits in the outbox until it is back.
      if (consumers === 1 && i === 0)
        assert.deepEqual(await waitingMessages(db), [text], 'waiting in the outbox while its consumer is down');
      await node.restart();
      await connected(away);
      await until(`${away.name} to get "${text}"`, async () =>
        (await away.messages()).includes(`${writer.name}: ${text}`),
      );
      await until('the outbox drained', async () => (await outboxRows(db)) === 0);
      expected.push(`${writer.name}: ${text}`);
    }
    await send(bob, 'all back');
    expected.push('bob: all back');
    for (const u of [alice, bob])
      await until(`${u.name} to see "all back"`, async () => (await u.messages()).includes('bob: all back'));
    assert.deepEqual(await alice.messages(), expected);
    assert.deepEqual(await bob.messages(), expected);
    assert.deepEqual(
      (await messageRows(db)).map((r) => `${r.user_id}: ${r.text}`),
      expected,
    );

    // Bob leaves: Herald's disconnect webhook stores his last seen, published through the outbox to alice's page.
    await both(alice);
    await bob.context.close();
    const bobOffline = alice.page.locator('[data-testid="offline-member"][data-user="bob"]');
    await until('alice to see bob offline with "last seen"', async () =>
      /^last seen /.test(
        (await bobOffline
          .getByTestId('last-seen')
          .textContent()
          .catch(() => '')) ?? '',
      ),
    );
    const [row] = await db.rows<{ last_seen: unknown }>("SELECT last_seen FROM users WHERE id = 'bob'");
    assert.ok(row?.last_seen, 'users.last_seen of bob is set');

    if (screenshot) {
      mkdirSync(join(screenshot, '..'), { recursive: true });
      await alice.page.screenshot({ path: screenshot, fullPage: true });
      // Phone width: no sideways scrolling, the form keeps its accessible names.
      await alice.page.setViewportSize({ width: 390, height: 844 });
      assert.ok(
        await alice.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
        'no horizontal overflow at 390 px',
      );
      assert.equal(await alice.page.getByLabel('Message', { exact: true }).count(), 1);
      assert.equal(await alice.page.getByRole('button', { name: 'Send' }).count(), 1);
      assert.equal(await alice.page.getByRole('log', { name: 'Messages' }).count(), 1);
      await alice.page.screenshot({ path: screenshot.replace(/\.png$/, '-phone.png'), fullPage: true });
    }
  } catch (err) {
    const tail = (u: UserPage) => `${u.name} console:\n  ${u.console.slice(-10).join('\n  ')}`;
    const logs = nodes.map((n) => `${n.child.name}:\n${n.child.output().slice(-2000)}`).join('\n');
    throw new Error(
      `${(err as Error).message}\n${tail(alice)}\n${tail(bob)}\n${logs}\nnext:\n${next.output().slice(-3000)}`,
      {
        cause: err,
      },
    );
  } finally {
    await alice.context.close();
    await bob.context.close().catch(() => {});
    await next.stop();
    for (const n of nodes) await n.stop();
  }
}

/** The one [herald] console error the page printed (waits for it, then checks it stays alone over two retries). */
async function diagnosisOf(u: UserPage): Promise<string> {
  let sockets = 0;
  u.page.on('websocket', () => sockets++);
  const diagnoses = () => u.console.filter((l) => l.includes('[herald]'));
  await until('a diagnosis in the console', async () => diagnoses().length > 0, 30_000);
  const seen = sockets;
  await until('two more connection attempts', async () => sockets >= seen + 2, 40_000);
  const d = diagnoses();
  assert.equal(d.length, 1, `expected one diagnosis, got:\n${d.join('\n')}`);
  assert.match(d[0]!, /^error: /);
  return d[0]!;
}

describe('the Next.js example with a /ws rewrite (topology 1, the default)', () => {
  let heraldPort: number;
  let heraldPort2: number;
  before(async () => {
    heraldPort = await freePort();
    heraldPort2 = await freePort();
    // One build for every test of this block: /ws to the first Herald node, /ws-2 (the page at /?node=2) to a second.
    await nextBuild({
      HERALD_INTERNAL_URL: `http://127.0.0.1:${heraldPort}`,
      HERALD_INTERNAL_URL_2: `http://127.0.0.1:${heraldPort2}`,
    });
  });

  test('the whole stack (Prisma on SQLite, outbox, herald serve, webhook): stored and delivered, a reload shows it once, validation errors on the page, nothing lost across a Herald restart, "last seen" after a disconnect', async () => {
    await stackTest({ heraldPorts: [heraldPort], screenshot: SCREENSHOT });
  });

  test('the same with two Herald nodes on Redis and the SQLite outbox consumed by node 1 (alice on node 1, bob on node 2): delivered across nodes, nothing lost while either node restarts', async () => {
    await stackTest({ heraldPorts: [heraldPort, heraldPort2] });
  });

  test('the same on Postgres (DATABASE_URL=postgres://…) with two Herald nodes on Redis, both consuming the outbox (alice on node 1, bob on node 2): delivered across nodes, nothing lost while either node restarts', async () => {
    await stackTest({ heraldPorts: [heraldPort, heraldPort2], database: 'postgres' });
  });

  test('same origin through the rewrite: chat, presence, and recovery after Herald drops a user', async () => {
    const db = await freshDb();
    const h = await startHerald(heraldPort, {}, undefined, db.url);
    const port = await freePort();
    const next = await nextStart(port, { DATABASE_URL: db.url });
    try {
      await chatTest(`http://localhost:${port}`, h, SCREENSHOT);
    } finally {
      await next.stop();
      await h.herald.close();
    }
  });

  test('no gap between the stored history and the subscription: a message published after the page was rendered but before it subscribed is fetched from the database, once', async () => {
    const db = await freshDb();
    const h = await startHerald(heraldPort, {}, undefined, db.url);
    const port = await freePort();
    const next = await nextStart(port, { DATABASE_URL: db.url });
    const base = `http://localhost:${port}`;
    const alice = await openPage(browser, 'alice');
    const bob = await openPage(browser, 'bob');
    try {
      await logIn(bob, base);
      await until('bob connected', async () => (await bob.state()) === 'connected');
      await send(bob, 'before alice came');
      await until('the outbox drained', async () => (await outboxRows(db)) === 0);
      // Alice's page renders the history, but Herald keeps her out (3011, a reconnect code) for now.
      h.gate.hold = true;
      await logIn(alice, base);
      assert.deepEqual(await alice.messages(), ['bob: before alice came']);
      await until('Herald to refuse alice at least once', async () => h.gate.refused > 0);
      // Stored and published while her page has the history but no subscription: Herald cannot recover it for her.
      await send(bob, 'in the gap');
      await until('the outbox drained', async () => (await outboxRows(db)) === 0);
      assert.deepEqual(await alice.messages(), ['bob: before alice came']);
      h.gate.hold = false;
      await until('alice connected', async () => (await alice.state()) === 'connected', 30_000);
      await until('alice to get "in the gap"', async () => (await alice.messages()).includes('bob: in the gap'));
      await send(bob, 'live');
      await until('alice to get "live"', async () => (await alice.messages()).includes('bob: live'));
      assert.deepEqual(await alice.messages(), ['bob: before alice came', 'bob: in the gap', 'bob: live']);
    } finally {
      await alice.context.close();
      await bob.context.close();
      await next.stop();
      await h.herald.close();
    }
  });

  test('npm run dev -- --cluster (scripts/dev.mjs): one command migrates the database, starts next dev, two Herald nodes on Redis, prints the URLs; alice on node 1 and bob on node 2 chat', async () => {
    const port = await freePort();
    const wsPort = await freePort();
    const db = await freshDb();
    const dev = start('npm run dev', process.execPath, ['scripts/dev.mjs', '--cluster'], {
      cwd: appDir,
      env: {
        ...nextEnv({ PORT: String(port), WS_PORT: String(wsPort), DATABASE_URL: db.url }),
        NODE_ENV: 'development',
        HERALD_TOKEN_SECRET: undefined,
        HERALD_REDIS_PREFIX: redisPrefix(),
      },
    });
    const alice = await openPage(browser, 'alice');
    const bob = await openPage(browser, 'bob');
    try {
      for (const p of [wsPort, wsPort + 1]) await waitForHttp(`http://127.0.0.1:${p}/ready`, 60_000, dev);
      await waitForHttp(`http://127.0.0.1:${port}/login`, 120_000, dev);
      assert.match(dev.output(), new RegExp(`app +http://localhost:${port}`));
      assert.match(dev.output(), new RegExp(`herald +ws://localhost:${wsPort}/ws`));
      assert.match(dev.output(), new RegExp(`herald-2 +ws://localhost:${wsPort + 1}/ws .*/\\?node=2`));
      const base = `http://localhost:${port}`;
      // next dev compiles each route on its first request: ask for them once, so sign-in does not wait on it.
      for (const path of ['/api/auth/csrf', '/api/auth/providers', '/', '/api/messages', '/api/herald/token'])
        await waitForHttp(`http://127.0.0.1:${port}${path}`, 120_000, dev);
      await logIn(alice, base);
      await logIn(bob, base);
      await bob.page.goto(`${base}/?node=2`);
      for (const u of [alice, bob])
        await until(`${u.name} connected`, async () => (await u.state()) === 'connected', 60_000);
      await send(alice, 'from next dev');
      await until(
        'bob (on node 2) to see it',
        async () => (await bob.messages()).includes('alice: from next dev'),
        60_000,
      );
      assert.deepEqual(
        (await db.rows<{ text: string }>('SELECT text FROM messages')).map((r) => r.text),
        ['from next dev'],
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnpm run dev output:\n${dev.output().slice(-4000)}`, { cause: err });
    } finally {
      await alice.context.close();
      await bob.context.close();
      await dev.stop();
    }
  });

  test("the example's own start script (herald serve configured by env, next start): a signed-in user connects and chats", async () => {
    const port = await freePort();
    const db = await freshDb();
    const app = start('npm start', process.execPath, ['scripts/start.mjs'], {
      cwd: appDir,
      // No HERALD_TOKEN_SECRET: Herald falls back to NEXTAUTH_SECRET, as the README promises.
      env: {
        ...nextEnv({ PORT: String(port), WS_PORT: String(heraldPort), DATABASE_URL: db.url }),
        HERALD_TOKEN_SECRET: undefined,
      },
    });
    const alice = await openPage(browser, 'alice');
    try {
      await waitForHttp(`http://127.0.0.1:${port}/login`, 30_000, app);
      await waitForHttp(`http://127.0.0.1:${heraldPort}/health`, 30_000, app);
      await logIn(alice, `http://localhost:${port}`);
      await until('alice connected', async () => (await alice.state()) === 'connected');
      await until('presence shows alice', async () => JSON.stringify(await alice.presence()) === '["alice"]');
      await send(alice, 'through herald serve');
      await until('alice to see her message', async () =>
        (await alice.messages()).includes('alice: through herald serve'),
      );
    } finally {
      await alice.context.close();
      await app.stop();
    }
  });

  test("proxy mode (the start script with --proxy): alice connects with only her session cookie and no token route, a signed-out socket is refused with 4501, empty and too-long messages are refused on the page by the publish proxy and neither stored nor delivered, a valid one is stored and delivered (a reload shows it once), the rpc lists alice and bob, bob's disconnect shows him offline, and the cookie is never logged", async (t) => {
    const port = await freePort();
    const db = await freshDb();
    const base = `http://localhost:${port}`;
    const app = start('npm start -- --proxy', process.execPath, ['scripts/start.mjs', '--proxy'], {
      cwd: appDir,
      env: {
        ...nextEnv({ PORT: String(port), WS_PORT: String(heraldPort), DATABASE_URL: db.url }),
        HERALD_TOKEN_SECRET: undefined,
        // The most Herald logs: the session cookie must appear in none of it.
        HERALD_LOG_LEVEL: 'debug',
        HERALD_OUTBOX_POLL_MS: '50',
      },
    });
    // All of it (Child keeps only the last 64 KB), for the cookie check.
    let log = '';
    for (const stream of [app.proc.stdout!, app.proc.stderr!]) stream.on('data', (c: Buffer) => (log += c.toString()));
    const alice = await openPage(browser, 'alice');
    const bob = await openPage(browser, 'bob');
    const tokenRequests: string[] = [];
    const appPosts: string[] = [];
    for (const u of [alice, bob])
      u.page.on('request', (r) => {
        const path = new URL(r.url()).pathname;
        if (path === '/api/herald/token') tokenRequests.push(`${u.name}: ${r.url()}`);
        if (path === '/api/messages' && r.method() === 'POST') appPosts.push(`${u.name}: ${r.postData() ?? ''}`);
      });
    const visitor = createHeraldClient({
      url: `ws://localhost:${port}/ws`,
      websocket: WebSocket,
      tokenUrl: false,
      diagnose: false,
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/login`, 30_000, app);
      await waitForHttp(`http://127.0.0.1:${heraldPort}/health`, 30_000, app);
      assert.match(log, /auth +proxy mode/);

      // A visitor with no session: Herald asks the connect proxy, which closes the socket for good.
      const refused = new Promise<{ code: number; reason: string }>((resolveClose) =>
        visitor.centrifuge.on('disconnected', ({ code, reason }) => resolveClose({ code, reason })),
      );
      visitor.connect();
      assert.deepEqual(
        await Promise.race([refused, new Promise((r) => setTimeout(() => r('no disconnect in 10 s'), 10_000))]),
        { code: 4501, reason: 'sign in first' },
      );
      assert.equal(visitor.state, 'disconnected');
      // The same in Chromium, from the login page of a signed-out browser, and with a forged session cookie.
      const stranger = await openPage(browser, 'stranger');
      try {
        await stranger.page.goto(`${base}/login`);
        const rawConnect = () =>
          stranger.page.evaluate(
            () =>
              new Promise<string>((resolveClose) => {
                const ws = new WebSocket(`ws://${location.host}/ws`);
                ws.onopen = () => ws.send(JSON.stringify({ id: 1, connect: {} }));
                ws.onclose = (e) => resolveClose(`${e.code} ${e.reason}`);
              }),
          );
        assert.equal(await rawConnect(), '4501 sign in first');
        await stranger.context.addCookies([{ name: 'next-auth.session-token', value: 'forged', url: base }]);
        assert.equal(await rawConnect(), '4501 sign in first');
      } finally {
        await stranger.context.close();
      }

      await logIn(alice, base);
      await logIn(bob, base);
      const connected = (u: UserPage) => until(`${u.name} connected`, async () => (await u.state()) === 'connected');
      for (const u of [alice, bob]) await connected(u);
      for (const u of [alice, bob])
        await until(
          `presence on ${u.name}'s page to show alice and bob`,
          async () => JSON.stringify(await u.presence()) === '["alice","bob"]',
        );
      assert.equal(await alice.page.getByTestId('auth-mode').getAttribute('data-mode'), 'proxy');
      assert.deepEqual(await alice.states(), ['connecting', 'connected']);
      // Connected with only the cookie: the page never asked for a token, and the token route is off in this mode.
      assert.deepEqual(tokenRequests, []);
      const tokenRoute = await alice.page.request.get(`${base}/api/herald/token`);
      assert.equal(tokenRoute.status(), 404);
      assert.equal(((await tokenRoute.json()) as { error: string }).error, 'token_route_disabled');

      // The publish proxy refuses, the page shows it; nothing stored, nothing delivered.
      const sendError = bob.page.getByTestId('send-error');
      await send(bob, '   ');
      await until('the empty-message refusal on the page', async () => (await sendError.count()) === 1);
      assert.equal(await sendError.getAttribute('data-code'), 'empty');
      assert.equal(await sendError.textContent(), 'Write something before sending.');
      assert.equal(await bob.page.getByTestId('message-input').getAttribute('aria-invalid'), 'true');
      await send(bob, 'x'.repeat(501));
      await until('the too-long refusal', async () => (await sendError.getAttribute('data-code')) === 'too_long');
      assert.equal(await sendError.textContent(), 'Messages are at most 500 characters; this one has 501.');
      assert.deepEqual(await messageRows(db), []);

      // A valid message: stored by the publish proxy, then delivered by Herald with its database id.
      await send(alice, 'hello through the publish proxy');
      await until('bob to see it', async () =>
        (await bob.messages()).includes('alice: hello through the publish proxy'),
      );
      await until('alice to see it', async () =>
        (await alice.messages()).includes('alice: hello through the publish proxy'),
      );
      const rows = await messageRows(db);
      assert.deepEqual(
        rows.map((r) => [r.user_id, r.text]),
        [['alice', 'hello through the publish proxy']],
      );
      assert.equal(await bob.page.getByTestId('message').first().getAttribute('data-id'), String(rows[0]!.id));
      // Through Herald, not the app's POST route.
      assert.deepEqual(appPosts, []);
      // Delivered: only the valid message reached either page.
      assert.deepEqual(await bob.messages(), ['alice: hello through the publish proxy']);
      assert.deepEqual(await alice.messages(), ['alice: hello through the publish proxy']);
      await send(bob, 'hi alice');
      await until('alice to see bob', async () => (await alice.messages()).includes('bob: hi alice'));
      await until("bob's refusal cleared once his message went through", async () => (await sendError.count()) === 0);

      // A reload shows the stored messages once, and the page connects again without a token.
      await bob.page.reload();
      await connected(bob);
      assert.deepEqual(await bob.messages(), ['alice: hello through the publish proxy', 'bob: hi alice']);
      assert.deepEqual(tokenRequests, []);

      // The rpc `online`, answered by the rpc proxy from Herald's presence.
      await until('presence on alice', async () => JSON.stringify(await alice.presence()) === '["alice","bob"]');
      await alice.page.getByTestId('online-ask').click();
      const online = alice.page.getByTestId('online-result');
      await until('the rpc answer on the page', async () => (await online.count()) === 1);
      assert.equal(await online.getAttribute('data-users'), 'alice,bob');
      assert.equal(await online.textContent(), 'Online (rpc online): alice, bob');
      mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
      await alice.page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-proxy.png'), fullPage: true });

      // Bob leaves: the disconnect webhook stores his last seen and alice's page shows him offline.
      await bob.context.close();
      const bobOffline = alice.page.locator('[data-testid="offline-member"][data-user="bob"]');
      await until('alice to see bob offline with "last seen"', async () =>
        /^last seen /.test(
          (await bobOffline
            .getByTestId('last-seen')
            .textContent()
            .catch(() => '')) ?? '',
        ),
      );

      // Herald forwarded the cookie on every connect; neither Herald (at debug) nor the app logged it.
      const cookie = (await alice.context.cookies()).find((c) => c.name === 'next-auth.session-token');
      assert.ok(cookie && cookie.value.length > 100, 'alice has a session cookie');
      t.diagnostic(`${log.split('\n').length} log lines checked for the session cookie`);
      assert.match(log, /\[herald\] \{"level":\d+,.*"service":"herald"/, "Herald's log is in the output");
      assert.ok(!log.includes(cookie.value.slice(20, 60)), 'the session cookie is in the logs');
    } catch (err) {
      const tail = (u: UserPage) => `${u.name} console:\n  ${u.console.slice(-10).join('\n  ')}`;
      throw new Error(`${(err as Error).message}\n${tail(alice)}\n${tail(bob)}\nlog:\n${log.slice(-4000)}`, {
        cause: err,
      });
    } finally {
      visitor.disconnect();
      await alice.context.close();
      await bob.context.close().catch(() => {});
      await app.stop();
    }
  });

  test('Herald started without a config: the page shows why chat:lobby was refused (102) with the fix, and the console has one line for it', async (t) => {
    const h = await startHerald(heraldPort, {}, null);
    const port = await freePort();
    const next = await nextStart(port, { DATABASE_URL: (await freshDb()).url });
    const alice = await openPage(browser, 'alice');
    try {
      await logIn(alice, `http://localhost:${port}`);
      await until('alice connected', async () => (await alice.state()) === 'connected');
      const banner = alice.page.getByTestId('herald-error');
      await until('the refusal on the page', async () => (await banner.count()) === 1);
      assert.equal(await banner.getAttribute('data-code'), '102');
      const text = (await banner.textContent()) ?? '';
      assert.match(text, /Herald refused the subscription to chat:lobby with 102 \(unknown channel\)/);
      assert.match(text, /add namespace "chat" to the server's config/);
      const lines = () => alice.console.filter((l) => l.includes('[herald]'));
      await until('the console line', async () => lines().length > 0);
      t.diagnostic(lines()[0]!);
      assert.equal(lines().length, 1, lines().join('\n'));
      assert.match(lines()[0]!, /^error: \[herald\] Herald refused the subscription to chat:lobby with 102/);
      assert.match(lines()[0]!, /@herald\/server\/docs\/configuration\.md/);
    } finally {
      await alice.context.close();
      await next.stop();
      await h.herald.close();
    }
  });

  test('the rewrite with Herald not running: the console says the proxy is there but Herald behind it is not', async (t) => {
    const port = await freePort();
    const next = await nextStart(port, { DATABASE_URL: (await freshDb()).url });
    const alice = await openPage(browser, 'alice');
    try {
      await logIn(alice, `http://localhost:${port}`);
      const d = await diagnosisOf(alice);
      t.diagnostic(d);
      assert.match(
        d,
        /answered ws:\/\/localhost:\d+\/ws .* with 500: the proxy is there but Herald behind it is not reachable/,
      );
      assert.ok(!(await alice.states()).includes('connected'));
    } finally {
      await alice.context.close();
      await next.stop();
    }
  });
});

describe('the Next.js example built without the rewrite', () => {
  before(async () => {
    await nextBuild({ HERALD_REWRITE: '0' });
  });

  test('direct to NEXT_PUBLIC_HERALD_URL (topology 2, cross-origin, app origin allowed): the same chat test passes', async () => {
    const port = await freePort();
    const db = await freshDb();
    const h = await startHerald(
      await freePort(),
      { HERALD_ALLOWED_ORIGINS: `http://localhost:${port}` },
      undefined,
      db.url,
    );
    const next = await nextStart(port, { NEXT_PUBLIC_HERALD_URL: `ws://127.0.0.1:${h.port}/ws`, DATABASE_URL: db.url });
    try {
      await chatTest(`http://localhost:${port}`, h);
    } finally {
      await next.stop();
      await h.herald.close();
    }
  });

  test('direct, with the app origin missing from HERALD_ALLOWED_ORIGINS: the console names the Origin check and the value to set', async (t) => {
    const port = await freePort();
    const h = await startHerald(await freePort(), { HERALD_ALLOWED_ORIGINS: 'https://elsewhere.example' });
    const next = await nextStart(port, {
      NEXT_PUBLIC_HERALD_URL: `ws://127.0.0.1:${h.port}/ws`,
      DATABASE_URL: (await freshDb()).url,
    });
    const alice = await openPage(browser, 'alice');
    try {
      await logIn(alice, `http://localhost:${port}`);
      const d = await diagnosisOf(alice);
      t.diagnostic(d);
      assert.match(d, /refused the WebSocket upgrade/);
      assert.match(d, new RegExp(`HERALD_ALLOWED_ORIGINS=http://localhost:${port}`));
      assert.ok(!(await alice.states()).includes('connected'));
    } finally {
      await alice.context.close();
      await next.stop();
      await h.herald.close();
    }
  });

  test('nginx in front (topology 3, Debian nginx proxying /ws with the upgrade headers): the same chat test passes', async () => {
    const listen = await freePort();
    const db = await freshDb();
    const h = await startHerald(
      await freePort(),
      { HERALD_ALLOWED_ORIGINS: `http://localhost:${listen}` },
      undefined,
      db.url,
    );
    const port = await freePort();
    const next = await nextStart(port, { DATABASE_URL: db.url }, `http://localhost:${listen}`);
    const nginx = await startNginx({ listen, next: port, herald: h.port });
    try {
      await chatTest(`http://localhost:${listen}`, h);
    } finally {
      await nginx.cleanup();
      await next.stop();
      await h.herald.close();
    }
  });

  test('the classic failure: same-origin /ws with no rewrite hangs in Next.js; the console names the fix once and the page never claims connected', async (t) => {
    const port = await freePort();
    const next = await nextStart(port, { DATABASE_URL: (await freshDb()).url });
    const alice = await openPage(browser, 'alice');
    try {
      await logIn(alice, `http://localhost:${port}`);
      const d = await diagnosisOf(alice);
      t.diagnostic(d);
      assert.match(d, new RegExp(`Next\\.js answered ws://localhost:${port}/ws`));
      assert.match(d, /async rewrites\(\)/);
      assert.match(d, /source: '\/ws', destination: 'http:\/\/127\.0\.0\.1:3002\/ws'/);
      assert.match(d, /NEXT_PUBLIC_HERALD_URL=ws:\/\/localhost:3002\/ws/);
      const states = await alice.states();
      assert.ok(!states.includes('connected'), `connection-state went ${states.join(' -> ')}`);
      assert.equal(await alice.state(), 'disconnected');
    } finally {
      await alice.context.close();
      await next.stop();
    }
  });

  test("one port: a custom server embeds Herald with attach(); the chat works and other upgrades are not Herald's", async () => {
    const port = await freePort();
    const server = start('custom server', process.execPath, ['server.mjs'], {
      cwd: appDir,
      env: nextEnv({
        PORT: String(port),
        NEXTAUTH_URL: `http://localhost:${port}`,
        HERALD_TOKEN_SECRET: SECRET,
        HERALD_LOG_LEVEL: 'warn',
        DATABASE_URL: (await freshDb()).url,
      }),
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/login`, 30_000, server);
      const probe = await fetch(`http://127.0.0.1:${port}/ws`);
      assert.equal(probe.status, 426);
      assert.ok(probe.headers.get('x-herald-version'));
      await probe.arrayBuffer();

      // An upgrade to another path goes to Next.js, untouched by Herald. Next's upgrade handler (attached on the first
      // request through getRequestHandler) answers only its HMR path in dev and rewrites to a URL; for any other path
      // it neither answers nor closes the socket ("a custom WS server may be listening on the same path"). So the
      // exact outcome is a hang: no byte back and the socket still open when we stop waiting.
      assert.equal(await upgradeOutcome(port, '/_next/not-herald', 1500), 'no answer, socket open after 1500 ms');

      const alice = await openPage(browser, 'alice');
      const bob = await openPage(browser, 'bob');
      try {
        const base = `http://localhost:${port}`;
        await logIn(alice, base);
        await logIn(bob, base);
        await until('alice connected', async () => (await alice.state()) === 'connected');
        await until('bob connected', async () => (await bob.state()) === 'connected');
        await until('presence shows both', async () => JSON.stringify(await bob.presence()) === '["alice","bob"]');
        await send(alice, 'one port');
        await until('bob to see it', async () => (await bob.messages()).includes('alice: one port'));
      } finally {
        await alice.context.close();
        await bob.context.close();
      }
    } finally {
      await server.stop();
    }
  });

  test("one port in development: Next.js HMR keeps its WebSocket next to Herald's /ws on the custom server", async () => {
    const port = await freePort();
    const server = start('custom dev server', process.execPath, ['server.mjs'], {
      cwd: appDir,
      env: nextEnv({
        NODE_ENV: 'development',
        PORT: String(port),
        NEXTAUTH_URL: `http://localhost:${port}`,
        HERALD_TOKEN_SECRET: SECRET,
        HERALD_LOG_LEVEL: 'warn',
        DATABASE_URL: (await freshDb()).url,
      }),
    });
    const opened = (path: string) =>
      new Promise<string>((resolveOpen) => {
        // As a page on http://localhost:<port> would: Next.js dev refuses HMR to other origins, Herald checks Origin against Host.
        const ws = new WebSocket(`ws://localhost:${port}${path}`, { origin: `http://localhost:${port}` });
        const timer = setTimeout(() => {
          ws.terminate();
          resolveOpen('no answer in 10 s');
        }, 10_000);
        ws.on('open', () => {
          clearTimeout(timer);
          ws.close();
          resolveOpen('open');
        });
        ws.on('unexpected-response', (_req, res) => {
          clearTimeout(timer);
          ws.terminate();
          resolveOpen(`HTTP ${res.statusCode}${res.headers['x-herald-version'] ? ' from Herald' : ''}`);
        });
        ws.on('error', () => {});
      });
    try {
      // The first request compiles the page and makes Next.js attach its own upgrade listener.
      await waitForHttp(`http://127.0.0.1:${port}/login`, 90_000, server);
      assert.equal(await opened('/_next/hmr'), 'open', 'Next.js 16.3+ serves HMR on /_next/hmr');
      assert.equal(await opened('/ws'), 'open', 'Herald serves /ws on the same port');
    } finally {
      await server.stop();
    }
  });
});
