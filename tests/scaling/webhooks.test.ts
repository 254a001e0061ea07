// Lifecycle webhooks from two `herald serve` processes on one real Redis: channel_occupied / channel_vacated and
// presence_join / presence_leave are decided across both nodes and sent once per transition, not once per node; a
// killed node's holds are released by the other node's sweep, which sends the vacated and leave events.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startReceiver, type WebhookReceiver } from '../../packages/server/test/support/webhook-receiver.js';
import { subscriber, type TrackedSub } from './support/clients.js';
import { Cluster, type HeraldNode } from './support/nodes.js';
import { waitFor } from './support/util.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `herald-webhooks-${process.pid}-${Date.now().toString(36)}`;
const WEBHOOK_SECRET = 'scaling-webhook-secret-0123456789';

describe('webhooks from two Herald nodes on one Redis', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhooks-'));
  let receiver: WebhookReceiver;
  let cluster: Cluster;
  let n1: HeraldNode, n2: HeraldNode;
  let redis: Redis;
  const clients: TrackedSub[] = [];

  before(async () => {
    redis = new Redis(REDIS_URL);
    receiver = await startReceiver();
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        channel: { namespaces: [{ name: 'room', presence: true, allow_subscribe_for_client: true }] },
        webhooks: [
          {
            endpoint: receiver.url,
            secret: WEBHOOK_SECRET,
            flush_interval: '20ms',
            events: ['connect', 'channel_occupied', 'channel_vacated', 'presence_join', 'presence_leave'],
          },
        ],
      }),
    );
    // Presence holds live 3 s unless refreshed: a killed node's are swept within seconds.
    cluster = new Cluster(REDIS_URL, prefix, { HERALD_CONFIG: config, HERALD_PRESENCE_TTL: '3s' });
    [n1, n2] = await Promise.all([cluster.start('node-1'), cluster.start('node-2')]);
  });
  after(async () => {
    for (const c of clients) c.client.disconnect();
    await cluster.stop();
    await receiver.close();
    const keys = await redis.keys(`${prefix}.*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  async function on(node: HeraldNode, user: string, channel: string): Promise<TrackedSub> {
    const s = await subscriber(user, channel, () => node.wsUrl);
    clients.push(s);
    return s;
  }
  const events = (type: string, channel: string) =>
    receiver.events().filter((e) => e.type === type && e.channel === channel);
  /** A connect event from each node: what either node queued before it has been sent (one queue per node). */
  async function markers(): Promise<void> {
    const users = [`marker-${Math.random()}`, `marker-${Math.random()}`];
    const subs = await Promise.all([on(n1, users[0]!, 'room:marker'), on(n2, users[1]!, 'room:marker')]);
    await waitFor(
      () => users.every((u) => receiver.events().some((e) => e.type === 'connect' && e.user === u)),
      'a connect event from each node',
    );
    for (const s of subs) s.client.disconnect();
  }

  test('a channel with subscribers on both nodes is occupied once and vacated once; each user joins and leaves its presence once', async () => {
    const ch = 'room:both';
    const alice1 = await on(n1, 'alice', ch);
    await waitFor(() => events('channel_occupied', ch).length === 1, 'channel_occupied');
    const bob = await on(n2, 'bob', ch);
    const alice2 = await on(n2, 'alice', ch);
    await waitFor(() => events('presence_join', ch).length === 2, 'presence_join of alice and bob');
    await markers();
    assert.equal(events('channel_occupied', ch).length, 1);
    assert.deepEqual(
      events('presence_join', ch)
        .map((e) => e.user)
        .sort(),
      ['alice', 'bob'],
    );

    // alice leaves node 1 while her other client stays on node 2: she is still present, the channel still occupied.
    alice1.client.disconnect();
    bob.client.disconnect();
    await waitFor(() => events('presence_leave', ch).length === 1, 'presence_leave of bob');
    await markers();
    assert.deepEqual(
      events('presence_leave', ch).map((e) => e.user),
      ['bob'],
    );
    assert.equal(events('channel_vacated', ch).length, 0);

    alice2.client.disconnect();
    await waitFor(() => events('channel_vacated', ch).length === 1, 'channel_vacated');
    await waitFor(() => events('presence_leave', ch).length === 2, 'presence_leave of alice');
    await markers();
    assert.equal(events('channel_vacated', ch).length, 1);
    assert.deepEqual(
      events('presence_leave', ch)
        .map((e) => e.user)
        .sort(),
      ['alice', 'bob'],
    );
    assert.equal(events('channel_occupied', ch).length, 1);
    const ids = receiver.events().map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'unique event ids across both nodes');
  });

  test("a killed node's channel is vacated and its users leave presence by the other node's sweep", async () => {
    const ch = 'room:killed';
    await on(n2, 'carol', ch);
    await waitFor(() => events('presence_join', ch).length === 1, 'presence_join of carol');
    assert.equal(events('channel_occupied', ch).length, 1);
    await n2.kill('SIGKILL');
    // The holds expire 3 s after node 2's last refresh; node 1 sweeps every 5 s.
    await waitFor(() => events('channel_vacated', ch).length === 1, 'channel_vacated from node 1', 20_000);
    await waitFor(() => events('presence_leave', ch).length === 1, 'presence_leave from node 1', 20_000);
    assert.equal(events('presence_leave', ch)[0]!.user, 'carol');
  });
});
