// The Redis engine's lifecycle store (engine/lifecycle.ts), behind the once-across-nodes occupied/vacated and
// presence webhook events: holds of several nodes, releases, and the sweep of a dead node's holds, on one Redis and
// on two shards.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../src/engine/engine.js';
import { redisDb, redisTestEngine } from './support/engines.js';

const engines: Record<string, () => Promise<Engine>> = {
  redis: () => redisTestEngine(),
  'redis-sharded': () => redisTestEngine({ url: [redisDb(0), redisDb(1)] }),
};

for (const [name, make] of Object.entries(engines)) {
  describe(`lifecycle store on ${name}`, async () => {
    const engine = await make();
    after(() => engine.close());
    const store = engine.lifecycle!;

    test('the first hold across nodes and the last release are the transitions; others and repeats are not', async () => {
      assert.ok(store, 'the Redis engine has a lifecycle store');
      const ch = 'room:holds';
      assert.equal(await store.hold(ch, 'o', 'node-a', 60_000), true);
      assert.equal(await store.hold(ch, 'o', 'node-a', 60_000), false, 'a refresh is no transition');
      assert.equal(await store.hold(ch, 'o', 'node-b', 60_000), false);
      assert.equal(await store.hold(ch, 'p:alice', 'node-b', 60_000), true, 'keys are independent');
      assert.equal(await store.release(ch, 'o', 'node-a'), false);
      assert.equal(await store.release(ch, 'o', 'node-a'), false, 'releasing twice is no transition');
      assert.equal(await store.release(ch, 'o', 'node-c'), false, 'a node that never held it');
      assert.equal(await store.release(ch, 'o', 'node-b'), true);
      assert.equal(await store.release(ch, 'p:alice', 'node-b'), true);
      assert.equal(await store.hold(ch, 'o', 'node-a', 60_000), true, 'occupied again');
      assert.equal(await store.release(ch, 'o', 'node-a'), true);
    });

    test("a node's holds that are not refreshed are released by one sweep, reported to one of two racing sweepers", async () => {
      const channels = ['room:sweep-1', 'room:sweep-2', 'room:sweep-3'];
      for (const ch of channels) {
        assert.equal(await store.hold(ch, 'o', 'dead-node', 50), true);
        assert.equal(await store.hold(ch, 'p:bob', 'dead-node', 50), true);
      }
      // A living node holds the third channel too: it stays occupied, only bob's presence goes.
      assert.equal(await store.hold('room:sweep-3', 'o', 'live-node', 60_000), false);
      await new Promise((r) => setTimeout(r, 100));
      const [a, b] = await Promise.all([store.sweep(100), store.sweep(100)]);
      const gone = [...a, ...b].map((g) => `${g.channel} ${g.key}`).sort();
      assert.deepEqual(gone, [
        'room:sweep-1 o',
        'room:sweep-1 p:bob',
        'room:sweep-2 o',
        'room:sweep-2 p:bob',
        'room:sweep-3 p:bob',
      ]);
      assert.deepEqual(await store.sweep(100), [], 'nothing is reported twice');
      assert.equal(await store.release('room:sweep-3', 'o', 'live-node'), true);
      assert.equal(
        await store.hold('room:sweep-1', 'o', 'dead-node', 60_000),
        true,
        'a node back after a sweep re-occupies',
      );
      assert.equal(await store.release('room:sweep-1', 'o', 'dead-node'), true);
    });
  });
}
