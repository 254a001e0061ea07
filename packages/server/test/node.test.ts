// HeraldNode (src/node.ts): the node's state and operations, driven directly over a fake transport and the memory
// engine (or a memory engine declaring other capabilities); no ticker runs: tests call node.tick(now).
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config/index.js';
import type { ControlMessage } from '../src/engine/broker.js';
import { deferredEngine } from '../src/engine/deferred.js';
import type { Engine, EngineCapabilities } from '../src/engine/engine.js';
import { createMemoryEngine } from '../src/engine/memory/index.js';
import { createLogger } from '../src/logger.js';
import { HeraldNode, type SessionCallbacks } from '../src/node.js';
import type { ClientTransport, SharedFrame } from '../src/transport/connection.js';
import { mintToken, RawClient, SECRET, startHerald, waitFor } from './support/herald.js';
import { dropPrefix, REDIS_URL, uniquePrefix } from './support/engines.js';

const silent = createLogger('silent', false);

function testConfig(env: Record<string, string> = {}, fileConfig?: unknown) {
  const { warnings: _w, ...config } = loadConfig({ env: { HERALD_TOKEN_SECRET: SECRET, ...env }, fileConfig });
  return config;
}

/** The memory engine under another name and capabilities, recording every control message published through it. */
function labelledEngine(name: string, capabilities: EngineCapabilities | undefined) {
  const inner = createMemoryEngine();
  const controls: ControlMessage[] = [];
  const broker: Engine['broker'] = {
    run: (h) => inner.broker.run(h),
    publish: (c, p, o) => inner.broker.publish(c, p, o),
    publishJoin: (c, i) => inner.broker.publishJoin(c, i),
    publishLeave: (c, i) => inner.broker.publishLeave(c, i),
    publishControl: (msg) => {
      controls.push(msg);
      return inner.broker.publishControl(msg);
    },
    subscribe: (c) => inner.broker.subscribe(c),
    unsubscribe: (c) => inner.broker.unsubscribe(c),
    close: () => inner.broker.close(),
  };
  const engine: Engine = {
    name,
    ...(capabilities ? { capabilities } : {}),
    broker,
    history: inner.history,
    presence: inner.presence,
    isReady: () => inner.isReady(),
    close: () => inner.close(),
  };
  return { engine, controls };
}

/** A client transport that records what the session sends and reports its close back like a real socket does. */
class FakeTransport implements ClientTransport {
  readonly sent: any[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly remoteAddress = '127.0.0.1';
  handlers: SessionCallbacks | undefined;
  send(text: string): void {
    for (const line of text.split('\n')) if (line.trim()) this.sent.push(JSON.parse(line));
  }
  sendShared(frame: SharedFrame): void {
    this.send(frame.text);
  }
  pause(): void {}
  resume(): void {}
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    queueMicrotask(() => this.handlers?.onClose(code, reason));
  }
  reply(id: number) {
    return waitFor(() => this.sent.find((m) => m.id === id), `reply ${id}`);
  }
}

async function connectClient(node: HeraldNode, user: string): Promise<FakeTransport> {
  const t = new FakeTransport();
  t.handlers = node.openSession(t, { headers: {}, remoteAddress: t.remoteAddress, url: '/connection/websocket' });
  t.handlers.onFrame(JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: user }) } }));
  const r = await t.reply(1);
  assert.ok(r.connect, `connect answered ${JSON.stringify(r)}`);
  return t;
}

