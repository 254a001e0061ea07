// The nothing-lost checker under load: 3 publishers and 12 SDK subscribers across Herald nodes on a private Redis,
// while Redis is frozen, its pub/sub connections are killed, a node is SIGKILLed and Redis restarts empty. Every
// subscriber must have seen a contiguous, duplicate-free sequence of offsets per channel, and every acknowledged
// publication must have reached every subscriber present for its whole window. `recovered: false` is allowed only
// after a restart of Redis, and excuses only what that restart could take (acknowledged within 1 s before it) and
// what the new epoch held before the subscriber was told; publishes are refused only during the freeze and the
// restart, and only the SIGKILLed node leaves requests unanswered. Prints one line: acked, expected, delivered, lost,
// duplicated, told, refused, unanswered.
// `npm run soak` runs the same test heavier (scripts/soak.mjs): HERALD_SOAK_ROUNDS fault rounds (default 1; each
// round kills the node the last one started), HERALD_SOAK_SUBSCRIBERS (default 12), HERALD_SOAK_PUBLISHERS (3).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer, subscriber, type TrackedSub } from '../scaling/support/clients.js';
import { eitherOf, storeLost, type Bound } from '../scaling/support/checker.js';
import { Cluster, type HeraldNode } from '../scaling/support/nodes.js';
import { expectNothingLost } from '../scaling/support/nothing-lost.js';
import { combined, startPublisher } from '../scaling/support/publisher.js';
import { startTestRedis, type TestRedis } from '../scaling/support/redis-server.js';
import { sleep, waitFor } from '../scaling/support/util.js';

let redis: TestRedis;
let cluster: Cluster;
const subs: TrackedSub[] = [];

before(async () => {
  redis = await startTestRedis();
  cluster = new Cluster(redis.url, `herald-lost-${process.pid}`, { HERALD_PRESENCE_TTL: '3s' });
  await Promise.all([cluster.start('a'), cluster.start('b'), cluster.start('c')]);
});
after(async () => {
  for (const s of subs) s.client.disconnect();
  await cluster?.stop();
  await redis?.stop();
});

const envInt = (name: string, def: number) => {
  const v = Number(process.env[name] ?? def);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
  return v;
};
const ROUNDS = envInt('HERALD_SOAK_ROUNDS', 1);
const SUBSCRIBERS = envInt('HERALD_SOAK_SUBSCRIBERS', 12);
const PUBLISHERS = envInt('HERALD_SOAK_PUBLISHERS', 3);

test(
  'under load and injected faults no acknowledged publication is lost or duplicated for any subscriber',
  { timeout: 120_000 + ROUNDS * 40_000 },
  async () => {
    const [a, b] = cluster.nodes as [HeraldNode, HeraldNode, HeraldNode];
    const channels = ['room:load1', 'room:load2', 'room:load3'];
    const balancer = new Balancer(() => cluster.nodes);
    for (let i = 0; i < SUBSCRIBERS; i++) {
      // Start spread over a and b (b is the one killed first); reconnects go to any node alive.
      let first = true;
      const pick = () => {
        if (first) {
          first = false;
          return (i % 2 === 0 ? a : b).wsUrl;
        }
        return balancer.url();
      };
      subs.push(await subscriber(`m${i}`, channels[i % 3]!, pick));
    }
    const alive = () => cluster.nodes.filter((n) => n.alive());
    const publishers = Array.from({ length: PUBLISHERS }, (_, p) =>
      startPublisher(`p${p}`, channels, () => alive()[p % alive().length], { intervalMs: 15 }),
    );
    const allReady = () =>
      waitFor(
        async () => (await Promise.all(alive().map((n) => n.ready()))).every((s) => s === 200),
        'nodes ready',
        20_000,
      );

    const killed: HeraldNode[] = [];
    /** Where publishes may be refused (a freeze, a restart: from the fault until 1 s after every node is ready). */
    const refusals: { from: number; until: number }[] = [];
    /** Where subscribers may be told recovered: false, and what for: each restart of Redis without persistence. */
    const restarts: Bound[] = [];
    let victim = b;
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(800);
      const frozenAt = Date.now();
      redis.freeze();
      await sleep(2000);
      redis.thaw();
      await allReady();
      refusals.push({ from: frozenAt, until: Date.now() + 1000 });
      await sleep(800);
      // Redis keeps everything here and below until the restart: no refusal, and nobody is told recovered:false.
      assert.ok(
        (await redis.killPubSubClients()) >= alive().length,
        `round ${round}: every node lost its feed connection`,
      );
      await allReady();
      await sleep(800);
      await victim.kill('SIGKILL');
      killed.push(victim);
      await sleep(1500);
      const restartAt = Date.now();
      await redis.restart(1000);
      await allReady();
      const readyAt = Date.now();
      refusals.push({ from: restartAt, until: readyAt + 1000 });
      // Of the old epoch only what was acknowledged just before the restart (1 s is generous); of the new epoch what
      // was sent before the subscriber was told.
      restarts.push(
        storeLost({
          what: `restart ${round}: acked from 1 s before it, told within 5 s of ready`,
          lostFrom: restartAt - 1000,
          from: restartAt,
          until: readyAt + 5000,
        }),
      );
      await sleep(1500);
      // A later round kills a node started now, so clients keep moving between nodes.
      if (round < ROUNDS) victim = await cluster.start(`r${round}`);
    }

    const stats = combined(await Promise.all(publishers.map((p) => p.stop())));
    for (const n of cluster.nodes.filter((n) => !killed.includes(n))) assert.ok(n.alive(), `node ${n.name} stayed up`);
    const result = await expectNothingLost(
      `${ROUNDS} fault round(s), ${SUBSCRIBERS} subscribers, ${PUBLISHERS} publishers`,
      stats,
      subs,
      {
        excused: eitherOf(restarts),
        refused: 'some',
        refusedWithin: refusals,
        // Only a SIGKILLed node leaves a request without an answer: each publisher has at most one in flight.
        maxUnanswered: PUBLISHERS * ROUNDS,
        faultAt: refusals[0]!.from,
      },
    );
    assert.ok(result.acked > 100 * ROUNDS, 'the publishers made progress');
    for (const s of subs) {
      for (const k of killed)
        assert.ok(!s.connectedTo().includes(`:${k.port}/`), `${s.user} is off the killed node ${k.name}`);
    }
  },
);
