// Several `herald serve` processes on one real Redis: fan-out, recovery on another node, presence, join/leave,
// one feed subscription per channel per node, and a node SIGKILLed under load.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Balancer, subscriber, type TrackedSub } from './support/clients.js';
import { expectNothingLost } from './support/nothing-lost.js';
import { Cluster, type HeraldNode } from './support/nodes.js';
import { startPublisher } from './support/publisher.js';
import { sleep, waitFor } from './support/util.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `herald-scaling-${process.pid}-${Date.now().toString(36)}`;

describe('three Herald nodes on one Redis', { timeout: 120_000 }, () => {
  const cluster = new Cluster(REDIS_URL, prefix, { HERALD_PRESENCE_TTL: '3s' });
  let n1: HeraldNode, n2: HeraldNode, n3: HeraldNode;
  const clients: TrackedSub[] = [];
  let redis: Redis;

  before(async () => {
    redis = new Redis(REDIS_URL);
    [n1, n2, n3] = await Promise.all([cluster.start('node-1'), cluster.start('node-2'), cluster.start('node-3')]);
  });
  after(async () => {
    for (const c of clients) c.client.disconnect();
    await cluster.stop();
    const keys = await redis.keys(`${prefix}.*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  async function on(node: HeraldNode, user: string, channel: string): Promise<TrackedSub> {
    const s = await subscriber(user, channel, () => node.wsUrl);
    clients.push(s);
    return s;
  }
  const ids = (s: TrackedSub) => s.events.flatMap((e) => (e.type === 'pub' ? [e.id] : []));

  test('a publication through any node reaches subscribers on every node, in the same offset order', async () => {
    const ch = 'room:fanout';
    const subs = await Promise.all([on(n1, 'u1', ch), on(n2, 'u2', ch), on(n3, 'u3', ch)]);
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      const via = [n1, n2, n3][i % 3]!;
      const r = await via.api('publish', { channel: ch, data: { id: `m${i}` } });
      assert.equal(r.status, 200, JSON.stringify(r.error));
      assert.equal(r.result.offset, i + 1);
      sent.push(`m${i}`);
    }
    for (const s of subs) await waitFor(() => ids(s).length === 30, `30 publications on ${s.connectedTo()}`);
    for (const s of subs) assert.deepEqual(ids(s), sent);
  });

  test("a client publication on one node reaches subscribers on the others with its place in the channel's stream", async () => {
    const ch = 'room:client-publish';
    const [a, b] = await Promise.all([on(n1, 'reader', ch), on(n2, 'writer', ch)]);
    const ack = await b.sub.publish({ id: 'from-node-2' });
    await waitFor(() => ids(a).includes('from-node-2'), 'the client publication on node 1');
    const got = a.events.find((e) => e.type === 'pub' && e.id === 'from-node-2');
    assert.ok(got && got.type === 'pub' && got.offset === 1);
    assert.ok(ack !== undefined);
  });

  test('the info API of any node lists every node of the cluster, each with its own client count', async () => {
    await waitFor(
      async () => {
        const r = await n2.api('info', {});
        const names = (r.result.nodes as { name: string }[]).map((n) => n.name).sort();
        return ['node-1', 'node-2', 'node-3'].every((n) => names.includes(n));
      },
      'three nodes in info (nodes report every 5 s)',
      12_000,
    );
  });

  test('each node holds one Redis feed subscription per channel, whatever its number of local subscribers, and drops it after the last leaves', async () => {
    const ch = 'room:shared-feed';
    const feed = `${prefix}.pub.{${ch}}`;
    const numsub = async () => Number(((await redis.pubsub('NUMSUB', feed)) as [string, number])[1]);
    const local = await Promise.all(Array.from({ length: 10 }, (_, i) => on(n1, `f${i}`, ch)));
    assert.equal(await numsub(), 1);
    const remote = await on(n2, 'g', ch);
    assert.equal(await numsub(), 2);
    for (const s of local) s.client.disconnect();
    await waitFor(async () => (await numsub()) === 1, 'node-1 to drop its feed subscription');
    remote.client.disconnect();
    await waitFor(async () => (await numsub()) === 0, 'node-2 to drop its feed subscription');
  });

  test('a client that moves from node 1 to node 2 recovers exactly the publications it missed', async () => {
    const ch = 'room:move';
    let target = n1;
    const s = await subscriber('mover', ch, () => target.wsUrl);
    clients.push(s);
    for (let i = 0; i < 3; i++)
      assert.equal((await n3.api('publish', { channel: ch, data: { id: `before${i}` } })).status, 200);
    await waitFor(() => ids(s).length === 3, 'the first 3');
    s.client.disconnect();
    for (let i = 0; i < 5; i++)
      assert.equal((await n3.api('publish', { channel: ch, data: { id: `missed${i}` } })).status, 200);
    target = n2;
    s.client.connect();
    await waitFor(() => ids(s).length === 8, 'the 5 missed publications');
    await sleep(200);
    assert.ok(s.connectedTo().includes(`:${n2.port}/`), 'reconnected to node 2');
    assert.deepEqual(ids(s), ['before0', 'before1', 'before2', 'missed0', 'missed1', 'missed2', 'missed3', 'missed4']);
    const last = s.events.filter((e) => e.type === 'subscribed').at(-1)!;
    assert.ok(
      last.type === 'subscribed' && last.wasRecovering && last.recovered,
      'the resubscribe says recovered: true',
    );
  });

  test('presence and presence_stats list the clients of every node, and join/leave cross nodes', async () => {
    const ch = 'room:presence';
    const joins: string[] = [];
    const watcher = await subscriber('watcher', ch, () => n1.wsUrl, {}, { joinLeave: true });
    clients.push(watcher);
    watcher.sub.on('join', (ctx) => joins.push(ctx.info.user));
    const others = await Promise.all([on(n2, 'bob', ch), on(n3, 'carol', ch), on(n3, 'carol', ch)]);
    for (const node of [n1, n2, n3]) {
      const r = await node.api('presence', { channel: ch });
      const users = Object.values(r.result.presence as Record<string, { user: string }>)
        .map((p) => p.user)
        .sort();
      assert.deepEqual(users, ['bob', 'carol', 'carol', 'watcher']);
      const st = await node.api('presence_stats', { channel: ch });
      assert.deepEqual(st.result, { num_clients: 4, num_users: 3 });
    }
    await waitFor(
      () => joins.includes('bob') && joins.filter((u) => u === 'carol').length === 2,
      'join events from nodes 2 and 3',
    );
    const leaves: string[] = [];
    watcher.sub.on('leave', (ctx) => leaves.push(ctx.info.user));
    others[0]!.client.disconnect();
    await waitFor(() => leaves.includes('bob'), 'the leave of bob on node 2');
  });

  test('when a node is SIGKILLed under load its clients recover on the others with no gap and its presence entries expire', async () => {
    const chans = ['room:k1', 'room:k2'];
    const victim = await cluster.start('victim');
    const balancer = new Balancer(() => cluster.nodes);
    const subs: TrackedSub[] = [];
    for (let i = 0; i < 6; i++) {
      // Half start on the victim; every reconnect goes through the balancer to a node that is alive.
      let first = true;
      const pick = () => {
        if (first && i % 2 === 0) {
          first = false;
          return victim.wsUrl;
        }
        return balancer.url();
      };
      subs.push(await subscriber(`k${i}`, chans[i % 2]!, pick));
    }
    clients.push(...subs);
    const pub = startPublisher('k', chans, () => n1, { intervalMs: 5 });
    // Progress is counted, not timed: a loaded machine publishes slower, and the test waits for the same work.
    await waitFor(() => pub.stats.acks.length >= 20, '20 publications acknowledged before the kill', 20_000);
    await victim.kill('SIGKILL');
    const acksAtKill = pub.stats.acks.length;
    await waitFor(() => pub.stats.acks.length >= acksAtKill + 30, '30 more acknowledged after the kill', 20_000);
    const stats = await pub.stop();
    const want = (s: TrackedSub) => stats.acks.filter((a) => a.channel === s.channel).length;
    for (const s of subs)
      await waitFor(
        () =>
          s.events.filter((e) => e.type === 'pub').length >= want(s) - 100 &&
          ids(s).includes(stats.acks.filter((a) => a.channel === s.channel).at(-1)!.id),
        `${s.user} caught up`,
        15_000,
      );
    // Redis kept everything and the publisher's node stayed up: no recovered:false, no refusal, every answer came.
    await expectNothingLost('SIGKILL of one node', stats, subs, { excused: 'none', refused: 0, maxUnanswered: 0 });
    for (const s of subs) assert.ok(!s.connectedTo().includes(`:${victim.port}/`), `${s.user} left the dead node`);
    // The victim's presence entries (its clients' old connections) expire within HERALD_PRESENCE_TTL (3s).
    await waitFor(
      async () => {
        const r = await n2.api('presence_stats', { channel: chans[0] });
        return r.result.num_clients === subs.filter((s) => s.channel === chans[0]).length;
      },
      "presence to forget the dead node's clients",
      10_000,
    );
  });
});