const nodes: HeraldNode[] = [];
function newNode(engine: Engine, env: Record<string, string> = {}, fileConfig?: unknown): HeraldNode {
  // No ticker of its own: each test drives tick() so counts do not depend on when a second passes.
  const node = new HeraldNode({ config: testConfig(env, fileConfig), engine, log: silent, tickIntervalMs: 0 });
  nodes.push(node);
  return node;
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

/** Runs `count` ticks of the node's ticker, one simulated second apart from `from`. */
function ticks(node: HeraldNode, count: number, from = Date.now()): void {
  for (let i = 1; i <= count; i++) node.tick(from + i * 1000);
}

describe('HeraldNode: what the engine declares decides the shared-engine work, never its name', () => {
  it('an engine named "memory" that declares itself shared gets the node announced every 5 ticks', async () => {
    const { engine, controls } = labelledEngine('memory', { shared: true });
    const node = newNode(engine);
    await node.running;
    ticks(node, 10);
    const announced = controls.filter((m) => m.type === 'node');
    assert.equal(announced.length, 2);
    assert.ok(announced.every((m) => m.type === 'node' && m.node.uid === node.uid));
  });

  /** Ticks 12 s of a node whose client is subscribed to a presence channel; counts presence writes and announcements. */
  async function sharedWork(name: string, capabilities: EngineCapabilities) {
    const { engine, controls } = labelledEngine(name, capabilities);
    let presenceWrites = 0;
    const add = engine.presence.addPresence.bind(engine.presence);
    engine.presence.addPresence = (...args) => {
      presenceWrites++;
      return add(...args);
    };
    const node = newNode(engine, { HERALD_PRESENCE_TTL: '3s' }, { channel: { without_namespace: { presence: true } } });
    await node.running;
    const t = await connectClient(node, 'alice');
    await node.subscribeUser('alice', 'room');
    await waitFor(
      () => t.sent.some((m) => m.push?.subscribe) && presenceWrites === 1,
      'server-side subscribe with its presence entry',
    );
    const controlsBefore = controls.length;
    ticks(node, 12);
    return { presenceRefreshes: presenceWrites - 1, announcements: controls.length - controlsBefore };
  }

  it('an engine named "redis" that declares itself not shared gets no announcement and no presence refresh', async () => {
    assert.deepEqual(await sharedWork('redis', { shared: false }), { presenceRefreshes: 0, announcements: 0 });
  });

  it('an engine named "memory" that declares itself shared gets presence refreshed every tick (TTL 3 s) and 2 announcements in 12 ticks', async () => {
    assert.deepEqual(await sharedWork('memory', { shared: true }), { presenceRefreshes: 12, announcements: 2 });
  });

  it('an engine that declares no capabilities is treated as shared (the default that is correct for any engine)', async () => {
    const { engine, controls } = labelledEngine('custom', undefined);
    const node = newNode(engine);
    assert.deepEqual(node.capabilities, { shared: true });
    await node.running;
    ticks(node, 5);
    assert.equal(controls.filter((m) => m.type === 'node').length, 1);
  });

  it('the memory engine declares itself not shared', () => {
    const engine = createMemoryEngine();
    assert.deepEqual(engine.capabilities, { shared: false });
    return engine.close();
  });
});

describe('HeraldNode: the node registry of a shared engine', () => {
  it('lists another node from its announcement, counts its channels, ignores its own and forgets a node silent for 30 s', async () => {
    const { engine } = labelledEngine('shared-memory', { shared: true });
    const node = newNode(engine, { HERALD_NAME: 'here' });
    await node.running;
    const now = Date.now();
    const other = {
      uid: 'other-node',
      name: 'there',
      version: 'x',
      num_clients: 3,
      num_users: 2,
      num_channels: 1,
      num_subs: 3,
      uptime: 9,
      channels: ['remote-room'],
      updatedAt: now,
    };
    await engine.broker.publishControl({ type: 'node', node: other });
    await engine.broker.publishControl({
      type: 'node',
      node: { ...other, uid: node.uid, name: 'an echo of this node' },
    });
    await waitFor(() => node.nodes().length === 2, 'the other node listed');
    assert.deepEqual(
      node.nodes().map((n) => n.name),
      ['here', 'there'],
    );
    assert.equal((await node.channels()).get('remote-room'), 0);
    node.tick(now + 29_000);
    assert.equal(node.nodes().length, 2, 'still listed within 30 s');
    node.tick(now + 31_000);
    assert.deepEqual(
      node.nodes().map((n) => n.name),
      ['here'],
    );
    assert.equal((await node.channels()).has('remote-room'), false);
  });
});

describe('HeraldNode: sessions and control messages', () => {
  it("indexes sessions by user: disconnectUser closes only that user's sessions (3503) and the count follows", async () => {
    const node = newNode(createMemoryEngine());
    await node.running;
    const a1 = await connectClient(node, 'alice');
    const a2 = await connectClient(node, 'alice');
    const b = await connectClient(node, 'bob');
    assert.equal(node.connectionCount, 3);
    await node.disconnectUser('alice');
    await waitFor(() => a1.closed && a2.closed, 'alice closed');
    assert.deepEqual(a1.closed, { code: 3503, reason: 'force disconnect' });
    assert.equal(b.closed, undefined);
    await waitFor(() => node.connectionCount === 1, 'one connection left');
    assert.deepEqual(node.nodes()[0] && { clients: node.nodes()[0]!.num_clients, users: node.nodes()[0]!.num_users }, {
      clients: 1,
      users: 1,
    });
  });

  it("subscribeUser and unsubscribeUser reach the user's session as pushes, and publish delivers to it", async () => {
    const node = newNode(createMemoryEngine(), {});
    await node.running;
    const t = await connectClient(node, 'carol');
    await node.subscribeUser('carol', 'news');
    await waitFor(() => t.sent.some((m) => m.push?.channel === 'news' && m.push.subscribe), 'subscribe push');
    await node.publish('news', { n: 1 });
    await waitFor(
      () => t.sent.some((m) => m.push?.channel === 'news' && m.push.pub?.data?.n === 1),
      'publication push',
    );
    assert.equal((await node.channels()).get('news'), 1);
    await node.unsubscribeUser('carol', 'news');
    await waitFor(() => t.sent.some((m) => m.push?.channel === 'news' && m.push.unsubscribe), 'unsubscribe push');
  });

  it('disconnectAll closes every session with the shutdown code', async () => {
    const node = newNode(createMemoryEngine());
    await node.running;
    const t = await connectClient(node, 'dave');
    node.disconnectAll({ code: 3001, reason: 'shutdown' });
    await waitFor(() => t.closed, 'closed');
    assert.equal(t.closed!.code, 3001);
  });
});

describe('a deferred engine (the Redis engine while its module loads)', () => {
  it('holds a publish made before the engine loaded and completes it once loaded', async () => {
    let resolveLoad!: (e: Engine) => void;
    const engine = deferredEngine({
      name: 'late',
      capabilities: { shared: false },
      load: () => new Promise<Engine>((r) => (resolveLoad = r)),
    });
    const node = newNode(engine);
    assert.equal(engine.isReady(), false);
    assert.equal(engine.notReadyReason?.(), 'late engine still loading');
    const published = node.publish('news', { early: true });
    resolveLoad(createMemoryEngine());
    await node.running;
    assert.equal((await published).offset, 0, 'news has no history here: delivered, offset 0');
    assert.equal(engine.isReady(), true);
  });

  it("a load that fails fails the node's start and every call with the reason, and /ready's reason names it", async () => {
    const engine = deferredEngine({
      name: 'broken',
      capabilities: { shared: true },
      load: () => Promise.reject(new Error("Cannot find package 'ioredis'")),
    });
    const node = newNode(engine);
    await assert.rejects(node.running, /the broken engine failed to load: Cannot find package 'ioredis'/);
    await assert.rejects(node.publish('news', {}), /the broken engine failed to load/);
    assert.equal(engine.isReady(), false);
    assert.match(engine.notReadyReason?.() ?? '', /failed to load: Cannot find package 'ioredis'/);
  });
});

describe('createHerald loads the Redis engine only when it is configured', () => {
  const script = fileURLToPath(new URL('./support/ioredis-loaded.ts', import.meta.url));
  function run(env: Record<string, string>): { loaded: number; offset: number } {
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, NODE_ENV: 'test', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  }

  it('a memory Herald serves a publish without any module of ioredis loaded', () => {
    const r = run({ HERALD_ENGINE: 'memory' });
    assert.equal(r.offset, 1);
    assert.equal(r.loaded, 0);
  });

  it('a Redis Herald (HERALD_ENGINE=redis) loads ioredis and publishes through Redis (the check above can see ioredis)', async () => {
    const prefix = uniquePrefix('lazy');
    try {
      const r = run({ HERALD_ENGINE: 'redis', REDIS_URL, HERALD_REDIS_PREFIX: prefix });
      assert.equal(r.offset, 1);
      assert.ok(r.loaded > 0, 'ioredis modules are in the require cache');
    } finally {
      await dropPrefix(prefix);
    }
  });
});

describe('@herald/server/redis', () => {
  it('the package exports createRedisEngine at ./redis, from the module the build turns into that file', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    assert.equal(pkg.exports['./redis'], './dist/redis.js');
    const mod = await import('../src/redis.js');
    assert.equal(typeof mod.createRedisEngine, 'function');
    const prefix = uniquePrefix('export');
    const engine = mod.createRedisEngine({ url: REDIS_URL, prefix });
    try {
      assert.deepEqual(engine.capabilities, { shared: true });
      await waitFor(() => engine.isReady(), 'the exported engine connects to Redis');
    } finally {
      await engine.close();
      await dropPrefix(prefix);
    }
  });
});

