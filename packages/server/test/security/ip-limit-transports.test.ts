// HERALD_IP_CONNECTION_LIMIT counts every transport of a node together: mixing WebSocket and HTTP streaming
// cannot open more connections from one address than the limit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken, RawClient, startHerald, waitFor, type TestServer } from '../support/herald.js';

let s: TestServer;
before(async () => {
  s = await startHerald({ env: { HERALD_IP_CONNECTION_LIMIT: '1', HERALD_HTTP_STREAM: 'true' } });
});
after(() => s.close());

async function openStream(): Promise<{ status: number; abort(): void }> {
  const abort = new AbortController();
  const body = JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: 'ip' }) } });
  const res = await fetch(`${s.httpUrl}/connection/http_stream`, { method: 'POST', body, signal: abort.signal });
  if (res.status !== 200) await res.text();
  return { status: res.status, abort: () => abort.abort() };
}

test('with a WebSocket open, an HTTP-streaming connection from the same address is refused with 429, and allowed once it closes', async () => {
  const ws = await RawClient.open(s.wsUrl);
  const refused = await openStream();
  assert.equal(refused.status, 429);
  ws.close();
  await waitFor(async () => {
    const r = await openStream();
    r.abort();
    return r.status === 200;
  }, 'a stream once the WebSocket closed');
});

test('with an HTTP stream open, a WebSocket upgrade from the same address is refused with 429', async () => {
  await waitFor(async () => {
    const r = await RawClient.open(s.wsUrl).catch(() => undefined);
    r?.close();
    return r !== undefined;
  }, 'the slot of the previous test to be free');
  await new Promise((r) => setTimeout(r, 100));
  const stream = await openStream();
  assert.equal(stream.status, 200);
  try {
    await assert.rejects(RawClient.open(s.wsUrl), /429/);
  } finally {
    stream.abort();
  }
});
