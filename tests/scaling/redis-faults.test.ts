// Faults injected into a real Redis the test starts itself on a spare port, with two Herald nodes on it, SDK
// subscribers on both and a publisher running through the fault. For each fault: the nodes stay up, publishes
// during the outage are refused (503, code 100) rather than lost, and afterwards every subscriber either received
// every acknowledged publication or was told `recovered: false` for exactly what it lost.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscriber, type TrackedSub } from './support/clients.js';
import { storeLost, type CheckResult } from './support/checker.js';
import { expectNothingLost, type Expectations } from './support/nothing-lost.js';
import { Cluster, type HeraldNode } from './support/nodes.js';
import { startPublisher, type PublisherStats } from './support/publisher.js';
import { startTestRedis, type TestRedis } from './support/redis-server.js';
import { sleep, waitFor } from './support/util.js';

describe('Redis faults under two Herald nodes', { timeout: 180_000 }, () => {
  let redis: TestRedis;
  let cluster: Cluster;
  let nodes: HeraldNode[];
  let subs: TrackedSub[] = [];
  let run = 0;

  before(async () => {
    redis = await startTestRedis();
    cluster = new Cluster(redis.url, `herald-faults-${process.pid}`);
    nodes = await Promise.all([cluster.start('a'), cluster.start('b')]);
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });
  afterEach(() => {
    for (const s of subs) s.client.disconnect();
    subs = [];
  });

  /** When the fault began (just before it was injected) and when both nodes answered /ready 200 again. */
  interface Times {
    faultAt: number;
    readyAt: number;
  }

  /**
   * Subscribers on both nodes (pinned: a Redis fault must not need a node change), then a running publisher;
   * `expect` gives the fault's bound from its times.
   */
  async function scenario(
    fault: () => Promise<void>,
    expect: (t: Times) => Expectations,
  ): Promise<{ stats: PublisherStats; result: CheckResult; times: Times }> {
    const chans = [`room:f${++run}a`, `room:f${run}b`];
    for (let i = 0; i < 4; i++) {
      const node = nodes[i % 2]!;
      subs.push(await subscriber(`s${i}`, chans[Math.floor(i / 2) % 2]!, () => node.wsUrl));
    }
    let k = 0;
    const pub = startPublisher(`p${run}`, chans, () => nodes[k++ % 2], { intervalMs: 10 });
    await sleep(400);
    const faultAt = Date.now();
    await fault();
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => n.ready()))).every((s) => s === 200),
      'both nodes ready again',
      20_000,
    );
    const times = { faultAt, readyAt: Date.now() };
    await sleep(600);
    const stats = await pub.stop();
    for (const n of nodes) assert.ok(n.alive(), `node ${n.name} stayed up`);
    const result = await expectNothingLost(String(run), stats, subs, { faultAt, ...expect(times) });
    assert.ok(stats.acks.length > 20, 'the publisher made progress');
    return { stats, result, times };
  }

  test('a frozen Redis (SIGSTOP) makes publishes fail with 503 and /ready 503, and after SIGCONT nothing acknowledged is lost and no subscriber is told recovered: false', async () => {
    await scenario(
      async () => {
        redis.freeze();
        try {
          await waitFor(async () => (await nodes[0]!.ready()) === 503, '/ready 503 while Redis is frozen', 8000);
          const r = await nodes[1]!.api('publish', { channel: 'room:frozen', data: { id: 'x' } }, 8000);
          assert.equal(r.status, 503);
          assert.equal(r.error?.code, 100);
          assert.match(r.error!.message, /redis/i);
          await sleep(1000);
        } finally {
          redis.thaw();
        }
      },
      ({ faultAt, readyAt }) => ({
        excused: 'none',
        // A node answers within HERALD_REDIS_TIMEOUT (1 s), well inside the publisher's 3 s: none goes unanswered.
        refused: 'some',
        refusedWithin: { from: faultAt, until: readyAt + 1000 },
        maxUnanswered: 0,
      }),
    );
  });

  test("killing the nodes' pub/sub connections (CLIENT KILL TYPE pubsub) makes their clients recover what the feed missed, with no publish refused and no recovered: false", async () => {
    await scenario(
      async () => {
        const killed = await redis.killPubSubClients();
        assert.ok(killed >= 2, `both feed connections were killed (${killed})`);
        await sleep(800);
      },
      () => ({ excused: 'none', refused: 0, maxUnanswered: 0 }),
    );
  });

  test('a feed blip while nothing was published leaves subscribers alone: no resubscribe, and delivery goes on', async () => {
    const ch = `room:quiet${++run}`;
    for (let i = 0; i < 4; i++) {
      const node = nodes[i % 2]!;
      subs.push(await subscriber(`q${i}`, ch, () => node.wsUrl));
    }
    assert.equal((await nodes[0]!.api('publish', { channel: ch, data: { id: 'before' } })).status, 200);
    await waitFor(
      () => subs.every((s) => s.events.some((e) => e.type === 'pub' && e.id === 'before')),
      'the first publication',
    );
    const rechecks = () => nodes.map((n) => n.logs.filter((l) => l.msg === 'feed recheck done').length);
    const before = rechecks();
    assert.ok((await redis.killPubSubClients()) >= 2);
    await waitFor(
      () => rechecks().every((c, i) => c > before[i]!),
      'both nodes to restore their feed and recheck',
      15_000,
    );
    assert.equal((await nodes[1]!.api('publish', { channel: ch, data: { id: 'after' } })).status, 200);
    await waitFor(
      () => subs.every((s) => s.events.some((e) => e.type === 'pub' && e.id === 'after')),
      'the publication after the blip',
    );
    for (const s of subs) {
      assert.equal(s.events.filter((e) => e.type === 'subscribed').length, 1, `${s.user} was not made to resubscribe`);
      assert.deepEqual(
        s.events.flatMap((e) => (e.type === 'pub' ? [e.offset] : [])),
        [1, 2],
      );
    }
  });

  test('a stream that goes back below what the nodes saw (lost publications, as after a failover to a lagging replica) starts a new epoch and tells subscribers recovered: false', async () => {
    const before = nodes.map((n) => n.logs.length);
    /** Per channel: the epoch and the top offset the rewound stream kept. */
    const kept = new Map<string, { epoch: string; offset: number }>();
    await scenario(
      async () => {
        // What a promoted replica that lacked the last 3 publications of each channel looks like: top offset back by
        // 3 and those entries gone; the next publications reuse their offsets.
        const rewind = `local s = tonumber(redis.call('HGET', KEYS[2], 's'))
for o = s - 2, s do redis.call('XDEL', KEYS[1], o .. '-0') end
redis.call('XSETID', KEYS[1], (s - 3) .. '-0')
redis.call('HSET', KEYS[2], 's', s - 3)
return {s - 3, redis.call('HGET', KEYS[2], 'e')}`;
        for (const ch of [`room:f${run}a`, `room:f${run}b`]) {
          const [offset, epoch] = (await redis.command(
            'EVAL',
            rewind,
            '2',
            `herald-faults-${process.pid}.stream.{${ch}}`,
            `herald-faults-${process.pid}.meta.{${ch}}`,
          )) as [number, string];
          kept.set(ch, { epoch, offset: Number(offset) });
        }
        await waitFor(
          () => nodes.some((n, i) => n.logs.slice(before[i]).some((l) => l.code === 'stream_rewound')),
          'a node to notice the rewind',
          10_000,
        );
        await sleep(500);
      },
      ({ faultAt, readyAt }) => ({
        // Only what the rewind took away (and what the old epoch reused after it) may be excused, and the new
        // epoch's publications sent before a subscriber was told; Redis itself stayed up, so nothing is refused.
        excused: storeLost({
          what: 'the old epoch above the offset the rewind kept, told within 5 s of ready',
          kept,
          from: faultAt,
          until: readyAt + 5000,
        }),
        refused: 0,
        maxUnanswered: 0,
      }),
    );
    for (const s of subs) {
      const resubs = s.events.filter((e) => e.type === 'subscribed').slice(1);
      assert.ok(
        resubs.some((e) => e.type === 'subscribed' && e.wasRecovering && !e.recovered),
        `${s.user} was told recovered: false`,
      );
      const first = s.events[0]!;
      const last = resubs.at(-1)!;
      assert.ok(
        first.type === 'subscribed' && last.type === 'subscribed' && last.epoch !== first.epoch,
        `${s.user} is on a new epoch`,
      );
    }
  });

  test('a Redis restarted empty makes publishes fail while it is down, then clients are told recovered: false for what they lost', async () => {
    const before = nodes.map((n) => n.logs.length);
    await scenario(
      async () => {
        await redis.restart(1500);
      },
      ({ faultAt, readyAt }) => ({
        // The restart can only take publications acknowledged just before it (their feed message not yet written when
        // Redis died): 1 s before is generous. Of the new epoch, those sent before a subscriber was told.
        excused: storeLost({
          what: 'acked from 1 s before the restart, told within 5 s of ready',
          lostFrom: faultAt - 1000,
          from: faultAt,
          until: readyAt + 5000,
        }),
        refused: 'some',
        refusedWithin: { from: faultAt, until: readyAt + 1000 },
        maxUnanswered: 0,
      }),
    );
    for (const [i, n] of nodes.entries()) {
      assert.ok(
        n.logs.slice(before[i]).some((l) => l.msg === 'redis reconnected'),
        `node ${n.name} logged its reconnect`,
      );
    }
    for (const s of subs) {
      const resubs = s.events.filter((e) => e.type === 'subscribed').slice(1);
      assert.ok(
        resubs.length > 0 && resubs.every((e) => e.type === 'subscribed' && e.wasRecovering),
        `${s.user} resubscribed with recovery`,
      );
      const last = resubs.at(-1)!;
      const first = s.events[0]!;
      assert.ok(
        last.type === 'subscribed' && first.type === 'subscribed' && last.epoch !== first.epoch,
        `${s.user} is on the new epoch`,
      );
      assert.ok(
        resubs.some((e) => e.type === 'subscribed' && !e.recovered),
        `${s.user} was told recovered: false`,
      );
    }
  });
});

