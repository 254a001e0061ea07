import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerEventHandler, ControlMessage } from '../src/engine/broker.js';
import type { Engine } from '../src/engine/engine.js';
import type { ClientInfo, Publication, StreamPosition } from '../src/engine/types.js';
import { engineFactories, engineNames, heavyEngineNames } from './support/engines.js';
import { waitFor } from './support/herald.js';

/** The contracts written on engine/broker.ts, history.ts and presence.ts, checked through the interfaces alone. */

interface Recorder extends BrokerEventHandler {
  pubs: { channel: string; pub: Publication; position: StreamPosition }[];
  joins: string[];
  leaves: string[];
  controls: ControlMessage[];
}

function recorder(): Recorder {
  const r: Recorder = {
    pubs: [],
    joins: [],
    leaves: [],
    controls: [],
    onPublication: (channel, pub, position) => r.pubs.push({ channel, pub, position }),
    onJoin: (channel, info) => r.joins.push(`${channel}:${info.client}`),
    onLeave: (channel, info) => r.leaves.push(`${channel}:${info.client}`),
    onControl: (m) => r.controls.push(m),
    onFeedInterrupted: () => {},
  };
  return r;
}

const opts = { historySize: 5, historyTtlMs: 60_000 };
const hq = { historySize: 5, historyTtlMs: 60_000, historyMetaTtlMs: 3_600_000 };
let seq = 0;
const uniq = (name: string) => `contract-${process.pid}-${Date.now()}-${++seq}-${name}`;

// The contract takes one engine per suite: it runs on the heavy engines too unless HERALD_TEST_ENGINES chooses.
const contractEngines =
  process.env.HERALD_TEST_ENGINES === undefined ? [...engineNames, ...heavyEngineNames] : engineNames;

