// The session state machine (src/session.ts) driven through a fake ClientTransport on a real HeraldNode over the
// memory engine. No sockets and no ticker: tests call node.tick(now) with the simulated time they need.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/index.js';
import type { Engine } from '../src/engine/engine.js';
import { createMemoryEngine } from '../src/engine/memory/index.js';
import type { HeraldHooks } from '../src/hooks.js';
import { createLogger } from '../src/logger.js';
import { HeraldNode, type SessionCallbacks } from '../src/node.js';
import { PUBLISHES_IN_FLIGHT, type Session } from '../src/session.js';
import type { ClientTransport, SharedFrame } from '../src/transport/connection.js';
import { mintToken, SECRET, waitFor } from './support/herald.js';

const silent = createLogger('silent', false);

/** Records what the session sends, its close, pauses and resumes; reports its close back like a real socket. */
class FakeTransport implements ClientTransport {
  readonly sent: any[] = [];
  readonly closes: { code: number; reason: string }[] = [];
  paused = 0;
  resumed = 0;
  readonly remoteAddress = '127.0.0.1';
  handlers!: SessionCallbacks;
  send(text: string): void {
    for (const line of text.split('\n')) if (line.trim()) this.sent.push(JSON.parse(line));
  }
  sendShared(frame: SharedFrame): void {
    this.send(frame.text);
  }
  pause(): void {
    this.paused++;
  }
  resume(): void {
    this.resumed++;
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
    queueMicrotask(() => this.handlers.onClose(code, reason));
  }
  frame(...commands: object[]): void {
    this.handlers.onFrame(commands.map((c) => JSON.stringify(c)).join('\n'));
  }
  reply(id: number) {
    return waitFor(() => this.sent.find((m) => m.id === id), `reply ${id}`);
  }
  get closeCode(): number | undefined {
    return this.closes[0]?.code;
  }
}

