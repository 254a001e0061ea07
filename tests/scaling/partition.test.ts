// Network faults between one node and Redis, through a TCP fault proxy of our own, while the other node keeps
// serving: a partition (nothing flows, nothing closes) and a reset of the node's connections. Only the cut-off node
// refuses publishes and turns /ready 503; afterwards its subscribers hold every acknowledged publication, or were told
// `recovered: false` for what they lost.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTcpFaultProxy, type TcpFaultProxy } from '../support/tcp-fault-proxy.js';
import { subscriber, type TrackedSub } from './support/clients.js';
import { expectNothingLost, type Expectations } from './support/nothing-lost.js';
import { Cluster, type HeraldNode } from './support/nodes.js';
import { startPublisher } from './support/publisher.js';
import { startTestRedis, type TestRedis } from './support/redis-server.js';
import { sleep, waitFor } from './support/util.js';

describe('a network fault between one node and Redis', { timeout: 180_000 }, () => {
  let redis: TestRedis;
  let proxy: TcpFaultProxy;
  let cluster: Cluster;
  let cut: HeraldNode;
  let other: HeraldNode;
  let subs: TrackedSub[] = [];
  let run = 0;

  before(async () => {
    redis = await startTestRedis();
    proxy = await startTcpFaultProxy(redis.port);
    cluster = new Cluster(redis.url, `herald-partition-${process.pid}`);
    [cut, other] = await Promise.all([
      cluster.start('behind-proxy', { REDIS_URL: `redis://127.0.0.1:${proxy.port}` }),
      cluster.start('direct'),
    ]);
  });
  after(async () => {
    await cluster?.stop();
    await proxy?.close();
    await redis?.stop();
  });
  afterEach(() => {
    for (const s of subs) s.client.disconnect();
    subs = [];
  });

  /** `expect`: the fault's bound, from when it began and when the cut-off node was ready again. */
  async function scenario(
    fault: () => Promise<void>,
    expect: (t: { faultAt: number; readyAt: number }) => Expectations,
  ) {
    const chans = [`room:p${++run}a`, `room:p${run}b`];
    for (const [i, ch] of chans.entries()) {
      for (const node of [cut, other]) subs.push(await subscriber(`u${i}-${node.name}`, ch, () => node.wsUrl));
    }
    let k = 0;
    const pub = startPublisher(`p${run}`, chans, () => [cut, other][k++ % 2], { intervalMs: 10 });
    await sleep(400);
    const faultAt = Date.now();
    await fault();
    await waitFor(async () => (await cut.ready()) === 200, 'the cut-off node ready again', 20_000);
    const readyAt = Date.now();
    await sleep(800);
    const stats = await pub.stop();
    const result = await expectNothingLost(String(run), stats, subs, { faultAt, ...expect({ faultAt, readyAt }) });
    assert.ok(cut.alive() && other.alive(), 'both nodes stayed up');
    assert.deepEqual(
      stats.refusals.filter((r) => r.node !== cut.name),
      [],
      'only the cut-off node refused publishes',
    );
    return { stats, result };
  }

  test('a partition (nothing flows, nothing closes): the cut-off node alone refuses publishes and is not ready, and its subscribers get everything once it heals, never told recovered: false', async () => {
    const { stats } = await scenario(
      async () => {
        proxy.partition();
        try {
          await waitFor(async () => (await cut.ready()) === 503, '/ready 503 on the cut-off node', 8000);
          assert.equal(await other.ready(), 200, 'the other node stays ready');
          const refused = await cut.api('publish', { channel: 'room:partitioned', data: { id: 'x' } }, 8000);
          assert.equal(refused.status, 503);
          assert.equal(refused.error?.code, 100);
          const ok = await other.api('publish', { channel: 'room:partitioned', data: { id: 'y' } });
          assert.equal(ok.status, 200, 'the other node publishes during the partition');
          await sleep(1500);
        } finally {
          proxy.heal();
        }
      },
      ({ faultAt, readyAt }) => ({
        excused: 'none',
        // The cut-off node answers 503 within HERALD_REDIS_TIMEOUT (1 s), inside the publisher's 3 s.
        refused: 'some',
        refusedWithin: { from: faultAt, until: readyAt + 1000 },
        maxUnanswered: 0,
      }),
    );
    assert.ok(
      stats.acks.some((a) => a.at > stats.refusals[0]!.at && a.at < stats.refusals.at(-1)!.at),
      'the other node acknowledged publishes while the cut-off node refused',
    );
  });

  test("a reset of the node's Redis connections: publishes it gets before it reconnects are refused, and its subscribers recover what its feed missed, never told recovered: false", async () => {
    await scenario(
      async () => {
        const before = cut.logs.length;
        proxy.reset();
        await waitFor(
          () => cut.logs.slice(before).some((l) => l.msg === 'feed recheck done'),
          'the node to restore its feed and recheck',
          15_000,
        );
      },
      ({ faultAt, readyAt }) => ({
        excused: 'none',
        // No offline queue: until its first reconnect (100 ms at the earliest) the node refuses what it gets.
        refused: 'some',
        refusedWithin: { from: faultAt, until: readyAt + 1000 },
        maxUnanswered: 0,
      }),
    );
  });
});
