import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerEventHandler } from '../src/engine/broker.js';
import type { Engine } from '../src/engine/engine.js';
import { redisKeys } from '../src/engine/redis/keys.js';
import { keySlot, slotTag } from '../src/engine/redis/slots.js';
import { redisTestEngine, uniquePrefix } from './support/engines.js';
import { waitFor } from './support/herald.js';
import { startRedisCluster, type TestRedisCluster } from './support/redis-cluster.js';

/** Every key name a channel uses in a cluster, by what it is. */
function keysOfChannel(prefix: string, ch: string): Record<string, string> {
  const k = redisKeys(prefix, { cluster: true });
  return {
    stream: k.stream(ch),
    meta: k.meta(ch),
    idempotency: k.idempotency(ch, 'key-1'),
    'idempotency (no key)': k.idempotency(ch, ''),
    presence: k.presence(ch),
    presenceExpiry: k.presenceExpiry(ch),
    feed: k.feed(ch),
    registry: k.registry(ch),
    lifecycleHolds: k.lifecycleHolds(ch),
    lifecycleCounts: k.lifecycleCounts(ch),
    lifecycleIndex: k.lifecycleIndex(ch),
  };
}

const CHANNELS = ['news', 'room:1', 'room:2', 'chat:user#42,7', 'a', 'ü/ñ:ключ', 'x'.repeat(200), '$private:doc.1'];

test('the slot function agrees with the Redis Cluster specification on known keys', () => {
  // CLUSTER KEYSLOT answers: foo 12182, the tag of {user1000}.following 3443, 123456789 (CRC16 0x31C3) 12739.
  assert.equal(keySlot('foo'), 12182);
  assert.equal(keySlot('{user1000}.following'), 3443);
  assert.equal(keySlot('123456789'), 12739);
  // Only the first {…} counts.
  assert.equal(keySlot('{a}{b}'), keySlot('a'));
});

test('every slot has a tag that hashes to it', () => {
  for (let slot = 0; slot < 16384; slot++) assert.equal(keySlot(`x.{${slotTag(slot)}}`), slot);
});

test('every key one channel uses, the per-slot registry and lifecycle index included, hashes to one slot', () => {
  for (const ch of CHANNELS) {
    const keys = keysOfChannel('herald', ch);
    const slots = Object.fromEntries(Object.entries(keys).map(([what, key]) => [what, keySlot(key)]));
    const expected = keySlot(`{${ch}}`);
    for (const [what, slot] of Object.entries(slots))
      assert.equal(slot, expected, `${what} (${keys[what]}) of channel ${JSON.stringify(ch)}`);
  }
});

test('on one Redis the registry and the lifecycle index keep their single names', () => {
  const k = redisKeys('herald');
  assert.equal(k.registry('room:1'), 'herald.epochs');
  assert.equal(k.lifecycleIndex('room:1'), 'herald.wh.index');
});

interface Events {
  pubs: string[];
  controls: string[];
  interrupted: number;
  handler: BrokerEventHandler;
}

function events(): Events {
  const e: Events = {
    pubs: [],
    controls: [],
    interrupted: 0,
    handler: {
      onPublication: (ch, pub, pos) => e.pubs.push(`${ch}@${pos.offset}:${pub.data}`),
      onJoin: () => {},
      onLeave: () => {},
      onControl: (m) => e.controls.push(JSON.stringify(m)),
      onFeedInterrupted: () => void e.interrupted++,
    },
  };
  return e;
}

const opts = { historySize: 100, historyTtlMs: 60_000 };
const hq = { historySize: 100, historyTtlMs: 60_000, historyMetaTtlMs: 3_600_000, limit: -1 };