describe('Redis down when a node starts', { timeout: 60_000 }, () => {
  test('the node starts, answers /ready 503 and refuses publishes with 503 until Redis is up, then serves without a restart', async () => {
    const redis = await startTestRedis();
    const cluster = new Cluster(redis.url, `herald-late-${process.pid}`);
    try {
      await redis.stop();
      const node = await cluster.start('late', {}, 'health');
      assert.equal(await node.ready(), 503);
      const refused = await node.api('publish', { channel: 'room:late', data: { id: 'early' } });
      assert.equal(refused.status, 503);
      assert.equal(refused.error?.code, 100);
      assert.match(refused.error!.message, /not connected to Redis/);
      assert.ok(
        node.logs.some((l) => l.msg?.startsWith('redis not reachable')),
        'the unreachable Redis was logged',
      );
      await redis.restart(0);
      await waitFor(async () => (await node.ready()) === 200, '/ready 200 once Redis is up', 15_000);
      const s = await subscriber('late', 'room:late', () => node.wsUrl);
      try {
        const ok = await node.api('publish', { channel: 'room:late', data: { id: 'after' } });
        assert.equal(ok.status, 200);
        await waitFor(
          () => s.events.some((e) => e.type === 'pub' && e.id === 'after'),
          'the publication after Redis came up',
        );
      } finally {
        s.client.disconnect();
      }
    } finally {
      await cluster.stop();
      await redis.stop();
    }
  });
});