const nodes: HeraldNode[] = [];
function newNode(env: Record<string, string> = {}, hooks?: HeraldHooks): HeraldNode {
  const { warnings: _w, ...config } = loadConfig({ env: { HERALD_TOKEN_SECRET: SECRET, ...env } });
  const node = new HeraldNode({
    config,
    engine: createMemoryEngine(),
    log: silent,
    tickIntervalMs: 0,
    ...(hooks ? { hooks } : {}),
  });
  nodes.push(node);
  return node;
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

function open(node: HeraldNode, headers: Record<string, string> = {}): FakeTransport {
  const t = new FakeTransport();
  t.handlers = node.openSession(t, { headers, remoteAddress: t.remoteAddress, url: '/connection/websocket' });
  return t;
}

async function connected(
  node: HeraldNode,
  claims: Record<string, unknown> = { sub: 'alice' },
  ttlSec?: number,
): Promise<FakeTransport> {
  const t = open(node);
  t.frame({ id: 1, connect: { token: await mintToken(claims, ttlSec === undefined ? {} : { ttlSec }) } });
  const r = await t.reply(1);
  assert.ok(r.connect, `connect answered ${JSON.stringify(r)}`);
  return t;
}

/** Lets pending promise callbacks run (bounded). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('Session: connect', () => {
  it('closes with 3501 a client that sends a command before connect', async () => {
    const t = open(newNode());
    t.frame({ id: 1, ping: {} });
    await turns();
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3501],
    );
    assert.equal(t.sent.length, 0);
  });

  it('closes with 3501 a client that connects a second time', async () => {
    const node = newNode();
    const t = await connected(node);
    t.frame({ id: 2, connect: { token: await mintToken({ sub: 'alice' }) } });
    await turns();
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3501],
    );
    assert.equal(
      t.sent.find((m) => m.id === 2),
      undefined,
    );
  });

  it('closes with 3502 a client that has not connected within HERALD_CONNECT_TIMEOUT, and not before', async () => {
    const node = newNode({ HERALD_CONNECT_TIMEOUT: '5s' });
    const t = open(node);
    const start = Date.now();
    node.tick(start + 4_000);
    await turns();
    assert.equal(t.closes.length, 0);
    node.tick(start + 6_000);
    await turns();
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3502],
    );
  });

  it('lets through a connect that was waiting to be read when HERALD_CONNECT_TIMEOUT passed (a node short of CPU reads it late)', async () => {
    const node = newNode({ HERALD_CONNECT_TIMEOUT: '5s' });
    const t = open(node);
    node.tick(Date.now() + 6_000);
    // The connect arrives in the same turn as the tick, before the loop gets back to I/O.
    t.frame({ id: 1, connect: { token: await mintToken({ sub: 'alice' }) } });
    const r = await t.reply(1);
    assert.ok(r.connect, `connect answered ${JSON.stringify(r)}`);
    await turns();
    assert.equal(t.closes.length, 0);
  });
});

describe('Session: pings and expiry on tick', () => {
  it('closes with 3012 a client that does not answer a ping within HERALD_PONG_TIMEOUT', async () => {
    const node = newNode({ HERALD_PING_INTERVAL: '10s', HERALD_PONG_TIMEOUT: '5s' });
    const t = await connected(node);
    const start = Date.now();
    node.tick(start + 10_000);
    assert.ok(
      t.sent.some((m) => Object.keys(m).length === 0),
      'a ping ({}) was sent',
    );
    node.tick(start + 14_000);
    await turns();
    assert.equal(t.closes.length, 0);
    node.tick(start + 15_500);
    await turns();
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3012],
    );
  });

  it('keeps a client whose pong was waiting to be read when the pong deadline passed (a node short of CPU reads it late)', async () => {
    const node = newNode({ HERALD_PING_INTERVAL: '10s', HERALD_PONG_TIMEOUT: '5s' });
    const t = await connected(node);
    const start = Date.now();
    node.tick(start + 10_000);
    node.tick(start + 15_500);
    // The pong is read in the same turn as the tick that found the deadline passed.
    t.frame({});
    await turns();
    assert.equal(t.closes.length, 0);
    node.tick(start + 20_000);
    await turns();
    assert.equal(t.closes.length, 0, 'the next ping has its own deadline');
  });

  it('does not close a client whose reading is paused past the pong deadline, and closes it with 3012 once reading resumed and the deadline passed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const node = newNode(
      { HERALD_PING_INTERVAL: '10s', HERALD_PONG_TIMEOUT: '5s', HERALD_COMMAND_RATE: '0' },
      {
        onRpc: async () => {
          await gate;
          return {};
        },
      },
    );
    const t = await connected(node);
    // A slow rpc holds the queue; 300 pings behind it fill it past its cap (4 x 64): reading pauses.
    t.frame(
      { id: 2, rpc: { method: 'slow', data: {} } },
      ...Array.from({ length: 300 }, (_, i) => ({ id: 10 + i, ping: {} })),
    );
    assert.equal(t.paused, 1);
    const start = Date.now();
    node.tick(start + 10_000);
    node.tick(start + 60_000);
    await turns();
    assert.equal(t.closes.length, 0, 'no 3012 while the server is not reading the client');
    release();
    await t.reply(309);
    assert.equal(t.resumed, 1);
    // Resuming keeps the later of the old deadline and a full pong timeout from now.
    node.tick(Date.now() + 4_000);
    await turns();
    assert.equal(t.closes.length, 0);
    node.tick(Math.max(start + 60_000, Date.now() + 5_000) + 1_000);
    await turns();
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3012],
    );
  });

  it('closes with 3005 a connection whose token expired, only after HERALD_EXPIRED_CLOSE_DELAY', async () => {
    const node = newNode({ HERALD_PING_INTERVAL: '0', HERALD_EXPIRED_CLOSE_DELAY: '10s' });
    const t = await connected(node, { sub: 'alice' }, 60);
    const expMs = (Math.floor(Date.now() / 1000) + 60) * 1000;
    node.tick(expMs + 9_000);
    assert.equal(t.closes.length, 0);
    node.tick(expMs + 11_000);
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3005],
    );
  });

  it('unsubscribes with a 2501 push a subscription whose token expired, after HERALD_EXPIRED_CLOSE_DELAY, and keeps the connection', async () => {
    const node = newNode({ HERALD_PING_INTERVAL: '0', HERALD_EXPIRED_CLOSE_DELAY: '10s' });
    const t = await connected(node);
    t.frame({
      id: 2,
      subscribe: { channel: 'room', token: await mintToken({ sub: 'alice', channel: 'room' }, { ttlSec: 60 }) },
    });
    const r = await t.reply(2);
    assert.ok(r.subscribe, `subscribe answered ${JSON.stringify(r)}`);
    const expMs = (Math.floor(Date.now() / 1000) + 60) * 1000;
    node.tick(expMs + 9_000);
    assert.equal(t.sent.filter((m) => m.push?.unsubscribe).length, 0);
    node.tick(expMs + 11_000);
    const pushes = t.sent.filter((m) => m.push?.unsubscribe);
    assert.equal(pushes.length, 1);
    assert.equal(pushes[0].push.channel, 'room');
    assert.equal(pushes[0].push.unsubscribe.code, 2501);
    assert.equal(t.closes.length, 0);
  });
});

describe('Session: the command queue', () => {
  it('runs commands strictly in order: a ping behind a slow connect (onConnecting hook) is answered after it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const node = newNode(
      { HERALD_ALLOW_ANONYMOUS: 'true' },
      {
        onConnecting: async () => {
          await gate;
          return { user: 'bob' };
        },
      },
    );
    const t = open(node);
    t.frame({ id: 1, connect: {} });
    t.frame({ id: 2, ping: {} });
    await turns();
    assert.equal(t.sent.length, 0, 'nothing answered while connect is pending');
    release();
    await t.reply(2);
    assert.deepEqual(
      t.sent.map((m) => m.id),
      [1, 2],
    );
    assert.ok(t.sent[0]?.connect);
    assert.equal(t.closes.length, 0);
  });

  it('closes with 3509 right after HERALD_MAX_ERRORS error replies to bad commands, not before', async () => {
    const node = newNode({ HERALD_MAX_ERRORS: '3' });
    const t = await connected(node);
    t.frame({ id: 2, nope: {} }, { id: 3, nope: {} }, { id: 4, nope: {} });
    await t.reply(4);
    assert.deepEqual(
      t.sent.filter((m) => m.error).map((m) => m.id),
      [2, 3, 4],
    );
    assert.equal(t.closes.length, 0);
    t.frame({ id: 5, nope: {} });
    await turns();
    assert.deepEqual(
      t.closes.map((c) => c.code),
      [3509],
    );
    assert.equal(
      t.sent.find((m) => m.id === 5),
      undefined,
    );
  });

  it('pauses reading when the backlog reaches its cap and resumes it once after draining', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const node = newNode(
      { HERALD_ALLOW_ANONYMOUS: 'true', HERALD_COMMAND_RATE: '0' },
      {
        onConnecting: async () => {
          await gate;
          return { user: 'bob' };
        },
      },
    );
    const t = open(node);
    t.frame({ id: 1, connect: {} });
    t.frame(...Array.from({ length: 254 }, (_, i) => ({ id: 2 + i, ping: {} })));
    assert.equal(t.paused, 0, '255 commands queued: under the cap of 256');
    t.frame({ id: 256, ping: {} }, { id: 257, ping: {} });
    assert.equal(t.paused, 1);
    t.frame({ id: 258, ping: {} });
    assert.equal(t.paused, 1, 'paused once');
    release();
    await t.reply(258);
    assert.equal(t.resumed, 1);
    assert.deepEqual(
      t.sent.map((m) => m.id),
      Array.from({ length: 258 }, (_, i) => i + 1),
    );
  });
});

describe('Session: the upgrade request it keeps', () => {
  const headers = { cookie: 'next-auth.session-token=' + 'x'.repeat(2000), 'user-agent': 'test' };

  it('drops the request headers at connect when no hook or proxy can read them, and keeps the URL', async () => {
    const t = open(newNode(), headers);
    const session = t.handlers as Session;
    assert.equal(session.request.headers.cookie, headers.cookie, 'kept until connect');
    t.frame({ id: 1, connect: { token: await mintToken({ sub: 'alice' }) } });
    await t.reply(1);
    assert.deepEqual(session.request.headers, {});
    assert.equal(session.request.url, '/connection/websocket');
  });

  it("keeps them for the app's hooks after connect", async () => {
    let seen: Record<string, unknown> | undefined;
    const node = newNode({}, { onSubscribed: (ctx) => void (seen = ctx.transport.headers) });
    const t = open(node, headers);
    t.frame(
      { id: 1, connect: { token: await mintToken({ sub: 'alice' }) } },
      {
        id: 2,
        subscribe: { channel: 'room', token: await mintToken({ sub: 'alice', channel: 'room' }, { ttlSec: 60 }) },
      },
    );
    assert.ok((await t.reply(2)).subscribe, 'subscribed');
    await waitFor(() => seen, 'onSubscribed ran');
    assert.equal(seen!.cookie, headers.cookie);
  });
});

describe('Session: close', () => {
  it('handles a close reported twice once: the disconnect hook runs and the disconnect is counted once, and later frames are ignored', async () => {
    const disconnects: number[] = [];
    const node = newNode(
      {},
      {
        onDisconnect: (ctx) => {
          disconnects.push(ctx.code);
        },
      },
    );
    const t = await connected(node);
    assert.equal(node.connectionCount, 1);
    t.handlers.onClose(1000, 'bye');
    t.handlers.onClose(1001, 'again');
    node.disconnectAll({ code: 3001, reason: 'shutdown' });
    t.frame({ id: 2, ping: {} });
    await turns();
    assert.deepEqual(disconnects, [1000]);
    const counted = (await node.metrics.disconnects.get()).values.map((v) => [v.labels.code, v.value]);
    assert.deepEqual(counted, [['1000', 1]], 'the disconnect is counted once');
    assert.equal(node.connectionCount, 0);
    assert.equal(t.closes.length, 0);
    assert.equal(
      t.sent.find((m) => m.id === 2),
      undefined,
    );
  });
});

describe('Session: publishes in flight', () => {
  /** The memory engine, with each publish held until the test releases it (in the order they came). */
  function gatedNode(hooks?: HeraldHooks) {
    const inner = createMemoryEngine();
    const held: { data: string; release(): void }[] = [];
    const engine: Engine = {
      ...inner,
      broker: {
        ...inner.broker,
        run: (h) => inner.broker.run(h),
        subscribe: (c) => inner.broker.subscribe(c),
        unsubscribe: (c) => inner.broker.unsubscribe(c),
        publishJoin: (c, i) => inner.broker.publishJoin(c, i),
        publishLeave: (c, i) => inner.broker.publishLeave(c, i),
        publishControl: (m) => inner.broker.publishControl(m),
        close: () => inner.broker.close(),
        publish: (channel, input, options) =>
          new Promise((resolve, reject) => {
            held.push({
              data: input.data,
              release: () => inner.broker.publish(channel, input, options).then(resolve, reject),
            });
          }),
      },
    };
    const { warnings: _w, ...config } = loadConfig({
      env: { HERALD_TOKEN_SECRET: SECRET },
      fileConfig: {
        channel: {
          namespaces: [
            {
              name: 'chat',
              allow_publish_for_client: true,
              allow_history_for_client: true,
              history_size: 1000,
              history_ttl: '300s',
            },
          ],
        },
      },
    });
    const node = new HeraldNode({ config, engine, log: silent, tickIntervalMs: 0, ...(hooks ? { hooks } : {}) });
    nodes.push(node);
    return { node, held };
  }

  const publish = (id: number, n: number, channel = 'chat:room') => ({ id, publish: { channel, data: { n } } });

  it(`has at most ${PUBLISHES_IN_FLIGHT} of one connection's publishes to different channels in the engine at once, handed over in the order sent`, async () => {
    const { node, held } = gatedNode();
    const t = await connected(node);
    t.frame(...Array.from({ length: 100 }, (_, n) => publish(n + 10, n, `chat:user${n}`)));
    await turns();
    assert.equal(held.length, PUBLISHES_IN_FLIGHT);
    assert.deepEqual(
      held.map((h) => (JSON.parse(h.data) as { n: number }).n),
      Array.from({ length: PUBLISHES_IN_FLIGHT }, (_, n) => n),
    );
    for (const h of held.slice(0, 10)) h.release();
    await turns();
    assert.equal(held.length, PUBLISHES_IN_FLIGHT + 10);
    for (let released = 10; released < 100; released++) {
      held[released]!.release();
      await turns(2);
    }
    await waitFor(() => t.sent.filter((m) => m.id >= 10 && m.publish).length === 100, 'all 100 publish replies');
    assert.deepEqual(
      held.map((h) => (JSON.parse(h.data) as { n: number }).n),
      Array.from({ length: 100 }, (_, n) => n),
    );
  });

  it('hands a publish to the engine only once the previous one to the same channel is stored', async () => {
    const { node, held } = gatedNode();
    const t = await connected(node);
    t.frame(publish(10, 0, 'chat:a'), publish(11, 1, 'chat:b'), publish(12, 2, 'chat:a'), publish(13, 3, 'chat:c'));
    await turns();
    assert.deepEqual(
      held.map((h) => (JSON.parse(h.data) as { n: number }).n),
      [0, 1],
      'the second publish to chat:a waits, and so does everything after it',
    );
    held[1]!.release();
    await turns();
    assert.equal(held.length, 2, 'chat:b stored changes nothing for chat:a');
    held[0]!.release();
    await waitFor(() => held.length === 4, 'the rest reach the engine');
    assert.deepEqual(
      held.map((h) => (JSON.parse(h.data) as { n: number }).n),
      [0, 1, 2, 3],
    );
    for (const h of held.slice(2)) h.release();
    await waitFor(() => t.sent.filter((m) => m.id >= 10 && m.publish).length === 4, 'all 4 publish replies');
  });

  it('answers a command that follows publishes only after they are stored, so a history read sees them', async () => {
    const { node, held } = gatedNode();
    const t = await connected(node);
    t.frame(publish(10, 0), publish(11, 1, 'chat:other'), publish(12, 2), {
      id: 20,
      history: { channel: 'chat:room', limit: 10 },
    });
    await turns();
    assert.equal(held.length, 2);
    held[1]!.release();
    held[0]!.release();
    await waitFor(() => held.length === 3, 'the second publish to chat:room reaches the engine');
    await turns();
    assert.equal(
      t.sent.find((m) => m.id === 20),
      undefined,
      'the history read waits for the publish in flight',
    );
    held[2]!.release();
    const r = await t.reply(20);
    assert.deepEqual(
      r.history.publications.map((p: { data: { n: number } }) => p.data.n),
      [0, 2],
    );
  });

  it('runs publishes one at a time when an onPublish hook is set', async () => {
    let running = 0;
    let most = 0;
    const { node, held } = gatedNode({
      onPublish: async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setImmediate(r));
        running--;
      },
    });
    const t = await connected(node);
    t.frame(...Array.from({ length: 5 }, (_, n) => publish(n + 10, n)));
    for (let i = 0; i < 5; i++) {
      await waitFor(() => held.length === i + 1, `publish ${i} reaches the engine`);
      await turns();
      assert.equal(held.length, i + 1, 'the next publish waits for this one');
      held[i]!.release();
    }
    await waitFor(() => t.sent.filter((m) => m.id >= 10 && m.publish).length === 5, 'all 5 publish replies');
    assert.equal(most, 1);
  });
});
