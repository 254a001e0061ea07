// Two Herald nodes (real processes) on a 6-node Redis Cluster of the test's own (3 primaries, 3 replicas, made by
// `redis-cli --cluster create` on loopback ports): HERALD_REDIS_CLUSTER_NODES, sharded pub/sub. Publications on
// either node reach SDK subscribers on both for channels on every primary, with history, recovery and presence.
// Then a primary is SIGKILLed under a running publisher with HERALD_REDIS_MIN_REPLICAS=1: its replica is promoted,
// publishes during the switch are refused (503 / error 100), the nodes follow the new primary without a restart,
// and the nothing-lost checker finds no acknowledged publication missing; `recovered: false` only during the switch
// and only of the new epoch (a rewind of publications that were refused, not acknowledged).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { keySlot } from '../../packages/server/src/engine/redis/slots.js';
import { startRedisCluster, type TestRedisCluster } from '../../packages/server/test/support/redis-cluster.js';
import { Redis } from 'ioredis';
import { newEpochOnly, storeLost } from './support/checker.js';
import { subscriber, type TrackedSub } from './support/clients.js';
import { expectNothingLost } from './support/nothing-lost.js';
import { Cluster, type HeraldNode } from './support/nodes.js';
import { startPublisher } from './support/publisher.js';
import { sleep, waitFor } from './support/util.js';

