// The nothing-lost checker under load: 3 publishers and 12 SDK subscribers across Herald nodes on a private Redis,
// while Redis is frozen, its pub/sub connections are killed, a node is SIGKILLed and Redis restarts empty. Every
// subscriber must have seen a contiguous, duplicate-free sequence of offsets per channel, or have been told
// `recovered: false` for exactly what it lost, and every acknowledged publication must have reached every
// subscriber present for its whole window. Prints one line: acked, expected, delivered, lost, duplicated.
// `npm run soak` runs the same test heavier (scripts/soak.mjs): HERALD_SOAK_ROUNDS fault rounds (default 1; each
// round kills the node the last one started), HERALD_SOAK_SUBSCRIBERS (default 12), HERALD_SOAK_PUBLISHERS (3).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer, subscriber, type TrackedSub } from '../scaling/support/clients.js';
import { check } from '../scaling/support/checker.js';
import { Cluster, type HeraldNode } from '../scaling/support/nodes.js';
import { startPublisher } from '../scaling/support/publisher.js';
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

test('under load and injected faults no acknowledged publication is lost or duplicated for any subscriber', { timeout: 120_000 + ROUNDS * 40_000 }, async () => {
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
  const publishers = Array.from({ length: PUBLISHERS }, (_, p) => startPublisher(`p${p}`, channels, () => alive()[p % alive().length], { intervalMs: 15 }));
  const allReady = () => waitFor(async () => (await Promise.all(alive().map((n) => n.ready()))).every((s) => s === 200), 'nodes ready', 20_000);

  const killed: HeraldNode[] = [];
  let victim = b;
  for (let round = 1; round <= ROUNDS; round++) {
    await sleep(800);
    redis.freeze();
    await sleep(2000);
    redis.thaw();
    await allReady();
    await sleep(800);
    assert.ok((await redis.killPubSubClients()) >= alive().length, `round ${round}: every node lost its feed connection`);
    await allReady();
    await sleep(800);
    await victim.kill('SIGKILL');
    killed.push(victim);
    await sleep(1500);
    await redis.restart(1000);
    await allReady();
    await sleep(1500);
    // A later round kills a node started now, so clients keep moving between nodes.
    if (round < ROUNDS) victim = await cluster.start(`r${round}`);
  }

  const stats = await Promise.all(publishers.map((p) => p.stop()));
  const acks = stats.flatMap((s) => s.acks);
  const refused = stats.reduce((n, s) => n + s.refused, 0);
  const other = stats.flatMap((s) => s.other);
  assert.deepEqual(other, [], 'every publish answer was a success or a temporary refusal');
  assert.ok(refused > 0, 'publishes during the outages were refused');
  for (const n of cluster.nodes.filter((n) => !killed.includes(n))) assert.ok(n.alive(), `node ${n.name} stayed up`);
  await waitFor(() => {
    const r = check(acks, subs);
    return r.lost === 0 && r.problems.length === 0;
  }, 'every subscriber to catch up', 20_000).catch(() => {});
  const result = check(acks, subs);
  console.log(`# ${result.line}; publishes refused ${refused}; ${ROUNDS} fault round(s), ${SUBSCRIBERS} subscribers, ${PUBLISHERS} publishers`);
  assert.deepEqual(result.problems, []);
  assert.ok(result.acked > 100 * ROUNDS, 'the publishers made progress');
  assert.equal(result.lost, 0);
  assert.equal(result.duplicated, 0);
  assert.equal(result.gaps, 0);
  for (const s of subs) {
    for (const k of killed) assert.ok(!s.connectedTo().includes(`:${k.port}/`), `${s.user} is off the killed node ${k.name}`);
  }
});
