import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerEventHandler } from '../src/engine/broker.js';
import type { Engine } from '../src/engine/engine.js';
import type { MapBroker, MapWriteOptions } from '../src/engine/map-broker.js';
import type { Publication, StreamPosition } from '../src/engine/types.js';
import {
  dropPrefix,
  engineFactories,
  engineNames,
  heavyEngineNames,
  redisTestEngine,
  uniquePrefix,
} from './support/engines.js';
import { waitFor } from './support/herald.js';

/** The contract written on engine/map-broker.ts, checked through the interfaces alone, on every engine. */

const persistent: MapWriteOptions = { keyTtlMs: 0, streamSize: 100, streamTtlMs: 60_000, metaTtlMs: 3_600_000 };
const ephemeral: MapWriteOptions = { keyTtlMs: 60_000, streamSize: 0, streamTtlMs: 0, metaTtlMs: 60_000 };
const stream = { historySize: 100, historyTtlMs: 60_000, historyMetaTtlMs: 3_600_000 };
let seq = 0;
const uniq = (name: string) => `mapcontract-${process.pid}-${Date.now()}-${++seq}-${name}`;

// One engine per suite: it runs on the heavy engines (Redis Cluster) too unless HERALD_TEST_ENGINES chooses.
const contractEngines =
  process.env.HERALD_TEST_ENGINES === undefined ? [...engineNames, ...heavyEngineNames] : engineNames;

for (const engineName of contractEngines) {
  describe(`map broker contract (${engineName})`, { timeout: 30_000 }, () => {
    let engine: Engine;
    let map: MapBroker;
    const pubs: { channel: string; pub: Publication; position: StreamPosition }[] = [];
    before(async () => {
      engine = await engineFactories[engineName]!();
      const handler: BrokerEventHandler = {
        onPublication: (channel, pub, position) => pubs.push({ channel, pub, position }),
        onJoin: () => {},
        onLeave: () => {},
        onControl: () => {},
        onFeedInterrupted: () => {},
      };
      await engine.broker.run(handler);
      assert.ok(engine.map, `the ${engineName} engine has a map broker`);
      map = engine.map;
    });
    after(() => engine.close());
    const delivered = (ch: string) => pubs.filter((p) => p.channel === ch).map((p) => p.pub);

    test('publishes and removals are changes of one stream: consecutive offsets, delivered in order with their key', async () => {
      const ch = uniq('order');
      await engine.broker.subscribe(ch);
      const a = await map.publish(ch, 'a', { data: '1', tags: { t: 'x' } }, persistent);
      const b = await map.publish(ch, 'b', { data: '2' }, persistent);
      const r = await map.remove(ch, 'a', persistent);
      assert.deepEqual(
        [a, b, r].map((x) => [x.position.offset, x.suppressed]),
        [
          [1, false],
          [2, false],
          [3, false],
        ],
      );
      assert.equal(new Set([a, b, r].map((x) => x.position.epoch)).size, 1);
      await waitFor(() => delivered(ch).length === 3, 'three deliveries');
      const got = delivered(ch);
      assert.deepEqual(
        got.map((p) => [p.offset, p.key, p.removed === true, p.data]),
        [
          [1, 'a', false, '1'],
          [2, 'b', false, '2'],
          [3, 'a', true, ''],
        ],
      );
      // A removal carries the removed entry's tags (tags-filtered subscribers that had the key hear of it).
      assert.deepEqual(got[2]!.tags, { t: 'x' });
      const h = await engine.history.history(ch, {
        since: { offset: 0, epoch: a.position.epoch },
        limit: -1,
        ...stream,
      });
      assert.deepEqual(
        h.publications.map((p) => [p.offset, p.key, p.removed === true]),
        [
          [1, 'a', false],
          [2, 'b', false],
          [3, 'a', true],
        ],
      );
      await engine.broker.unsubscribe(ch);
    });

    test('removing a key that is not there changes nothing: no offset used, nothing delivered', async () => {
      const ch = uniq('absent');
      await engine.broker.subscribe(ch);
      await map.publish(ch, 'a', { data: '1' }, persistent);
      const r = await map.remove(ch, 'zzz', persistent);
      assert.equal(r.suppressed, true);
      assert.equal(r.suppressReason, 'key_not_found');
      assert.equal(r.position.offset, 1);
      assert.equal((await map.publish(ch, 'b', { data: '2' }, persistent)).position.offset, 2);
      await waitFor(() => delivered(ch).length === 2, 'two deliveries');
      await engine.broker.unsubscribe(ch);
    });

    test('a publish whose idempotency key was seen answers the first position and changes nothing', async () => {
      const ch = uniq('idem');
      const first = await map.publish(ch, 'a', { data: '1' }, { ...persistent, idempotencyKey: 'k1' });
      const again = await map.publish(ch, 'a', { data: '2' }, { ...persistent, idempotencyKey: 'k1' });
      assert.equal(again.suppressed, true);
      assert.equal(again.suppressReason, 'idempotency');
      assert.deepEqual(again.position, first.position);
      const s = await map.readState(ch, { cursor: '', limit: 10, metaTtlMs: 3_600_000 });
      assert.deepEqual(
        s.entries.map((e) => [e.key, e.data]),
        [['a', '1']],
      );
    });

    test('the state is read in key order, page by page, each entry with the offset of its last change', async () => {
      const ch = uniq('pages');
      for (const k of ['d', 'b', 'e', 'a', 'c']) await map.publish(ch, k, { data: JSON.stringify(k) }, persistent);
      await map.publish(ch, 'b', { data: '"b2"' }, persistent);
      const seen: Publication[] = [];
      let cursor = '';
      let position: StreamPosition | undefined;
      let pages = 0;
      do {
        const page = await map.readState(ch, { cursor, limit: 2, metaTtlMs: 3_600_000 });
        position ??= page.position;
        seen.push(...page.entries);
        cursor = page.cursor;
        pages++;
      } while (cursor !== '' && pages < 10);
      assert.deepEqual(
        seen.map((e) => [e.key, e.data, e.offset]),
        [
          ['a', '"a"', 4],
          ['b', '"b2"', 6],
          ['c', '"c"', 5],
          ['d', '"d"', 1],
          ['e', '"e"', 3],
        ],
      );
      assert.equal(pages, 3);
      assert.equal(position?.offset, 6);
    });

    test('an empty map reads as offset 0 of the epoch its first change gets', async () => {
      const ch = uniq('empty');
      const s = await map.readState(ch, { cursor: '', limit: 10, metaTtlMs: 3_600_000 });
      assert.deepEqual(s.entries, []);
      assert.equal(s.position.offset, 0);
      const first = await map.publish(ch, 'a', { data: '1' }, persistent);
      assert.deepEqual(first.position, { offset: 1, epoch: s.position.epoch });
    });

    test('an ephemeral map keeps no changes, yet its changes take offsets of one epoch', async () => {
      const ch = uniq('ephemeral');
      const a = await map.publish(ch, 'a', { data: '1' }, ephemeral);
      const b = await map.publish(ch, 'b', { data: '2' }, ephemeral);
      assert.equal(b.position.offset, a.position.offset + 1);
      const h = await engine.history.history(ch, {
        since: { offset: 0, epoch: a.position.epoch },
        limit: -1,
        historySize: 0,
        historyTtlMs: 0,
        historyMetaTtlMs: 60_000,
      });
      assert.deepEqual(h.publications, []);
      assert.deepEqual(h.position, b.position);
    });

    test('a key not published again within its TTL is removed once, as a change delivered with the next offset', async () => {
      const ch = uniq('ttl');
      await engine.broker.subscribe(ch);
      const short: MapWriteOptions = { keyTtlMs: 300, streamSize: 10, streamTtlMs: 60_000, metaTtlMs: 60_000 };
      const a = await map.publish(ch, 'a', { data: '1' }, short);
      await map.publish(ch, 'keep', { data: '1' }, { ...short, keyTtlMs: 60_000 });
      await waitFor(() => delivered(ch).length === 3, 'the removal by TTL', 5000);
      const removal = delivered(ch)[2]!;
      assert.deepEqual([removal.key, removal.removed, removal.offset], ['a', true, a.position.offset + 2]);
      const s = await map.readState(ch, { cursor: '', limit: 10, metaTtlMs: 60_000 });
      assert.deepEqual(
        s.entries.map((e) => e.key),
        ['keep'],
      );
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(delivered(ch).length, 3);
      await engine.broker.unsubscribe(ch);
    });

    test('a publish with ifNew of a key that is there renews its TTL without a change', async () => {
      const ch = uniq('ifnew');
      await engine.broker.subscribe(ch);
      const short: MapWriteOptions = { keyTtlMs: 600, streamSize: 0, streamTtlMs: 0, metaTtlMs: 600 };
      const first = await map.publish(ch, 'me', { data: '' }, { ...short, ifNew: true });
      assert.equal(first.suppressed, false);
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const again = await map.publish(ch, 'me', { data: '' }, { ...short, ifNew: true });
        assert.equal(again.suppressReason, 'key_exists');
        assert.deepEqual(again.position, first.position);
      }
      // 1 s after the first publish, past its 600 ms TTL: renewed, still there, and nothing was delivered but it.
      const s = await map.readState(ch, { cursor: '', limit: 10, metaTtlMs: 600 });
      assert.deepEqual(
        s.entries.map((e) => e.key),
        ['me'],
      );
      assert.equal(delivered(ch).length, 1);
      await engine.broker.unsubscribe(ch);
    });
  });
}