describe('Herald nodes on a Redis Cluster', { timeout: 90_000 }, () => {
  let redis: TestRedisCluster;
  let herald: Cluster;
  let two: Cluster | undefined;
  let nodes: HeraldNode[];
  const subs: TrackedSub[] = [];
  const prefix = `herald-cluster-${process.pid}`;

  /** A channel named `<stem>-<n>` for the first n whose slot the primary at `port` owns (or, negated, does not). */
  async function channelOn(stem: string, port: number, on = true): Promise<string> {
    for (let n = 0; n < 500; n++) {
      const ch = `${stem}-${n}`;
      if (((await redis.primaryOfSlot(keySlot(`{${ch}}`))) === port) === on) return ch;
    }
    throw new Error(`no channel ${stem}-* ${on ? 'on' : 'off'} :${port}`);
  }

  /**
   * Reads the replica at `port` every few ms until it is promoted: the last reading taken while it was still a
   * replica gives, per channel, the epoch and top offset it held (READONLY: a cluster replica answers reads of its
   * primary's slots). The meta is read before ROLE on the same connection, so a reading followed by `slave` was
   * taken before the promotion. Anything at or below that offset is on the new primary.
   */
  function watchReplica(port: number, metaPrefix: string, channels: string[]) {
    const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 20 }).on('error', () => {});
    let last: Map<string, { epoch: string; offset: number }> | undefined;
    let stopped = false;
    const done = (async () => {
      await r.call('READONLY');
      for (let i = 0; !stopped && i < 20_000; i++) {
        try {
          const p = r.pipeline();
          for (const ch of channels) p.hmget(`${metaPrefix}.meta.{${ch}}`, 'e', 's');
          p.role();
          const res = (await p.exec()) ?? [];
          const role = res[channels.length]?.[1] as string[] | undefined;
          if (role?.[0] !== 'slave') break;
          // Once the cluster marks the primary failed, the replica answers CLUSTERDOWN until its promotion: the
          // last reading it answered stands (nothing reaches it from the dead primary any more).
          if (res.slice(0, channels.length).every(([err]) => !err))
            last = new Map(
              channels.map((ch, j) => {
                const [e, o] = (res[j]?.[1] ?? []) as (string | null)[];
                return [ch, { epoch: e ?? '', offset: Number(o ?? 0) }];
              }),
            );
        } catch {
          // Read again (the role tells).
        }
        await sleep(3);
      }
      r.disconnect();
    })();
    return {
      async kept() {
        await done;
        if (!last) throw new Error(`no reading of the replica :${port} before its promotion`);
        return last;
      },
      stop() {
        stopped = true;
      },
    };
  }

  before(async () => {
    redis = await startRedisCluster();
    herald = new Cluster('', prefix, {
      HERALD_REDIS_CLUSTER_NODES: redis.nodesEnv,
      HERALD_REDIS_MIN_REPLICAS: '1',
    });
    nodes = await Promise.all([herald.start('a'), herald.start('b')]);
  });
  after(async () => {
    for (const s of subs) s.client.disconnect();
    await herald?.stop();
    await two?.stop();
    await redis?.stop();
  });

  test('publications on either node reach subscribers on both for channels on every primary, and history, recovery and presence work', async () => {
    const primaries = (await redis.topology()).filter((n) => n.role === 'master').map((n) => n.port);
    assert.equal(primaries.length, 3);
    const chans = await Promise.all(primaries.map((p, i) => channelOn(`room:spread${i}`, p)));
    const mine: TrackedSub[] = [];
    for (const [i, ch] of chans.entries())
      for (const node of nodes) mine.push(await subscriber(`s${i}-${node.name}`, ch, () => node.wsUrl));
    subs.push(...mine);
    const acked: { channel: string; id: string; offset: number }[] = [];
    for (let i = 0; i < 10; i++)
      for (const ch of chans) {
        const r = await nodes[i % 2]!.api('publish', { channel: ch, data: { id: `p${i}` } });
        assert.equal(r.status, 200, JSON.stringify(r.error));
        acked.push({ channel: ch, id: `p${i}`, offset: r.result.offset as number });
      }
    await waitFor(() => mine.every((s) => s.events.filter((e) => e.type === 'pub').length === 10), 'every pub', 10_000);
    for (const s of mine)
      assert.deepEqual(
        s.events.flatMap((e) => (e.type === 'pub' ? [`${e.offset}:${e.id}`] : [])),
        acked.filter((a) => a.channel === s.channel).map((a) => `${a.offset}:${a.id}`),
        s.user,
      );
    // History from the node that did not publish the first one.
    const h = await nodes[1]!.api('history', { channel: chans[0], limit: 100 });
    assert.deepEqual(
      (h.result.publications as { data: { id: string } }[]).map((p) => p.data.id),
      acked.filter((a) => a.channel === chans[0]).map((a) => a.id),
    );
    // Presence lists the subscribers of both nodes, from either node.
    for (const node of nodes) {
      const r = await node.api('presence', { channel: chans[2] });
      const users = Object.values(r.result.presence as Record<string, { user: string }>)
        .map((p) => p.user)
        .sort();
      assert.deepEqual(users, ['s2-a', 's2-b']);
    }
    // A client that reconnects recovers what was published while it was away (recovered: true).
    const away = mine[0]!;
    away.client.disconnect();
    for (let i = 10; i < 13; i++)
      assert.equal((await nodes[1]!.api('publish', { channel: away.channel, data: { id: `p${i}` } })).status, 200);
    away.client.connect();
    await waitFor(() => away.events.filter((e) => e.type === 'pub').length === 13, 'the missed publications', 10_000);
    const last = away.events.filter((e) => e.type === 'subscribed').at(-1);
    assert.ok(last?.type === 'subscribed' && last.wasRecovering && last.recovered, 'recovered: true');
  });

  test('a primary SIGKILLed under load with HERALD_REDIS_MIN_REPLICAS=1: its replica takes over, publishes during the switch are refused, the nodes follow without a restart, and nothing acknowledged is lost', async () => {
    const victim = await redis.primaryOfSlot(keySlot('{room:fail-0}'));
    const chans = [
      await channelOn('room:fail', victim),
      await channelOn('room:fail-b', victim),
      await channelOn('room:steady', victim, false),
    ];
    const mine: TrackedSub[] = [];
    for (const [i, ch] of chans.entries())
      for (const node of nodes) mine.push(await subscriber(`f${i}-${node.name}`, ch, () => node.wsUrl));
    subs.push(...mine);
    let k = 0;
    const pub = startPublisher('cluster', chans, () => nodes[k++ % 2], { intervalMs: 10 });
    let faultAt = 0;
    let failover = { from: 0, to: 0, promotedAt: 0 };
    let resumedAt = 0;
    try {
      await sleep(500);
      faultAt = Date.now();
      failover = await redis.killPrimary(victim);
      await waitFor(
        async () => (await Promise.all(nodes.map((n) => n.ready()))).every((s) => s === 200),
        'both nodes ready again',
        20_000,
      );
      const acksBefore = pub.stats.acks.length;
      await waitFor(
        () => chans.every((ch) => pub.stats.acks.slice(acksBefore).filter((a) => a.channel === ch).length > 10),
        'publishes to every channel succeed after the failover',
        20_000,
      );
      resumedAt = Date.now();
    } finally {
      await pub.stop();
    }
    const stats = pub.stats;
    const { from, to, promotedAt } = failover;
    console.log(
      `# promoted ${promotedAt - faultAt} ms after the kill, publishes resumed after ${resumedAt - faultAt} ms`,
    );
    const moved = nodes.reduce((n, node) => n + node.logs.filter((l) => l.code === 'redis_feed_moved').length, 0);
    await expectNothingLost(`cluster primary :${from} killed, :${to} promoted`, stats, mine, {
      faultAt,
      excused: newEpochOnly({
        what: 'told during the switch (until 5 s after publishes succeed again), only of the new epoch',
        from: faultAt,
        until: resumedAt + 5000,
      }),
      refused: 'some',
      refusedWithin: { from: faultAt, until: resumedAt },
      maxUnanswered: 0,
      note: `feed rebuilds logged ${moved}`,
      onProblems() {
        for (const s of mine)
          console.log(
            `# ${s.user}: ${s.events.map((e) => (e.type === 'pub' ? `${e.offset}:${e.id}` : `[sub ${e.epoch}:${e.offset} rec=${e.recovered} was=${e.wasRecovering}]`)).join(' ')}`,
          );
        for (const n of nodes)
          console.log(`# ${n.name} logs: ${JSON.stringify(n.logs.filter((l) => l.level >= 40).slice(-20))}`);
      },
    });
    assert.ok(moved >= 2, 'each node rebuilt its feed on the new primary (redis_feed_moved)');
    for (const n of nodes) {
      const line = n.logs.find((l) => l.code === 'redis_feed_moved');
      assert.equal(line?.redis, `cluster ${redis.nodesEnv}`, `node ${n.name}'s redis_feed_moved names the cluster`);
    }
    // The channels' history lives on the promoted replica now.
    assert.equal(await redis.command(to, 'EXISTS', `${prefix}.stream.{${chans[0]}}`), 1);
    for (const n of nodes) assert.ok(n.alive(), `node ${n.name} stayed up`);
  });

  test('a primary SIGKILLed under load without HERALD_REDIS_MIN_REPLICAS: publishes during the switch are refused, and a subscriber misses only acknowledged publications the replica did not have when it was promoted', async () => {
    const prefix2 = `${prefix}-async`;
    two = new Cluster('', prefix2, { HERALD_REDIS_CLUSTER_NODES: redis.nodesEnv });
    const pair = await Promise.all([two.start('c'), two.start('d')]);
    const victim = await redis.primaryOfSlot(keySlot('{room:async-0}'));
    const chans = [await channelOn('room:async', victim), await channelOn('room:async-b', victim)];
    const mine: TrackedSub[] = [];
    for (const [i, ch] of chans.entries())
      for (const node of pair) mine.push(await subscriber(`v${i}-${node.name}`, ch, () => node.wsUrl));
    subs.push(...mine);
    let k = 0;
    const pub = startPublisher('async', chans, () => pair[k++ % 2], { intervalMs: 10 });
    let faultAt = 0;
    let failover = { from: 0, to: 0, promotedAt: 0 };
    let resumedAt = 0;
    let kept = new Map<string, { epoch: string; offset: number }>();
    try {
      await sleep(500);
      const watch = watchReplica(await redis.replicaOf(victim), prefix2, chans);
      await sleep(50);
      faultAt = Date.now();
      failover = await redis.killPrimary(victim).finally(() => watch.stop());
      kept = await watch.kept();
      await waitFor(
        async () => (await Promise.all(pair.map((n) => n.ready()))).every((s) => s === 200),
        'both nodes ready again',
        20_000,
      );
      const acksBefore = pub.stats.acks.length;
      await waitFor(() => pub.stats.acks.length > acksBefore + 20, 'publishes succeed on the new primary', 20_000);
      resumedAt = Date.now();
    } finally {
      await pub.stop();
    }
    const { from, to } = failover;
    await expectNothingLost(`cluster primary :${from} killed without min replicas, :${to} promoted`, pub.stats, mine, {
      faultAt,
      excused: storeLost({
        what: `only offsets above what the replica held at its promotion (${[...kept].map(([ch, p]) => `${ch} ${p.offset}`).join(', ')}), told until 5 s after publishes succeed again`,
        kept,
        from: faultAt,
        until: resumedAt + 5000,
      }),
      refused: 'some',
      refusedWithin: { from: faultAt, until: resumedAt },
      maxUnanswered: 0,
    });
    for (const n of pair) assert.ok(n.alive(), `node ${n.name} stayed up`);
  });
});
