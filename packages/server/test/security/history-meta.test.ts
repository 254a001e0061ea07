import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Engine } from '../../src/engine/engine.js';
import { createMemoryEngine } from '../../src/engine/memory/index.js';
import type { MemoryHistory } from '../../src/engine/memory/history.js';
import { REDIS_URL, dropPrefix, redisTestEngine, uniquePrefix } from '../support/engines.js';
import { RawClient, api, mintToken, startHerald, waitFor, type TestServer } from '../support/herald.js';

/**
 * Issue #20.8 / #21.7: subscribing (positioned or recovering) or reading history of a channel that never had a
 * publication used to create its stream meta (memory: a Stream object kept for history_meta_ttl, 30 days; Redis: a
 * meta key with the same TTL), so a client looping subscribe/unsubscribe over new names grew memory without bound.
 * Now nothing is stored until the first publication, and the epoch a client is given for the empty channel is the
 * one the first publication creates the stream with.
 */

const config = {
  channel: {
    namespaces: {
      h: {
        allow_subscribe_for_client: true,
        allow_history_for_client: true,
        allow_positioning: true,
        allow_recovery: true,
        history_size: 10,
        history_ttl_ms: 300_000,
      },
    },
  },
};

let seq = 0;
const channelName = (what: string) => `h:${what}_${process.pid}_${Date.now().toString(36)}_${++seq}`;

async function connect(s: TestServer, user: string): Promise<RawClient> {
  const c = await RawClient.open(s.wsUrl);
  c.send({ id: 1, connect: { token: await mintToken({ sub: user }) } });
  const r = await c.reply(1);
  assert.ok(r.connect, `connect failed: ${JSON.stringify(r)}`);
  return c;
}

let nextId = 100;
async function command(c: RawClient, body: Record<string, unknown>): Promise<any> {
  const id = ++nextId;
  c.send({ id, ...body });
  return c.reply(id);
}

interface EngineUnderTest {
  engine: Engine;
  /** Channels the store holds anything for (a memory stream; Redis meta or stream keys). */
  storedChannels(): Promise<number>;
  prefix?: string;
}