for (const engineName of contractEngines) {
  describe(`engine contract (${engineName})`, { timeout: 30_000 }, () => {
    let engine: Engine;
    let rec: Recorder;
    before(async () => {
      engine = await engineFactories[engineName]!();
      rec = recorder();
      await engine.broker.run(rec);
    });
    after(() => engine.close());

    test('publishes to one channel get consecutive offsets in one epoch and reach the subscribed node in order', async () => {
      const ch = uniq('order');
      await engine.broker.subscribe(ch);
      const positions: StreamPosition[] = [];
      for (let i = 0; i < 10; i++)
        positions.push(await engine.broker.publish(ch, { data: JSON.stringify({ i }) }, opts));
      assert.deepEqual(
        positions.map((p) => p.offset),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
      await waitFor(() => rec.pubs.filter((p) => p.channel === ch).length === 10, 'deliveries');
      const got = rec.pubs.filter((p) => p.channel === ch);
      assert.deepEqual(
        got.map((p) => p.pub.offset),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      assert.deepEqual(JSON.parse(got[3]!.pub.data), { i: 3 });
      assert.equal(got[0]!.position.epoch, positions[0]!.epoch);
    });

    test('concurrent publishes to one channel still get distinct consecutive offsets', async () => {
      const ch = uniq('concurrent');
      const positions = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          engine.broker.publish(ch, { data: String(i) }, { historySize: 100, historyTtlMs: 60_000 }),
        ),
      );
      assert.deepEqual(
        positions.map((p) => p.offset).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
    });

    test('rotateEpoch starts a new epoch only if the epoch is still the given one, and offsets go on from the top', async () => {
      const ch = uniq('rotate');
      const first = await engine.broker.publish(ch, { data: '1' }, opts);
      await engine.broker.publish(ch, { data: '2' }, opts);
      const next = await engine.history.rotateEpoch(ch, first.epoch);
      assert.notEqual(next, first.epoch);
      assert.equal(
        await engine.history.rotateEpoch(ch, first.epoch),
        next,
        'a second rotation from the old epoch changes nothing',
      );
      const after = await engine.broker.publish(ch, { data: '3' }, opts);
      assert.deepEqual(after, { offset: 3, epoch: next });
      const h = await engine.history.history(ch, { since: { offset: 1, epoch: first.epoch }, limit: -1, ...hq });
      assert.equal(h.position.epoch, next, 'a client holding the old epoch cannot recover from it');
    });

    test('a publish without history has offset 0 and is still delivered', async () => {
      const ch = uniq('nohist');
      await engine.broker.subscribe(ch);
      const pos = await engine.broker.publish(ch, { data: '"x"' }, { historySize: 0, historyTtlMs: 0 });
      assert.equal(pos.offset, 0);
      await waitFor(() => rec.pubs.some((p) => p.channel === ch), 'delivery');
    });

    test('history keeps the newest history_size publications and answers since, limit and reverse', async () => {
      const ch = uniq('history');
      for (let i = 1; i <= 8; i++) await engine.broker.publish(ch, { data: String(i), tags: { n: String(i) } }, opts);
      const all = await engine.history.history(ch, { ...hq, limit: -1 });
      assert.deepEqual(
        all.publications.map((p) => p.offset),
        [4, 5, 6, 7, 8],
      );
      assert.equal(all.position.offset, 8);
      assert.deepEqual(all.publications[0]!.tags, { n: '4' });
      const since = await engine.history.history(ch, {
        ...hq,
        limit: -1,
        since: { offset: 6, epoch: all.position.epoch },
      });
      assert.deepEqual(
        since.publications.map((p) => p.offset),
        [7, 8],
      );
      const rev = await engine.history.history(ch, { ...hq, limit: 2, reverse: true });
      assert.deepEqual(
        rev.publications.map((p) => p.offset),
        [8, 7],
      );
      const pos = await engine.history.history(ch, { ...hq, limit: 0 });
      assert.deepEqual(pos.publications, []);
      assert.deepEqual(pos.position, all.position);
    });

    test('reading an unknown channel creates its epoch, which the first publish keeps', async () => {
      const ch = uniq('fresh');
      const before = await engine.history.history(ch, { ...hq, limit: 0 });
      assert.equal(before.position.offset, 0);
      assert.ok(before.position.epoch.length > 0);
      const pos = await engine.broker.publish(ch, { data: '1' }, opts);
      assert.deepEqual(pos, { offset: 1, epoch: before.position.epoch });
    });

    test('removing history drops publications but keeps the position', async () => {
      const ch = uniq('remove');
      await engine.broker.publish(ch, { data: '1' }, opts);
      const p2 = await engine.broker.publish(ch, { data: '2' }, opts);
      await engine.history.removeHistory(ch);
      const r = await engine.history.history(ch, { ...hq, limit: -1 });
      assert.deepEqual(r.publications, []);
      assert.deepEqual(r.position, p2);
    });

    test('an idempotency key makes a repeated publish return the first position without a new publication', async () => {
      const ch = uniq('idem');
      const a = await engine.broker.publish(
        ch,
        { data: '1' },
        { ...opts, idempotencyKey: 'k', idempotentResultTtlMs: 60_000 },
      );
      const b = await engine.broker.publish(
        ch,
        { data: '1' },
        { ...opts, idempotencyKey: 'k', idempotentResultTtlMs: 60_000 },
      );
      assert.deepEqual(a, b);
      assert.equal((await engine.history.history(ch, { ...hq, limit: -1 })).publications.length, 1);
    });

    test('publication info and tags survive the round trip', async () => {
      const ch = uniq('info');
      await engine.broker.subscribe(ch);
      const info: ClientInfo = { user: 'u1', client: 'c1', connInfo: '{"name":"A"}', chanInfo: '{"role":"x"}' };
      await engine.broker.publish(ch, { data: '{"a":1}', info, tags: { k: 'v' } }, opts);
      const got = await waitFor(() => rec.pubs.find((p) => p.channel === ch), 'delivery');
      assert.deepEqual(got.pub.info, info);
      assert.deepEqual(got.pub.tags, { k: 'v' });
      const h = await engine.history.history(ch, { ...hq, limit: -1 });
      assert.deepEqual(h.publications[0]!.info, info);
    });

    test('join, leave and control messages reach the node', async () => {
      const ch = uniq('events');
      await engine.broker.subscribe(ch);
      await engine.broker.publishJoin(ch, { user: 'u', client: 'c9' });
      await engine.broker.publishLeave(ch, { user: 'u', client: 'c9' });
      await engine.broker.publishControl({ type: 'disconnect', user: 'u', code: 3503, reason: 'x' });
      await waitFor(() => rec.joins.includes(`${ch}:c9`) && rec.leaves.includes(`${ch}:c9`), 'join and leave');
      await waitFor(() => rec.controls.some((m) => m.type === 'disconnect' && m.user === 'u'), 'control');
    });

    test('presence adds, refreshes idempotently, removes and counts distinct users', async () => {
      const ch = uniq('presence');
      const p = engine.presence;
      await p.addPresence(ch, { user: 'a', client: '1' }, 60_000);
      await p.addPresence(ch, { user: 'a', client: '2', connInfo: '{"x":1}' }, 60_000);
      await p.addPresence(ch, { user: 'b', client: '3' }, 60_000);
      await p.addPresence(ch, { user: 'b', client: '3' }, 60_000);
      assert.deepEqual(await p.presenceStats(ch), { numClients: 3, numUsers: 2 });
      const entries = await p.presence(ch);
      assert.deepEqual(entries.get('2'), { user: 'a', client: '2', connInfo: '{"x":1}' });
      await p.removePresence(ch, '1', 'a');
      await p.removePresence(ch, 'missing', 'z');
      assert.deepEqual(await p.presenceStats(ch), { numClients: 2, numUsers: 2 });
      assert.equal((await p.presence(uniq('empty'))).size, 0);
    });
    test('publications older than the history TTL leave history while the position and epoch stay', async () => {
      const ch = uniq('ttl');
      const short = { historySize: 10, historyTtlMs: 150 };
      const first = await engine.broker.publish(ch, { data: '1' }, short);
      await engine.broker.publish(ch, { data: '2' }, short);
      await new Promise((r) => setTimeout(r, 300));
      const third = await engine.broker.publish(ch, { data: '3' }, short);
      const r = await engine.history.history(ch, {
        limit: -1,
        historySize: 10,
        historyTtlMs: 150,
        historyMetaTtlMs: 60_000,
      });
      assert.deepEqual(
        r.publications.map((p) => p.data),
        ['3'],
      );
      assert.deepEqual(r.position, { offset: 3, epoch: first.epoch });
      assert.equal(third.epoch, first.epoch);
      const since = await engine.history.history(ch, {
        since: { offset: 1, epoch: first.epoch },
        limit: -1,
        historySize: 10,
        historyTtlMs: 150,
        historyMetaTtlMs: 60_000,
      });
      assert.ok(
        since.publications.length < since.position.offset - 1,
        'recovery from offset 1 is incomplete, so it cannot claim recovered: true',
      );
    });
  });
}
