// HTTP-streaming and SSE emulation without sticky sessions: two nodes on one Redis; a client's stream is on node A
// and its `POST /emulation` requests go to node B (directly, or through a round-robin proxy), which relays them to A
// through the engine's control channel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReadableStream } from 'node:stream/web';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import { redisTestEngine, uniquePrefix } from './support/engines.js';
import { api, mintToken, startHerald, waitFor, type TestServer } from './support/herald.js';

/** The least of an EventSource the SDK's SSE transport uses, on fetch (Node 20 has no EventSource). */
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
          const data = buf
            .slice(0, end)
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          buf = buf.slice(end + 2);
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

const fileConfig = {
  http_stream: { enabled: true },
  sse: { enabled: true },
  client: { insecure: true },
  channel: { without_namespace: { presence: true, history_size: 10, history_ttl: '60s', force_recovery: true } },
};

/** A round-robin balancer: each request (stream or command) goes to the next node in turn; counts per node. */
async function roundRobin(targets: TestServer[]): Promise<{ url: string; counts: number[]; server: Server }> {
  const counts = targets.map(() => 0);
  let next = 0;
  const server = createServer((req, res) => {
    const i = next++ % targets.length;
    counts[i]!++;
    const upstream = request(
      { host: '127.0.0.1', port: targets[i]!.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counts, server };
}

describe('emulation without sticky sessions (two nodes on Redis)', () => {
  let a: TestServer;
  let b: TestServer;
  const clients: Centrifuge[] = [];
  before(async () => {
    const prefix = uniquePrefix('relay');
    a = await startHerald({ engine: await redisTestEngine({ prefix }), fileConfig });
    b = await startHerald({ engine: await redisTestEngine({ prefix }), fileConfig });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all([a.close(), b.close()]);
  });

  function emulatedClient(transport: 'http_stream' | 'sse', streamBase: string, emulationBase: string): Centrifuge {
    const c = new Centrifuge([{ transport, endpoint: `${streamBase}/connection/${transport}` }], {
      fetch,
      readableStream: ReadableStream,
      eventsource: FetchEventSource,
      emulationEndpoint: `${emulationBase}/emulation`,
      timeout: 5000,
      minReconnectDelay: 50,
      maxReconnectDelay: 300,
    } as ConstructorParameters<typeof Centrifuge>[1]);
    clients.push(c);
    return c;
  }

  for (const transport of ['http_stream', 'sse'] as const) {
    test(`over ${transport}, a client streaming from node A and posting every command to node B subscribes, publishes and reads presence`, async () => {
      const c = emulatedClient(transport, a.httpUrl, b.httpUrl);
      c.connect();
      await c.ready(5000);
      assert.equal(a.herald.connectionCount, 1, 'the stream is on node A');
      assert.equal(b.herald.connectionCount, 0);
      const channel = `relay_${transport}_${Date.now()}`;
      const sub = c.newSubscription(channel);
      const got: unknown[] = [];
      sub.on('publication', (ctx) => got.push(ctx.data));
      sub.subscribe();
      await sub.ready(5000);
      await sub.publish({ from: 'client' });
      await api(b, 'publish', { channel, data: { from: 'api on B' } });
      await waitFor(() => got.length === 2, 'two publications');
      assert.deepEqual(got, [{ from: 'client' }, { from: 'api on B' }]);
      const presence = await sub.presence();
      assert.equal(Object.keys(presence.clients).length, 1);
      const rpcLike = await sub.history({ limit: 10 });
      assert.equal(rpcLike.publications.length, 2);
      c.disconnect();
      await waitFor(() => a.herald.connectionCount === 0, 'the stream closed on A');
    });
  }

  test('over http_stream in protobuf, a client streaming from node A and posting every command to node B subscribes, publishes and reads history', async () => {
    const c = new CentrifugeProtobuf([{ transport: 'http_stream', endpoint: `${a.httpUrl}/connection/http_stream` }], {
      fetch,
      readableStream: ReadableStream,
      emulationEndpoint: `${b.httpUrl}/emulation`,
      timeout: 5000,
    } as ConstructorParameters<typeof CentrifugeProtobuf>[1]);
    clients.push(c as unknown as Centrifuge);
    c.connect();
    await c.ready(5000);
    assert.equal(a.herald.connectionCount, 1, 'the stream is on node A');
    const channel = `relay_protobuf_${Date.now()}`;
    const sub = c.newSubscription(channel);
    const got: string[] = [];
    sub.on('publication', (ctx) => got.push(new TextDecoder().decode(ctx.data as Uint8Array)));
    sub.subscribe();
    await sub.ready(5000);
    await sub.publish(new TextEncoder().encode('{"from":"client"}'));
    await api(b, 'publish', { channel, data: { from: 'api on B' } });
    await waitFor(() => got.length === 2, 'two publications');
    assert.deepEqual(got, ['{"from":"client"}', '{"from":"api on B"}']);
    assert.equal((await sub.history({ limit: 10 })).publications.length, 2);
    c.disconnect();
    await waitFor(() => a.herald.connectionCount === 0, 'the stream closed on A');
  });

  test('behind a round-robin balancer (no sticky sessions) several emulated clients work across both nodes', async () => {
    const lb = await roundRobin([a, b]);
    try {
      const channel = `relay_rr_${Date.now()}`;
      const got: unknown[][] = [];
      const subs = [];
      for (let i = 0; i < 4; i++) {
        const c = emulatedClient(i % 2 === 0 ? 'http_stream' : 'sse', lb.url, lb.url);
        const received: unknown[] = [];
        got.push(received);
        const sub = c.newSubscription(channel);
        sub.on('publication', (ctx) => received.push(ctx.data));
        sub.subscribe();
        c.connect();
        subs.push(sub);
      }
      for (const sub of subs) await sub.ready(5000);
      assert.ok(a.herald.connectionCount > 0 && b.herald.connectionCount > 0, 'streams on both nodes');
      for (const [i, sub] of subs.entries()) await sub.publish({ i });
      await waitFor(() => got.every((r) => r.length === 4), 'every client gets every publication');
      for (const r of got)
        assert.deepEqual(
          r,
          [0, 1, 2, 3].map((i) => ({ i })),
        );
      assert.ok(lb.counts[0]! > 0 && lb.counts[1]! > 0);
    } finally {
      lb.server.closeAllConnections();
      lb.server.close();
    }
  });

  test('raw requests: B relays to the session on A and answers 404 for a session A does not hold', async () => {
    const abort = new AbortController();
    const res = await fetch(`${a.httpUrl}/connection/http_stream`, {
      method: 'POST',
      body: JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: 'raw' }) } }),
      signal: abort.signal,
    });
    try {
      const reader = res.body!.getReader();
      let text = '';
      const lines = async (n: number) => {
        while (text.split('\n').length <= n) text += new TextDecoder().decode((await reader.read()).value);
        return text
          .split('\n')
          .slice(0, n)
          .map((l) => JSON.parse(l));
      };
      const [connect] = await lines(1);
      const { session, node } = connect.connect;
      assert.equal(typeof node, 'string');
      const post = (body: unknown) =>
        fetch(`${b.httpUrl}/emulation`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({
          status: r.status,
          text: await r.text(),
        }));
      const ok = await post({ session, node, data: JSON.stringify({ id: 2, subscribe: { channel: 'raw' } }) });
      assert.equal(ok.status, 200);
      const [, reply] = await lines(2);
      assert.equal(reply.id, 2);
      assert.ok(reply.subscribe);
      const unknown = await post({ session: 'no-such-session', node, data: '{"id":3,"ping":{}}' });
      assert.equal(unknown.status, 404);
      assert.match(unknown.text, /unknown session/);
    } finally {
      abort.abort();
    }
  });
});

test('a request naming a node that never answers is answered 404 once the relay gives up', async () => {
  const prefix = uniquePrefix('relay-ghost');
  const s = await startHerald({ engine: await redisTestEngine({ prefix }), fileConfig });
  try {
    const r = await fetch(`${s.httpUrl}/emulation`, {
      method: 'POST',
      body: JSON.stringify({ session: 'x', node: 'a-node-that-is-gone', data: '{"id":1,"ping":{}}' }),
    });
    assert.equal(r.status, 404);
    assert.match(await r.text(), /unknown session/);
  } finally {
    await s.close();
  }
});

test('with the memory engine a session of another node is 404 (nothing to relay through)', async () => {
  const s = await startHerald({ fileConfig });
  try {
    const r = await fetch(`${s.httpUrl}/emulation`, {
      method: 'POST',
      body: JSON.stringify({ session: 'x', node: 'another-node', data: '{"id":1,"ping":{}}' }),
    });
    assert.equal(r.status, 404);
    await r.text();
  } finally {
    await s.close();
  }
});
