// Two Herald nodes sharding channels across two Redis servers of the test's own (REDIS_URL lists both). Each
// channel lives on one shard; a fault in one shard refuses and recovers only that shard's channels, and the other
// shard's subscribers are not disturbed; a node that lists the shards in another order is refused.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { shardOf } from '../../packages/server/src/engine/redis/shards.js';
import { subscriber, type TrackedSub } from './support/clients.js';
import { storeLost } from './support/checker.js';
import { expectNothingLost } from './support/nothing-lost.js';
import { API_KEY, Cluster, type HeraldNode } from './support/nodes.js';
import { startPublisher } from './support/publisher.js';
import { startTestRedis, type TestRedis } from './support/redis-server.js';
import { sleep, waitFor } from './support/util.js';

describe('channels sharded across two Redis servers under two Herald nodes', { timeout: 180_000 }, () => {
  let shards: TestRedis[];
  let cluster: Cluster;
  let nodes: HeraldNode[];
  let subs: TrackedSub[] = [];
  let run = 0;
  const prefix = `herald-sharded-${process.pid}`;

  before(async () => {
    shards = await Promise.all([startTestRedis(), startTestRedis()]);
    cluster = new Cluster(shards.map((s) => s.url).join(','), prefix);
    nodes = await Promise.all([cluster.start('a'), cluster.start('b')]);
  });
  after(async () => {
    await cluster?.stop();
    await Promise.all((shards ?? []).map((s) => s.stop()));
  });
  afterEach(() => {
    for (const s of subs) s.client.disconnect();
    subs = [];
  });

  /** A fresh channel that lives on shard `i` (0-based), by the same function the nodes use. */
  function channelOn(i: number): string {
    for (let n = 0; ; n++) {
      const ch = `room:sh${++run}-${n}`;
      if (shardOf(ch, 2) === i) return ch;
    }
  }

  /** Subscribers on both nodes for each channel. */
  async function subscribe(channels: string[]): Promise<Record<string, TrackedSub[]>> {
    const by: Record<string, TrackedSub[]> = {};
    for (const ch of channels) {
      by[ch] = [];
      for (const node of nodes) {
        const s = await subscriber(`u-${node.name}-${ch}`, ch, () => node.wsUrl);
        subs.push(s);
        by[ch]!.push(s);
      }
    }
    return by;
  }

  test('each channel is stored and fed by its own shard only, and a publication on either node reaches subscribers on both', async () => {
    const chans = [channelOn(0), channelOn(1)];
    const by = await subscribe(chans);
    for (const [i, ch] of chans.entries()) {
      const r = await nodes[i]!.api('publish', { channel: ch, data: { id: `hello-${ch}` } });
      assert.equal(r.status, 200, JSON.stringify(r.error));
    }
    for (const ch of chans) {
      await waitFor(
        () => by[ch]!.every((s) => s.events.some((e) => e.type === 'pub' && e.id === `hello-${ch}`)),
        `both nodes' subscribers of ${ch} got it`,
      );
    }
    for (const [home, ch] of chans.entries()) {
      for (const [i, shard] of shards.entries()) {
        assert.equal(
          await shard.command('EXISTS', `${prefix}.stream.{${ch}}`),
          i === home ? 1 : 0,
          `${ch}'s history is on shard ${home + 1} only`,
        );
        const [, feeds] = (await shard.command('PUBSUB', 'NUMSUB', `${prefix}.pub.{${ch}}`)) as [string, number];
        assert.equal(
          Number(feeds),
          i === home ? 2 : 0,
          `${ch}'s feed is subscribed on shard ${home + 1} only, once per node`,
        );
      }
    }
    const [, control0] = (await shards[0]!.command('PUBSUB', 'NUMSUB', `${prefix}.control`)) as [string, number];
    const [, control1] = (await shards[1]!.command('PUBSUB', 'NUMSUB', `${prefix}.control`)) as [string, number];
    assert.deepEqual([Number(control0), Number(control1)], [2, 0], 'node-to-node control messages go through shard 1');
    // Control messages still reach every node: `info` lists both.
    await waitFor(async () => (await nodes[0]!.api('info', {})).result?.nodes?.length === 2, 'info lists both nodes');
  });

  test("a frozen shard refuses publishes to its own channels only: the other shard's channels keep flowing, and nothing acknowledged is lost", async () => {
    const healthy = channelOn(0);
    const frozen = channelOn(1);
    const by = await subscribe([healthy, frozen]);
    let k = 0;
    const pub = startPublisher(`p${run}`, [healthy, frozen], () => nodes[k++ % 2], { intervalMs: 10 });
    await sleep(400);
    const faultAt = Date.now();
    shards[1]!.freeze();
    try {
      await waitFor(async () => (await nodes[0]!.ready()) === 503, '/ready 503 while shard 2 is frozen', 8000);
      const ready = (await (
        await fetch(`http://127.0.0.1:${nodes[0]!.port}/ready`, { headers: { 'x-api-key': API_KEY } })
      ).json()) as { checks: Record<string, string> };
      assert.match(ready.checks.engine!, /redis shard 2\/2: /, `/ready names the frozen shard: ${ready.checks.engine}`);
      const refused = await nodes[1]!.api('publish', { channel: frozen, data: { id: 'refused' } }, 8000);
      assert.equal(refused.status, 503);
      assert.equal(refused.error?.code, 100);
      const during = await nodes[1]!.api('publish', { channel: healthy, data: { id: 'during-freeze' } });
      assert.equal(during.status, 200, 'a channel of the other shard publishes while shard 2 is frozen');
      await waitFor(
        () => by[healthy]!.every((s) => s.events.some((e) => e.type === 'pub' && e.id === 'during-freeze')),
        'delivered during the freeze',
      );
      await sleep(800);
    } finally {
      shards[1]!.thaw();
    }
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => n.ready()))).every((s) => s === 200),
      'both nodes ready again',
      20_000,
    );
    const readyAt = Date.now();
    await sleep(600);
    const stats = await pub.stop();
    await expectNothingLost('frozen shard', stats, subs, {
      faultAt,
      excused: 'none',
      refused: 'some',
      refusedWithin: { from: faultAt, until: readyAt + 1000 },
      refusedOnly: [frozen],
      maxUnanswered: 0,
    });
    assert.ok(
      stats.acks.filter((a) => a.channel === frozen).length > 10 &&
        stats.acks.filter((a) => a.channel === healthy).length > 10,
      'both channels made progress',
    );
  });

  test("a shard restarted empty tells its channels' subscribers recovered: false, and leaves the other shard's subscribers alone", async () => {
    const kept = channelOn(0);
    const wiped = channelOn(1);
    const by = await subscribe([kept, wiped]);
    let k = 0;
    const pub = startPublisher(`p${run}`, [kept, wiped], () => nodes[k++ % 2], { intervalMs: 10 });
    await sleep(400);
    const faultAt = Date.now();
    await shards[1]!.restart(1000);
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => n.ready()))).every((s) => s === 200),
      'both nodes ready again',
      20_000,
    );
    const readyAt = Date.now();
    await sleep(800);
    const stats = await pub.stop();
    await expectNothingLost('shard restarted empty', stats, subs, {
      faultAt,
      // Only the wiped shard's subscribers may be told, and lose only what was acknowledged just before the restart
      // (1 s is generous) or published in the new epoch before they were told.
      excused: storeLost({
        what: `${wiped} only: acked from 1 s before the restart, told within 5 s of ready`,
        channels: [wiped],
        lostFrom: faultAt - 1000,
        from: faultAt,
        until: readyAt + 5000,
      }),
      refused: 'some',
      refusedWithin: { from: faultAt, until: readyAt + 1000 },
      refusedOnly: [wiped],
      maxUnanswered: 0,
    });
    for (const s of by[wiped]!) {
      const resubs = s.events.filter((e) => e.type === 'subscribed').slice(1);
      assert.ok(
        resubs.some((e) => e.type === 'subscribed' && e.wasRecovering && !e.recovered),
        `${s.user} was told recovered: false`,
      );
    }
    for (const s of by[kept]!) {
      assert.equal(
        s.events.filter((e) => e.type === 'subscribed').length,
        1,
        `${s.user} on the other shard was not made to resubscribe`,
      );
    }
    assert.equal(
      await shards[1]!.command('GET', `${prefix}.shard`),
      '2/2',
      'the nodes claimed the restarted shard again',
    );
  });

  test('a node whose REDIS_URL lists the shards in another order is not ready and logs redis_shard_mismatch, while the others serve', async () => {
    const wrong = await cluster.start(
      'wrong-order',
      {
        REDIS_URL: [...shards]
          .reverse()
          .map((s) => s.url)
          .join(','),
      },
      'health',
    );
    try {
      await waitFor(
        async () => (await wrong.ready()) === 503 && wrong.logs.some((l) => l.code === 'redis_shard_mismatch'),
        'the misordered node refused',
        10_000,
      );
      const body = (await (
        await fetch(`http://127.0.0.1:${wrong.port}/ready`, { headers: { 'x-api-key': API_KEY } })
      ).json()) as { checks: Record<string, string> };
      assert.match(body.checks.engine!, /lists this Redis as shard 1\/2, but other nodes use it as shard 2\/2/);
      const line = wrong.logs.find((l) => l.code === 'redis_shard_mismatch')!;
      assert.match(line.msg, /same order/);
      for (const n of nodes) assert.equal(await n.ready(), 200, `node ${n.name} stays ready`);
    } finally {
      await wrong.kill('SIGKILL');
    }
  });
});