const engines: Record<string, () => Promise<EngineUnderTest>> = {
  memory: async () => {
    const engine = createMemoryEngine();
    return { engine, storedChannels: async () => (engine.history as MemoryHistory).numStreams };
  },
  redis: async () => {
    const prefix = uniquePrefix('histmeta');
    const engine = await redisTestEngine({ prefix });
    const redis = new Redis(REDIS_URL);
    const storedChannels = async () => {
      const channels = new Set<string>();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}.*`, 'COUNT', 1000);
        cursor = next;
        for (const k of keys)
          if (k.startsWith(`${prefix}.meta.{`) || k.startsWith(`${prefix}.stream.{`))
            channels.add(k.slice(k.indexOf('{')));
      } while (cursor !== '0');
      return channels.size;
    };
    const close = engine.close.bind(engine);
    return {
      prefix,
      engine: Object.assign(engine, {
        close: async () => {
          redis.disconnect();
          await close();
        },
      }),
      storedChannels,
    };
  },
};

for (const [engineName, make] of Object.entries(engines)) {
  describe(`history meta of channels without publications (${engineName})`, { timeout: 60_000 }, () => {
    let e: EngineUnderTest;
    let s: TestServer;
    before(async () => {
      e = await make();
      s = await startHerald({ engine: e.engine, config, env: { HERALD_COMMAND_RATE: '0' } });
    });
    after(async () => {
      await s.close();
      await e.engine.close();
    });

    test('subscribing positioned or recovering to 300 new channels and reading the history of 100 more stores nothing for them', async () => {
      const c = await connect(s, 'looper');
      const names: string[] = [];
      for (let round = 0; round < 3; round++) {
        const batch = Array.from({ length: 100 }, () => channelName('loop'));
        names.push(...batch);
        const subscribe =
          round === 2
            ? (channel: string) => ({ subscribe: { channel, recover: true, offset: 0, epoch: 'made-up' } })
            : (channel: string) => ({ subscribe: { channel, positioned: true, recoverable: round === 1 } });
        const replies = await Promise.all(batch.map((ch) => command(c, subscribe(ch))));
        for (const r of replies) {
          assert.ok(r.subscribe, `subscribe failed: ${JSON.stringify(r)}`);
          assert.equal(r.subscribe.offset ?? 0, 0);
          assert.ok(
            typeof r.subscribe.epoch === 'string' && r.subscribe.epoch.length > 0,
            'an empty channel has an epoch',
          );
        }
        await Promise.all(batch.map((ch) => command(c, { unsubscribe: { channel: ch } })));
      }
      const read = await Promise.all(
        Array.from({ length: 100 }, () => command(c, { history: { channel: channelName('read'), limit: 10 } })),
      );
      for (const r of read) assert.ok(r.history, `history failed: ${JSON.stringify(r)}`);
      c.close();
      assert.equal(await e.storedChannels(), 0, 'nothing is stored for channels that never had a publication');

      // The count does see channels: one publication stores exactly that channel.
      assert.equal((await api(s, 'publish', { channel: names[0], data: { n: 1 } })).status, 200);
      assert.equal(await e.storedChannels(), 1);
    });

    test('a client that subscribed before the first publication recovers every publication from offset 1', async () => {
      const channel = channelName('first');
      const c = await connect(s, 'early');
      const sub = await command(c, { subscribe: { channel, positioned: true, recoverable: true } });
      const epoch: string = sub.subscribe.epoch;
      await command(c, { unsubscribe: { channel } });
      for (const n of [1, 2, 3]) {
        const r = await api(s, 'publish', { channel, data: { n } });
        assert.equal(r.status, 200);
        assert.deepEqual(
          r.json.result,
          { offset: n, epoch },
          'the first publication creates the stream with the epoch the client holds',
        );
      }
      const again = await command(c, { subscribe: { channel, recover: true, offset: 0, epoch } });
      assert.equal(again.subscribe.recovered, true);
      assert.equal(again.subscribe.epoch, epoch);
      assert.deepEqual(
        again.subscribe.publications.map((p: any) => [p.offset, p.data.n]),
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
      );
      c.close();
    });

    test('a subscriber of a channel that never had a publication gets the first ones live, without being made to resubscribe', async () => {
      const channel = channelName('live');
      const c = await connect(s, 'live');
      const sub = await command(c, { subscribe: { channel, positioned: true, recoverable: true } });
      assert.equal(sub.subscribe.offset ?? 0, 0);
      for (const n of [1, 2]) assert.equal((await api(s, 'publish', { channel, data: { n } })).status, 200);
      await waitFor(() => c.messages.filter((m) => m.push?.pub).length === 2, 'two live publications');
      assert.deepEqual(
        c.messages.filter((m) => m.push?.pub).map((m) => m.push.pub.offset),
        [1, 2],
      );
      assert.equal(c.messages.filter((m) => m.push?.unsubscribe).length, 0, 'no unsubscribe push (no resubscribe)');
      c.close();
    });

    if (engineName === 'redis') {
      test('Redis losing its keys between the empty read and the first publication tells the client recovered: false', async () => {
        const channel = channelName('lost');
        const c = await connect(s, 'lost');
        const sub = await command(c, { subscribe: { channel, positioned: true, recoverable: true } });
        const epoch: string = sub.subscribe.epoch;
        await command(c, { unsubscribe: { channel } });
        await dropPrefix(e.prefix!); // what a Redis restarted without persistence looks like to this prefix
        for (const n of [1, 2]) assert.equal((await api(s, 'publish', { channel, data: { n } })).status, 200);
        const again = await command(c, { subscribe: { channel, recover: true, offset: 0, epoch } });
        assert.equal(again.subscribe.recovered ?? false, false);
        assert.notEqual(again.subscribe.epoch, epoch);
        c.close();
      });
    }
  });
}

describe('a channel whose stream ended (Redis meta TTL)', { timeout: 30_000 }, () => {
  let engine: Engine;
  before(async () => {
    engine = await redisTestEngine({ historyMetaTtlMs: 200 });
    await engine.broker.run({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {}, onFeedInterrupted() {} });
  });
  after(() => engine.close());

  test("never hands out that stream's epoch again, to a reader or to its next stream", async () => {
    const channel = channelName('ended');
    const q = { limit: 0, historySize: 10, historyTtlMs: 50, historyMetaTtlMs: 200 };
    const empty = await engine.history.history(channel, q);
    const first = await engine.broker.publish(channel, { data: '1' }, { historySize: 10, historyTtlMs: 50 });
    assert.deepEqual(first, { offset: 1, epoch: empty.position.epoch });
    const ended = await waitFor(
      async () => {
        const r = await engine.history.history(channel, q);
        return r.position.offset === 0 ? r : undefined;
      },
      'the stream meta to expire',
      5000,
    );
    assert.notEqual(ended.position.epoch, first.epoch, "a reader is not given the ended stream's epoch");
    const second = await engine.broker.publish(channel, { data: '2' }, { historySize: 10, historyTtlMs: 50 });
    assert.equal(second.offset, 1);
    assert.notEqual(second.epoch, first.epoch, 'the next stream has another epoch');
  });
});

describe('a channel whose stream ended (memory meta TTL)', () => {
  test("never hands out that stream's epoch again, to a reader or to its next stream", async () => {
    const { MemoryHistory } = await import('../../src/engine/memory/history.js');
    let now = 1_000_000;
    const h = new MemoryHistory(() => now);
    const q = { limit: 0, historySize: 10, historyTtlMs: 50, historyMetaTtlMs: 200 };
    const empty = await h.history('ended', q);
    const first = h.append('ended', { data: '1' }, 10, 50, 200);
    assert.equal(first.epoch, empty.position.epoch);
    now += 1000;
    const ended = await h.history('ended', q);
    assert.equal(ended.position.offset, 0);
    assert.notEqual(ended.position.epoch, first.epoch, "a reader is not given the ended stream's epoch");
    const second = h.append('ended', { data: '2' }, 10, 50, 200);
    assert.equal(second.offset, 1);
    assert.notEqual(second.epoch, first.epoch, 'the next stream has another epoch');
  });
});

describe('the first-life registry filling up (Redis)', { timeout: 30_000 }, () => {
  const prefix = uniquePrefix('registry');
  let engine: Engine;
  let redis: Redis;
  before(async () => {
    engine = await redisTestEngine({ prefix });
    await engine.broker.run({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {}, onFeedInterrupted() {} });
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    redis.disconnect();
    await engine.close();
  });

  test('starts over with a new generation, so every first epoch changes and the registry stays 1 MiB', async () => {
    const q = { limit: 0, historySize: 10, historyTtlMs: 60_000, historyMetaTtlMs: 60_000 };
    const opts = { historySize: 10, historyTtlMs: 60_000 };
    const waiting = channelName('waiting');
    const before = await engine.history.history(waiting, q);
    await engine.broker.publish(channelName('first'), { data: '1' }, opts);
    assert.equal(await redis.getrange(`${prefix}.epochs`, 24, 31), '00000001');
    // As if 262,143 more channels had had their first publication: the next one fills the registry.
    await redis.setrange(`${prefix}.epochs`, 24, '00262144');
    await engine.broker.publish(channelName('last'), { data: '1' }, opts);
    assert.equal(await redis.getrange(`${prefix}.epochs`, 24, 31), '00000000');
    assert.ok((await redis.strlen(`${prefix}.epochs`)) <= 32 + (1 << 20));
    const after = await engine.history.history(waiting, q);
    assert.notEqual(after.position.epoch, before.position.epoch, 'the first epochs of the new generation differ');
    const published = await engine.broker.publish(waiting, { data: '1' }, opts);
    assert.deepEqual(published, { offset: 1, epoch: after.position.epoch });
  });
});