test('two Redis nodes sweeping the same map remove an expired key once: one removal on each node, one offset', async () => {
  const prefix = uniquePrefix('map-sweep');
  const nodes = [await redisTestEngine({ prefix }), await redisTestEngine({ prefix })];
  const seen: Publication[][] = [[], []];
  try {
    const ch = uniq('two-nodes');
    for (const [i, node] of nodes.entries()) {
      await node.broker.run({
        onPublication: (channel, pub) => {
          if (channel === ch) seen[i]!.push(pub);
        },
        onJoin: () => {},
        onLeave: () => {},
        onControl: () => {},
        onFeedInterrupted: () => {},
      });
      await node.broker.subscribe(ch);
    }
    const short: MapWriteOptions = { keyTtlMs: 300, streamSize: 10, streamTtlMs: 60_000, metaTtlMs: 60_000 };
    const a = await nodes[0]!.map!.publish(ch, 'a', { data: '1' }, short);
    await waitFor(() => seen.every((s) => s.length === 2), 'the removal on both nodes', 5000);
    // Both sweepers ran several times past the expiry: still one removal.
    await new Promise((r) => setTimeout(r, 1200));
    for (const s of seen)
      assert.deepEqual(
        s.map((p) => [p.offset, p.removed === true]),
        [
          [a.position.offset, false],
          [a.position.offset + 1, true],
        ],
      );
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
    await dropPrefix(prefix);
  }
});
