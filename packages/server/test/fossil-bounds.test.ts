import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { createFossilDelta, fossilDeltaStats } from '../src/protocol/fossil-delta.js';
import { api, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';

/**
 * Issue #20.6: the crafted pair that made the old encoder quadratic. 60 KB of 'abcdefghijklmnop' repeated, and the
 * same text with one letter changed every 100 characters: every aligned source block matches thousands of target
 * windows, and the old encoder extended each candidate at each position (measured 620-960 ms per patch).
 */
const BASE = 'abcdefghijklmnop'.repeat(3750);
const CHANGED = BASE.split('')
  .map((c, i) => (i % 100 === 99 ? 'X' : c))
  .join('');
const payload = (i: number) => ({ i, text: i % 2 === 0 ? BASE : CHANGED });

const config = {
  client: { insecure: true },
  channel: {
    namespaces: [
      {
        name: 'delta',
        allow_subscribe_for_client: true,
        allowed_delta_types: ['fossil'],
        delta_publish: true,
        history_size: 100,
        history_ttl: '300s',
        force_recovery: true,
      },
    ],
  },
};

/** CPU time (user + system, ms) this process spends in `fn`: Herald runs in it, so this is Herald's work. */
async function cpuMs(fn: () => Promise<void>): Promise<number> {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

test('a patch between the crafted 60 KB payloads costs a bounded amount of CPU', () => {
  const source = Buffer.from(JSON.stringify(payload(0)));
  const target = Buffer.from(JSON.stringify(payload(1)));
  const started = process.cpuUsage();
  for (let n = 0; n < 10; n++) createFossilDelta(n % 2 === 0 ? source : target, n % 2 === 0 ? target : source);
  const used = process.cpuUsage(started);
  const ms = (used.user + used.system) / 1000;
  console.log(`10 crafted 60 KB patches: ${ms.toFixed(0)} ms of CPU`);
  // Generous bound: measured ~5 ms per patch now, 620-960 ms per patch before the fix.
  assert.ok(ms < 2000, `10 patches took ${ms.toFixed(0)} ms of CPU`);
});

describe('fossil delta with crafted payloads, through the centrifuge SDK', { timeout: 120_000 }, () => {
  let s: TestServer;
  const clients: Centrifuge[] = [];
  before(async () => {
    s = await startHerald({ fileConfig: config, env: { HERALD_COMMAND_RATE: '0' } });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await s.close();
  });

  async function deltaSubscriber(
    channel: string,
  ): Promise<{ sub: Subscription; got: unknown[]; recovered: Promise<boolean> }> {
    const c = newClient(s.wsUrl);
    clients.push(c);
    c.connect();
    await c.ready(5000);
    const sub = c.newSubscription(channel, { delta: 'fossil', since: { offset: 0, epoch: '' } });
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    const recovered = new Promise<boolean>((r) => sub.once('subscribed', (ctx) => r(ctx.recovered)));
    sub.subscribe();
    await recovered;
    return { sub, got, recovered };
  }

  test('twenty crafted 60 KB publications reach a delta subscriber decoded, and cost Herald bounded CPU', async () => {
    const channel = `delta:live_${Date.now()}`;
    const { sub, got } = await deltaSubscriber(channel);
    const ms = await cpuMs(async () => {
      for (let i = 1; i <= 20; i++) assert.equal((await api(s, 'publish', { channel, data: payload(i) })).status, 200);
      await waitFor(() => got.length === 20, 'twenty publications', 60_000);
    });
    console.log(`20 crafted publications to a delta subscriber: ${ms.toFixed(0)} ms of CPU`);
    assert.deepEqual(
      got,
      Array.from({ length: 20 }, (_, k) => payload(k + 1)),
    );
    assert.ok(sub.deltaStats().numDeltaPayloads >= 19, 'the publications after the first travel as patches');
    // Generous bound: measured ~150-300 ms now; before the fix each patch alone cost 620-960 ms.
    assert.ok(ms < 4000, `20 publications took ${ms.toFixed(0)} ms of CPU`);
  });

  test('recovering subscribes over twenty crafted publications decode them all, and later ones reuse the patches computed for the first', async () => {
    const channel = `delta:recover_${Date.now()}`;
    // Other payloads than the live test's (i from 101): the patches are not in the cache yet.
    for (let i = 101; i <= 120; i++) assert.equal((await api(s, 'publish', { channel, data: payload(i) })).status, 200);
    const expected = Array.from({ length: 20 }, (_, k) => payload(k + 101));

    const before = fossilDeltaStats();
    const ms = await cpuMs(async () => {
      const first = await deltaSubscriber(channel);
      await waitFor(() => first.got.length === 20, 'twenty recovered publications', 60_000);
      assert.deepEqual(first.got, expected);
    });
    const afterFirst = fossilDeltaStats();
    // Generous bound: measured ~250 ms now; before the fix each of the 19 patches cost 620-960 ms.
    console.log(
      `first recovery of 20 crafted publications: ${ms.toFixed(0)} ms of CPU, ${afterFirst.encoded - before.encoded} patches encoded`,
    );
    assert.ok(ms < 4000, `the first recovery took ${ms.toFixed(0)} ms of CPU`);
    assert.equal(afterFirst.encoded - before.encoded, 19, 'the first recovery encodes each patch once');

    for (let n = 0; n < 5; n++) {
      const next = await deltaSubscriber(channel);
      await waitFor(() => next.got.length === 20, 'twenty recovered publications', 60_000);
      assert.deepEqual(next.got, expected);
      assert.ok(next.sub.deltaStats().numDeltaPayloads >= 19);
    }
    const afterAll = fossilDeltaStats();
    assert.equal(afterAll.encoded, afterFirst.encoded, 'no patch is encoded again for the later recoveries');
    assert.equal(afterAll.reused - afterFirst.reused, 5 * 19, 'each later recovery reuses the 19 patches');
  });
});
