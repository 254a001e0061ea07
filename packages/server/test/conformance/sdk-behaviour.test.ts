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
});
