import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerEventHandler } from '../src/engine/broker.js';
import type { Engine } from '../src/engine/engine.js';
import type { Publication, StreamPosition } from '../src/engine/types.js';
import { engineFactories, engineNames, redisDb, redisTestEngine, uniquePrefix, REDIS_URL } from './support/engines.js';
import { waitFor } from './support/herald.js';

/**
 * `idempotency_key` on every engine, for channels with and without history: a second publish with the key returns
 * the first result and delivers nothing. On Redis the dedup window is shared by every node on the same prefix.
 */

type Delivered = { channel: string; pub: Publication; position: StreamPosition };

function recorder(into: Delivered[]): BrokerEventHandler {
  return {
    onPublication: (channel, pub, position) => into.push({ channel, pub, position }),
    onJoin: () => {},
    onLeave: () => {},
    onControl: () => {},
    onFeedInterrupted: () => {},
  };
}

let seq = 0;
const uniq = (name: string) => `idem-${process.pid}-${Date.now()}-${++seq}-${name}`;
const idem = { idempotencyKey: 'order-42', idempotentResultTtlMs: 60_000 };

/** Publishes twice with one key, then a marker without a key; returns both results and what the node received. */
async function publishTwice(engine: Engine, seen: Delivered[], historySize: number) {
  const ch = uniq(`h${historySize}`);
  await engine.broker.subscribe(ch);
  const opts = { historySize, historyTtlMs: 60_000 };
  const first = await engine.broker.publish(ch, { data: '"once"' }, { ...opts, ...idem });
  const second = await engine.broker.publish(ch, { data: '"once"' }, { ...opts, ...idem });
  await engine.broker.publish(ch, { data: '"marker"' }, opts);
  // Deliveries of one channel arrive in publish order: once the marker is here, a duplicate would be too.
  await waitFor(() => seen.some((d) => d.channel === ch && d.pub.data === '"marker"'), 'the marker publication');
  return { first, second, delivered: seen.filter((d) => d.channel === ch && d.pub.data === '"once"') };
}

for (const engineName of engineNames) {
  describe(`idempotency keys (${engineName})`, { timeout: 30_000 }, () => {
    let engine: Engine;
    const seen: Delivered[] = [];
    before(async () => {
      engine = await engineFactories[engineName]!();
      await engine.broker.run(recorder(seen));
    });
    after(() => engine.close());

    test('a repeated publish with one key on a channel with history returns the first position and is delivered once', async () => {
      const { first, second, delivered } = await publishTwice(engine, seen, 5);
      assert.equal(first.offset, 1);
      assert.deepEqual(second, first);
      assert.equal(delivered.length, 1);
    });

    test('a repeated publish with one key on a channel without history is delivered once', async () => {
      const { first, second, delivered } = await publishTwice(engine, seen, 0);
      assert.deepEqual(first, { offset: 0, epoch: '' });
      assert.deepEqual(second, first);
      assert.equal(delivered.length, 1);
    });

    test('another key, or the same key on another channel, is delivered again', async () => {
      const ch = uniq('other');
      await engine.broker.subscribe(ch);
      const opts = { historySize: 0, historyTtlMs: 60_000 };
      await engine.broker.publish(ch, { data: '"a"' }, { ...opts, ...idem });
      await engine.broker.publish(
        ch,
        { data: '"b"' },
        { ...opts, idempotencyKey: 'order-43', idempotentResultTtlMs: 60_000 },
      );
      await waitFor(() => seen.filter((d) => d.channel === ch).length === 2, 'both publications');
      const ch2 = uniq('other2');
      await engine.broker.subscribe(ch2);
      await engine.broker.publish(ch2, { data: '"c"' }, { ...opts, ...idem });
      await waitFor(
        () => seen.some((d) => d.channel === ch2 && d.pub.data === '"c"'),
        'the same key on another channel',
      );
    });
  });
}

const redisVariants: Record<string, string | string[]> = {
  redis: REDIS_URL,
  'redis-sharded': [redisDb(0), redisDb(1)],
};
for (const [name, url] of Object.entries(redisVariants)) {
  if (!engineNames.includes(name)) continue;
  describe(`idempotency keys across two nodes (${name})`, { timeout: 30_000 }, () => {
    const prefix = uniquePrefix('idem');
    let a: Engine;
    let b: Engine;
    const seenA: Delivered[] = [];
    const seenB: Delivered[] = [];
    before(async () => {
      a = await redisTestEngine({ url, prefix });
      b = await redisTestEngine({ url, prefix });
      await a.broker.run(recorder(seenA));
      await b.broker.run(recorder(seenB));
    });
    after(async () => {
      await a.close();
      await b.close();
    });

    for (const historySize of [5, 0]) {
      test(`a publish repeated on another node with the same key is delivered once (history size ${historySize})`, async () => {
        const ch = uniq(`nodes${historySize}`);
        await a.broker.subscribe(ch);
        await b.broker.subscribe(ch);
        const opts = { historySize, historyTtlMs: 60_000 };
        const first = await a.broker.publish(ch, { data: '"once"' }, { ...opts, ...idem });
        const second = await b.broker.publish(ch, { data: '"once"' }, { ...opts, ...idem });
        assert.deepEqual(second, first);
        await b.broker.publish(ch, { data: '"marker"' }, opts);
        for (const seen of [seenA, seenB]) {
          await waitFor(
            () => seen.some((d) => d.channel === ch && d.pub.data === '"marker"'),
            'the marker on both nodes',
          );
          assert.equal(seen.filter((d) => d.channel === ch && d.pub.data === '"once"').length, 1);
        }
      });
    }
  });
}
