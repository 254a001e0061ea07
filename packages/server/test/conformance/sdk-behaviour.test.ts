/**
 * Behaviours the centrifuge SDK's own test suite relies on (see docs/sdk-compatibility.md and scripts/sdk-suite.sh).
 * Each test pins one protocol behaviour Herald had to fix to pass that suite, on the real SDK.
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { ReadableStream } from 'node:stream/web';
import { Centrifuge, type Subscription } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import { RawClient, api, newClient, startHerald, waitFor, type TestServer } from '../support/herald.js';

/**
 * The least of an EventSource the SDK's SSE transport uses (onopen, onmessage, onerror, close), on fetch: Node 20
 * has no EventSource and the workspace carries no polyfill.
 */
class FetchEventSource {
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  private readonly abort = new AbortController();
  constructor(url: string) {
    void this.run(url);
  }
  private async run(url: string): Promise<void> {
    try {
      const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: this.abort.signal });
      if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
      this.onopen?.();
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (data) this.onmessage?.({ data });
        }
      }
      throw new Error('stream ended');
    } catch (err) {
      if (!this.abort.signal.aborted) this.onerror?.(err);
    }
  }
  close(): void {
    this.abort.abort();
  }
}

/** The shape of the SDK suite's Centrifugo config (centrifugo_test.json), trimmed to what these tests use. */
const centrifugoStyleConfig = {
  client: { insecure: true },
  http_stream: { enabled: true },
  sse: { enabled: true },
  channel: {
    without_namespace: { presence: true, history_size: 100, history_ttl: '300s', force_recovery: true },
    namespaces: [
      // Keys of Centrifugo features Herald lacks: they must load with a warning, not fail as typos.
      {
        name: 'delta',
        allowed_delta_types: ['fossil'],
        delta_publish: true,
        history_size: 100,
        history_ttl: '300s',
        force_recovery: true,
        allow_subscribe_for_client: true,
      },
      {
        name: 'streamless',
        subscription_type: 'map',
        map: { mode: 'ephemeral', key_ttl: '60s' },
        allow_subscribe_for_client: true,
      },
      {
        name: 'users',
        subscription_type: 'map_users',
        map: { mode: 'ephemeral', key_ttl: '60s' },
        allow_subscribe_for_client: true,
      },
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

  test('a Centrifugo config naming features Herald lacks (map_users) loads with warnings instead of typo errors', async () => {
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

  for (const transport of ['http_stream', 'sse'] as const) {
    test(`over ${transport} emulation a client connects, subscribes, receives publications and answers presence`, async () => {
      const emulated = new Centrifuge([{ transport, endpoint: `${s.httpUrl}/connection/${transport}` }], {
        fetch,
        readableStream: ReadableStream,
        eventsource: FetchEventSource,
        emulationEndpoint: `${s.httpUrl}/emulation`,
        timeout: 5000,
      } as ConstructorParameters<typeof Centrifuge>[1]);
      clients.push(emulated);
      emulated.connect();
      await emulated.ready(5000);
      const channel = `emulated_${transport}_${Date.now()}`;
      const sub = emulated.newSubscription(channel);
      const got: unknown[] = [];
      sub.on('publication', (ctx) => got.push(ctx.data));
      sub.subscribe();
      await sub.ready(5000);
      await sub.publish({ from: 'client' });
      await api(s, 'publish', { channel, data: { from: 'api' } });
      await waitFor(() => got.length === 2, 'two publications');
      assert.deepEqual(got, [{ from: 'client' }, { from: 'api' }]);
      const presence = await sub.presence();
      assert.equal(Object.keys(presence.clients).length, 1);
      const disconnected = new Promise((r) => emulated.once('disconnected', r));
      emulated.disconnect();
      await disconnected;
      await waitFor(
        async () => (await api(s, 'presence_stats', { channel })).json.result?.num_clients === 0,
        'presence cleared after disconnect',
      );
    });
  }

  test("over http_stream emulation in protobuf (the SDK's protobuf build) a client connects, subscribes, publishes, receives publications and answers presence", async () => {
    const emulated = new CentrifugeProtobuf(
      [{ transport: 'http_stream', endpoint: `${s.httpUrl}/connection/http_stream` }],
      {
        fetch,
        readableStream: ReadableStream,
        emulationEndpoint: `${s.httpUrl}/emulation`,
        timeout: 5000,
      } as ConstructorParameters<typeof CentrifugeProtobuf>[1],
    );
    clients.push(emulated as unknown as Centrifuge);
    emulated.connect();
    await emulated.ready(5000);
    const channel = `emulated_protobuf_${Date.now()}`;
    const sub = emulated.newSubscription(channel);
    const got: string[] = [];
    sub.on('publication', (ctx) => got.push(new TextDecoder().decode(ctx.data as Uint8Array)));
    sub.subscribe();
    await sub.ready(5000);
    await sub.publish(new TextEncoder().encode('{"from":"client"}'));
    await api(s, 'publish', { channel, data: { from: 'api' } });
    await waitFor(() => got.length === 2, 'two publications');
    assert.deepEqual(got, ['{"from":"client"}', '{"from":"api"}']);
    const presence = await sub.presence();
    assert.equal(Object.keys(presence.clients).length, 1);
    const disconnected = new Promise((r) => emulated.once('disconnected', r));
    emulated.disconnect();
    await disconnected;
    await waitFor(
      async () => (await api(s, 'presence_stats', { channel })).json.result?.num_clients === 0,
      'presence cleared after disconnect',
    );
  });

  test('a protobuf POST /emulation that is not an EmulationRequest is refused with 400', async () => {
    const res = await fetch(`${s.httpUrl}/emulation`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array([0x0a, 0x05, 0x01]),
    });
    assert.equal(res.status, 400);
    await res.text();
  });

  test('a map subscription to a stream channel or a map users subscription is refused with 108 instead of being served as an empty stream', async () => {
    const raw = await RawClient.open(s.wsUrl);
    try {
      raw.send(
        { id: 1, connect: {} },
        { id: 2, subscribe: { channel: 'delta:m', type: 1 } },
        { id: 3, subscribe: { channel: 'users:p', type: 3 } },
      );
      assert.equal((await raw.reply(2)).error?.code, 108);
      assert.equal((await raw.reply(3)).error?.code, 108);
    } finally {
      raw.close();
    }
  });

  test('a command posted to /emulation for an unknown session is refused with 404', async () => {
    const res = await fetch(`${s.httpUrl}/emulation`, {
      method: 'POST',
      body: JSON.stringify({ session: 'nope', node: 'x', data: '{}' }),
    });
    assert.equal(res.status, 404);
  });
});

test('the HTTP emulation endpoints are off unless http_stream.enabled / sse.enabled say otherwise', async () => {
  const s = await startHerald({ fileConfig: { client: { insecure: true } } });
  try {
    const stream = await fetch(`${s.httpUrl}/connection/http_stream`, {
      method: 'POST',
      body: '{"id":1,"connect":{}}',
    });
    assert.equal(stream.status, 404);
    await stream.text();
    const sse = await fetch(`${s.httpUrl}/connection/sse?cf_connect=${encodeURIComponent('{"id":1,"connect":{}}')}`);
    assert.equal(sse.status, 404);
    await sse.text();
  } finally {
    await s.close();
  }
});

test('a unidirectional HTTP-stream connect in protobuf is refused with 415 (SSE and unidirectional streams speak JSON only, as in Centrifugo)', async () => {
  const s = await startHerald({ fileConfig: { client: { insecure: true }, uni_http_stream: { enabled: true } } });
  try {
    const res = await fetch(`${s.httpUrl}/connection/uni_http_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array([10, 0]),
    });
    assert.equal(res.status, 415);
    assert.equal(await res.text(), 'SSE and unidirectional streams speak the JSON protocol only');
  } finally {
    await s.close();
  }
});
