/**
 * JSON and protobuf clients on one channel (docs/protocol.md, "Mixed channels"): both receive every publication with
 * the same offsets, recover the same missed ones, and decode the same fossil-delta payloads; data from a protobuf
 * client must be JSON text, so a JSON subscriber never receives a frame it cannot parse.
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { engineNames } from '../support/engines.js';
import {
  api,
  mintToken,
  newClient,
  payload,
  startHerald,
  waitFor,
  type Encoding,
  type TestServer,
} from '../support/herald.js';

const config = {
  channel: {
    namespaces: {
      chat: {
        allow_subscribe_for_client: true,
        allow_publish_for_subscriber: true,
        allow_history_for_subscriber: true,
        history_size: 100,
        history_ttl_ms: 300_000,
        force_recovery: true,
      },
      delta: {
        allow_subscribe_for_client: true,
        allowed_delta_types: ['fossil'],
        delta_publish: true,
        history_size: 100,
        history_ttl_ms: 300_000,
        force_recovery: true,
      },
    },
  },
};

interface Got {
  raw: unknown[];
  offsets: number[];
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: unknown) => new TextDecoder().decode(data as Uint8Array);

for (const engineName of engineNames) {
  describe(`JSON and protobuf clients on one channel (${engineName} engine)`, { timeout: 60_000 }, () => {
    let s: TestServer;
    const clients: Centrifuge[] = [];
    before(async () => {
      s = await startHerald({ engineName, config });
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      await s.close();
    });

    async function client(encoding: Encoding, user: string): Promise<Centrifuge> {
      const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) }, encoding);
      clients.push(c);
      c.connect();
      await c.ready(5000);
      return c;
    }

    async function subscribe(
      c: Centrifuge,
      channel: string,
      opts: Parameters<Centrifuge['newSubscription']>[1] = {},
    ): Promise<{ sub: Subscription; got: Got }> {
      const sub = c.newSubscription(channel, opts);
      const got: Got = { raw: [], offsets: [] };
      sub.on('publication', (ctx) => {
        got.raw.push(ctx.data);
        got.offsets.push(ctx.offset ?? 0);
      });
      sub.subscribe();
      await sub.ready(5000);
      return { sub, got };
    }

    test('a publication from the API, a JSON client or a protobuf client reaches JSON and protobuf subscribers with the same offsets', async () => {
      const channel = `chat:mixed_${Date.now()}`;
      const j = await subscribe(await client('json', 'j'), channel);
      const p = await subscribe(await client('protobuf', 'p'), channel);
      await api(s, 'publish', { channel, data: { from: 'api', text: 'Grüße 😀' } });
      await j.sub.publish({ from: 'json' });
      // Insignificant whitespace in a protobuf client's JSON is not kept: Herald stores the payload compact.
      await p.sub.publish(bytes('{ "from": "protobuf" }'));
      await waitFor(() => j.got.raw.length === 3 && p.got.raw.length === 3, 'three publications each');
      assert.deepEqual(j.got.raw, [{ from: 'api', text: 'Grüße 😀' }, { from: 'json' }, { from: 'protobuf' }]);
      assert.deepEqual(p.got.raw.map(text), [
        '{"from":"api","text":"Grüße 😀"}',
        '{"from":"json"}',
        '{"from":"protobuf"}',
      ]);
      assert.deepEqual(p.got.offsets, j.got.offsets);
      assert.deepEqual(j.got.offsets, [1, 2, 3]);
    });

    test('a protobuf client publishing bytes that are not JSON is refused with 107 and nothing reaches the JSON subscriber', async () => {
      const channel = `chat:binary_${Date.now()}`;
      const j = await subscribe(await client('json', 'j'), channel);
      const p = await subscribe(await client('protobuf', 'p'), channel);
      for (const data of [new Uint8Array([0xff, 0xfe, 0x00]), bytes('not json'), bytes('{"open":')]) {
        await assert.rejects(p.sub.publish(data), (e: { code: number }) => e.code === 107);
      }
      await p.sub.publish(bytes('"fine"'));
      await waitFor(() => j.got.raw.length === 1 && p.got.raw.length === 1, 'the JSON publication');
      assert.deepEqual(j.got.raw, ['fine']);
      assert.deepEqual(j.got.offsets, [1]);
      const history = await api(s, 'history', { channel, limit: 10 });
      assert.deepEqual(
        history.json.result.publications.map((x: { data: unknown }) => x.data),
        ['fine'],
      );
    });

    test('JSON and protobuf subscribers recover the same missed publications after a reconnect', async () => {
      const channel = `chat:recover_${Date.now()}`;
      const jc = await client('json', 'j');
      const pc = await client('protobuf', 'p');
      const j = await subscribe(jc, channel);
      const p = await subscribe(pc, channel);
      await api(s, 'publish', { channel, data: { i: 1 } });
      await waitFor(() => j.got.raw.length === 1 && p.got.raw.length === 1, 'the first publication');
      jc.disconnect();
      pc.disconnect();
      for (const i of [2, 3, 4, 5]) await api(s, 'publish', { channel, data: { i } });
      const recovered = [j, p].map((x) => new Promise<{ recovered: boolean }>((r) => x.sub.once('subscribed', r)));
      jc.connect();
      pc.connect();
      for (const ctx of await Promise.all(recovered)) assert.equal(ctx.recovered, true);
      await waitFor(() => j.got.raw.length === 5 && p.got.raw.length === 5, 'all five');
      assert.deepEqual(
        j.got.raw,
        [1, 2, 3, 4, 5].map((i) => ({ i })),
      );
      assert.deepEqual(
        p.got.raw.map(payload),
        [1, 2, 3, 4, 5].map((i) => ({ i })),
      );
      assert.deepEqual(p.got.offsets, [1, 2, 3, 4, 5]);
      assert.deepEqual(j.got.offsets, p.got.offsets);
    });

    const big = (i: number) => ({ i, text: 'Grüße, 世界 😀 '.repeat(40), tail: 'é'.repeat(i) });

    test('fossil delta: JSON and protobuf subscribers of one channel both get patches and decode the same payloads, live and recovered', async () => {
      const channel = `delta:mixed_${Date.now()}`;
      const j = await subscribe(await client('json', 'j'), channel, { delta: 'fossil' });
      const p = await subscribe(await client('protobuf', 'p'), channel, { delta: 'fossil' });
      for (const i of [1, 2, 3, 4]) await api(s, 'publish', { channel, data: big(i) });
      await waitFor(() => j.got.raw.length === 4 && p.got.raw.length === 4, 'four publications each');
      assert.deepEqual(j.got.raw, [1, 2, 3, 4].map(big));
      assert.deepEqual(p.got.raw.map(payload), [1, 2, 3, 4].map(big));
      assert.equal(j.sub.deltaStats().numDeltaPayloads, 3);
      assert.equal(p.sub.deltaStats().numDeltaPayloads, 3);
      // Recovery in a delta subscription: the subscribe reply's publications are patches too.
      p.sub.unsubscribe();
      for (const i of [5, 6, 7]) await api(s, 'publish', { channel, data: big(i) });
      const resubscribed = new Promise<{ recovered: boolean }>((r) => p.sub.once('subscribed', r));
      p.sub.subscribe();
      assert.equal((await resubscribed).recovered, true);
      await waitFor(() => p.got.raw.length === 7 && j.got.raw.length === 7, 'seven publications each');
      assert.deepEqual(p.got.raw.map(payload), [1, 2, 3, 4, 5, 6, 7].map(big));
      assert.deepEqual(p.got.offsets, [1, 2, 3, 4, 5, 6, 7]);
      // Live: 1 in full, 2-4 as patches; recovered: 5 in full, 6 and 7 as patches.
      assert.equal(p.sub.deltaStats().numDeltaPayloads, 5);
    });
  });
}