describe('herald.onClose: extensions stop inside close(), before clients and the engine', () => {
  it('close() runs each hook once while clients are connected and the engine still publishes, then closes clients with 3001', async () => {
    const s = await startHerald();
    const client = await RawClient.open(s.wsUrl);
    client.send({ id: 1, connect: { token: await mintToken({ sub: 'hooked' }) } });
    await client.reply(1);
    const seen: string[] = [];
    s.herald.onClose(async () => {
      seen.push(`connections=${s.herald.connectionCount}`);
      const pos = await s.herald.publish('last-words', { bye: true });
      seen.push(`published offset=${pos.offset}`);
    });
    const removed = s.herald.onClose(() => {
      seen.push('a removed hook ran');
    });
    removed();
    await Promise.all([s.close(), s.close()]);
    assert.deepEqual(seen, ['connections=1', 'published offset=0']);
    assert.equal((await client.closed()).code, 3001);
  });

  it('a hook that throws is logged and the shutdown goes on', async () => {
    const s = await startHerald();
    let after = false;
    s.herald.onClose(() => {
      throw new Error('extension failed to stop');
    });
    s.herald.onClose(() => {
      after = true;
    });
    await s.close();
    assert.equal(after, true);
    assert.equal(s.herald.isReady(), false);
  });
});
