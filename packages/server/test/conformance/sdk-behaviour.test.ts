/**
 * Behaviours the centrifuge SDK's own test suite relies on (see docs/sdk-compatibility.md and scripts/sdk-suite.sh).
 * Each test pins one protocol behaviour Herald had to fix to pass that suite, on the real SDK.
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { api, newClient, startHerald, waitFor, type TestServer } from '../support/herald.js';

/** The shape of the SDK suite's Centrifugo config (centrifugo_test.json), trimmed to what these tests use. */
const centrifugoStyleConfig = {
  client: { insecure: true },
  channel: {
    without_namespace: { presence: true, history_size: 100, history_ttl: '300s', force_recovery: true },
    namespaces: [
      // Keys of Centrifugo features Herald lacks: they must load with a warning, not fail as typos.
      {
        name: 'delta', allowed_delta_types: ['fossil'], delta_publish: true, history_size: 100, history_ttl: '300s',
        force_recovery: true, allow_subscribe_for_client: true,
      },
      { name: 'streamless', subscription_type: 'map', map: { mode: 'ephemeral' }, allow_subscribe_for_client: true },
      { name: 'poll', subscription_type: 'shared_poll', shared_poll: { proxy_name: 'x' }, allow_subscribe_for_client: true },
    ],
  },
};

describe('behaviours the centrifuge SDK test suite relies on', { timeout: 60_000 }, () => {
  let s: TestServer;
  const clients: Centrifuge[] = [];
  before(async () => {
    s = await startHerald({ fileConfig: centrifugoStyleConfig });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await s.close();
  });
  const client = async (): Promise<Centrifuge> => {
    const c = newClient(s.wsUrl);
    clients.push(c);
    c.connect();
    await c.ready(5000);
    return c;
  };

  test('a Centrifugo config naming features Herald lacks (map, shared_poll) loads with warnings instead of typo errors', async () => {
    const res = await api(s, 'info', {});
    assert.equal(res.status, 200);
  });

  test('getState with an offset and no epoch recovers the publications after that offset', async () => {
    const channel = `getstate_${Date.now()}`;
    for (const i of [1, 2, 3]) assert.equal((await api(s, 'publish', { channel, data: { i } })).status, 200);
    const c = await client();
    let getStateCalls = 0;
    const sub: Subscription = c.newSubscription(channel, {
      // The SDK sends recover with flag "reject unrecovered" and, as offset 0 and epoch '' are falsy, neither field.
      getState: async () => {
        getStateCalls++;
        return { offset: 0, epoch: '' };
      },
    });
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    const subscribed = new Promise<{ recovered: boolean }>((r) => sub.once('subscribed', r));
    sub.subscribe();
    const ctx = await subscribed;
    assert.equal(ctx.recovered, true);
    await waitFor(() => got.length === 3, 'three recovered publications');
    assert.deepEqual(got, [{ i: 1 }, { i: 2 }, { i: 3 }]);
    assert.equal(getStateCalls, 1);
  });

  async function deltaSubscriber(channel: string) {
    const c = await client();
    const sub = c.newSubscription(channel, { delta: 'fossil' });
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    const subscribed = new Promise<{ recovered: boolean }>((r) => sub.once('subscribed', r));
    sub.subscribe();
    await subscribed;
    return { c, sub, got };
  }
  const payload = (i: number) => ({ i, text: 'Grüße, 世界 😀 '.repeat(40), tail: 'é'.repeat(i) });

  test('a fossil-delta subscriber gets the first publication in full and the next ones as patches it decodes', async () => {
    const channel = `delta:live_${Date.now()}`;
    const { sub, got } = await deltaSubscriber(channel);
    for (const i of [1, 2, 3, 4]) assert.equal((await api(s, 'publish', { channel, data: payload(i) })).status, 200);
    await waitFor(() => got.length === 4, 'four publications');
    assert.deepEqual(got, [1, 2, 3, 4].map(payload));
    const stats = sub.deltaStats();
    assert.equal(stats.numFullPayloads, 1);
    assert.equal(stats.numDeltaPayloads, 3);
    assert.ok(stats.bytesReceived < stats.bytesDecoded);
  });

  test('publications recovered by a fossil-delta subscriber arrive decoded, in order, and live patches follow them', async () => {
    const channel = `delta:recover_${Date.now()}`;
    const { sub, got } = await deltaSubscriber(channel);
    await api(s, 'publish', { channel, data: payload(1) });
    await waitFor(() => got.length === 1, 'first publication');
    sub.unsubscribe();
    for (const i of [2, 3, 4]) await api(s, 'publish', { channel, data: payload(i) });
    const resubscribed = new Promise<{ recovered: boolean }>((r) => sub.once('subscribed', r));
    sub.subscribe();
    assert.equal((await resubscribed).recovered, true);
    await waitFor(() => got.length === 4, 'recovered publications');
    await api(s, 'publish', { channel, data: payload(5) });
    await waitFor(() => got.length === 5, 'live publication after recovery');
    assert.deepEqual(got, [1, 2, 3, 4, 5].map(payload));
    // 1 live in full; of the recovered, 2 in full, 3 and 4 as patches; live 5 as a patch on 4.
    assert.equal(sub.deltaStats().numDeltaPayloads, 3);
  });

  test('fossil delta is not negotiated in a namespace that does not allow it', async () => {
    const channel = `plain_${Date.now()}`;
    const { sub, got } = await deltaSubscriber(channel);
    await api(s, 'publish', { channel, data: payload(1) });
    await api(s, 'publish', { channel, data: payload(2) });
    await waitFor(() => got.length === 2, 'two publications');
    assert.deepEqual(got, [payload(1), payload(2)]);
    assert.equal(sub.deltaStats().numDeltaPayloads, 0);
  });
});