describe('the Redis engine on a 6-node Redis Cluster', { timeout: 60_000 }, () => {
  let cluster: TestRedisCluster;
  let a: Engine;
  let b: Engine;
  const ea = events();
  const eb = events();
  const prefix = uniquePrefix('cluster');

  before(async () => {
    cluster = await startRedisCluster();
    const nodes = [cluster.nodesEnv.split(',')[0]!];
    a = await redisTestEngine({ clusterNodes: nodes, prefix });
    b = await redisTestEngine({ clusterNodes: [cluster.nodesEnv.split(',')[3]!], prefix });
    await a.broker.run(ea.handler);
    await b.broker.run(eb.handler);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
  });

  test('Redis computes the same slot as Herald for every key of every channel', async () => {
    for (const ch of CHANNELS) {
      for (const [what, key] of Object.entries(keysOfChannel(prefix, ch)))
        assert.equal(Number(await cluster.command(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', key)), keySlot(key), what);
    }
  });

  test('channels on all three primaries: publications reach the other node in order, and history and presence answer', async () => {
    // Channels until every primary owns at least one.
    const byPrimary = new Map<number, string>();
    for (let i = 0; byPrimary.size < 3 && i < 200; i++) {
      const ch = `spread:${i}`;
      const port = await cluster.primaryOfSlot(keySlot(`{${ch}}`));
      if (!byPrimary.has(port)) byPrimary.set(port, ch);
    }
    assert.equal(byPrimary.size, 3);
    const chans = [...byPrimary.values()];
    for (const ch of chans) await b.broker.subscribe(ch);
    for (let i = 1; i <= 5; i++)
      for (const ch of chans) {
        const pos = await a.broker.publish(ch, { data: `"${i}"` }, opts);
        assert.equal(pos.offset, i);
      }
    await waitFor(() => eb.pubs.length >= 15, 'deliveries on b');
    for (const ch of chans)
      assert.deepEqual(
        eb.pubs.filter((p) => p.startsWith(`${ch}@`)),
        [1, 2, 3, 4, 5].map((i) => `${ch}@${i}:"${i}"`),
      );
    const h = await b.history.history(chans[0]!, { ...hq, since: { offset: 2, epoch: '' } });
    assert.deepEqual(
      h.publications.map((p) => p.offset),
      [3, 4, 5],
    );
    await a.presence.addPresence(chans[1]!, { client: 'c1', user: 'u1' }, 60_000);
    await b.presence.addPresence(chans[1]!, { client: 'c2', user: 'u2' }, 60_000);
    assert.deepEqual([...(await a.presence.presence(chans[1]!)).keys()].sort(), ['c1', 'c2']);
    assert.deepEqual(await b.presence.presenceStats(chans[1]!), { numClients: 2, numUsers: 2 });
  });

  test('control messages reach every node through the control channel', async () => {
    await a.broker.publishControl({ type: 'unsubscribe', user: 'cluster-u', channel: 'room:1' });
    await waitFor(() => eb.controls.some((c) => c.includes('cluster-u')), 'control message on b');
    await waitFor(() => ea.controls.some((c) => c.includes('cluster-u')), 'control message on a');
  });

  test('webhook lifecycle holds on channels of different slots are swept once their node stops refreshing them', async () => {
    assert.equal(await a.lifecycle!.hold('life:1', 'o', 'node-a', 100), true);
    assert.equal(await b.lifecycle!.hold('life:1', 'o', 'node-b', 60_000), false);
    assert.equal(await a.lifecycle!.hold('life:2', 'o', 'node-a', 100), true);
    assert.notEqual(keySlot('{life:1}'), keySlot('{life:2}'));
    await new Promise((r) => setTimeout(r, 250));
    // life:1 is still held by node-b; life:2 by nobody.
    assert.deepEqual(await b.lifecycle!.sweep(100), [{ channel: 'life:2', key: 'o' }]);
    assert.equal(await b.lifecycle!.release('life:1', 'o', 'node-b'), true);
  });

  test('a subscribed channel whose slot moves to another primary: the feed follows it and reports the interruption, and the history moved along', async () => {
    const ch = 'move:1';
    const slot = keySlot(`{${ch}}`);
    await b.broker.subscribe(ch);
    await a.broker.publish(ch, { data: '"before"' }, opts);
    await waitFor(() => eb.pubs.includes(`${ch}@1:"before"`), 'delivery before the move');
    const before = eb.interrupted;
    const from = await cluster.primaryOfSlot(slot);
    const primaries = (await cluster.topology()).filter((n) => n.role === 'master').map((n) => n.port);
    await cluster.moveSlot(
      slot,
      primaries.find((p) => p !== from)!,
    );
    await waitFor(() => eb.interrupted > before, 'feed interruption reported on b', 10_000);
    await waitFor(() => b.isReady(), 'b ready again', 10_000);
    let offset = 0;
    await waitFor(
      async () => {
        offset = (await a.broker.publish(ch, { data: '"after"' }, opts).catch(() => ({ offset: 0 }))).offset;
        return offset > 0;
      },
      'a publish accepted by the new owner of the slot',
      10_000,
    );
    assert.equal(offset, 2);
    await waitFor(() => eb.pubs.includes(`${ch}@2:"after"`), 'delivery after the move', 10_000);
    const h = await b.history.history(ch, hq);
    assert.deepEqual(
      h.publications.map((p) => p.data),
      ['"before"', '"after"'],
    );
  });

  test('a CLUSTER FAILOVER of the primary that holds a subscribed channel: the feed follows the new primary and reports the interruption', async () => {
    const ch = 'follow:1';
    await b.broker.subscribe(ch);
    await a.broker.publish(ch, { data: '"before"' }, opts);
    await waitFor(() => eb.pubs.includes(`${ch}@1:"before"`), 'delivery before the failover');
    const before = eb.interrupted;
    const primary = await cluster.primaryOfSlot(keySlot(`{${ch}}`));
    const { to } = await cluster.failover(primary);
    assert.equal(await cluster.primaryOfSlot(keySlot(`{${ch}}`)), to);
    await waitFor(() => eb.interrupted > before, 'feed interruption reported on b', 10_000);
    await waitFor(() => b.isReady(), 'b ready again', 10_000);
    // Publishes may be refused while the client learns the new slot map; the first accepted one is delivered.
    let offset = 0;
    await waitFor(
      async () => {
        offset = (await a.broker.publish(ch, { data: '"after"' }, opts).catch(() => ({ offset: 0 }))).offset;
        return offset > 0;
      },
      'a publish accepted by the new primary',
      10_000,
    );
    assert.equal(offset, 2);
    await waitFor(() => eb.pubs.includes(`${ch}@2:"after"`), 'delivery after the failover', 10_000);
  });
});
