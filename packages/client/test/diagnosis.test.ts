import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { createTokenRoute, mintToken } from '@herald/next';
import {
  createHeraldClient,
  diagnoseTransportFailure,
  type Diagnosis,
  type HeraldClient,
  type HeraldClientOptions,
} from '../src/index.js';
import {
  closedPort,
  nextLikeServer,
  plain404Server,
  SECRET,
  silentTcpServer,
  startHerald,
  waitFor,
} from './support.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A client that retries fast and records what it reports. */
function observed(url: string, extra: Partial<HeraldClientOptions> = {}) {
  const diagnoses: Diagnosis[] = [];
  const states: string[] = [];
  let transportErrors = 0;
  const client: HeraldClient = createHeraldClient({
    url,
    websocket: WebSocket,
    connectTimeout: 400,
    probeTimeout: 400,
    diagnose: (d) => diagnoses.push(d),
    centrifuge: { minReconnectDelay: 50, maxReconnectDelay: 100 },
    ...extra,
  });
  client.onState((s) => states.push(s));
  client.centrifuge.on('error', (e) => {
    if (e.type === 'transport') transportErrors++;
  });
  cleanups.push(() => client.disconnect());
  client.connect();
  return { client, diagnoses, states, transportErrors: () => transportErrors };
}

test('nothing listening: the console names it once, however often the client retries', async () => {
  const port = await closedPort();
  const o = observed(`ws://127.0.0.1:${port}/ws`);
  await waitFor('four failed attempts', () => o.transportErrors() >= 4);
  await waitFor('a diagnosis', () => o.diagnoses.length > 0);
  assert.equal(o.diagnoses.length, 1);
  assert.equal(o.diagnoses[0]!.cause, 'nothing_listening');
  assert.match(o.diagnoses[0]!.message, /nothing is listening/);
  assert.match(o.diagnoses[0]!.message, /ECONNREFUSED/);
  assert.match(o.diagnoses[0]!.message, new RegExp(`npx herald doctor ws://127\\.0\\.0\\.1:${port}/ws`));
  assert.ok(!o.states.includes('connected'));
  o.client.disconnect();
});

test('Next.js with no rewrite: the upgrade hangs, the connect timeout ends it, and the advice has the rewrite snippet', async () => {
  const next = await nextLikeServer();
  cleanups.push(() => next.close());
  const o = observed(`ws://127.0.0.1:${next.port}/ws`);
  await waitFor('three timed-out attempts', () => o.transportErrors() >= 3);
  assert.equal(o.diagnoses.length, 1);
  const d = o.diagnoses[0]!;
  assert.equal(d.cause, 'nextjs_no_rewrite');
  assert.match(d.message, /Next\.js answered/);
  assert.match(d.message, /async rewrites\(\)/);
  assert.match(d.message, /source: '\/ws', destination: 'http:\/\/127\.0\.0\.1:3002\/ws'/);
  assert.match(d.message, /NEXT_PUBLIC_HERALD_URL=ws:\/\/localhost:3002\/ws/);
  assert.deepEqual([...new Set(o.states)], ['connecting', 'disconnected']);
  o.client.disconnect();
});

test('another HTTP server answering 404 is named as not Herald', async () => {
  const s = await plain404Server();
  cleanups.push(() => s.close());
  const o = observed(`ws://127.0.0.1:${s.port}/ws`);
  await waitFor('a diagnosis', () => o.diagnoses.length > 0);
  assert.equal(o.diagnoses[0]!.cause, 'not_herald');
  assert.equal(o.diagnoses[0]!.code, 404);
  assert.match(o.diagnoses[0]!.message, /not Herald/);
  o.client.disconnect();
});

test('a server that accepts TCP and never answers is told apart from one that is not there', async () => {
  const s = await silentTcpServer();
  cleanups.push(() => s.close());
  const o = observed(`ws://127.0.0.1:${s.port}/ws`);
  await waitFor('a diagnosis', () => o.diagnoses.length > 0);
  assert.equal(o.diagnoses[0]!.cause, 'no_answer');
  assert.match(o.diagnoses[0]!.message, /accepts connections but answered neither/);
  o.client.disconnect();
});

test('Herald refusing the page Origin: the diagnosis names HERALD_ALLOWED_ORIGINS and the 403', async () => {
  const h = await startHerald({ HERALD_ALLOWED_ORIGINS: 'http://app.test:3000' });
  cleanups.push(() => h.herald.close());
  class FromEvilOrigin extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { origin: 'http://evil.test' });
    }
  }
  const token = await mintToken({ user: { id: 'alice', name: 'alice' } }, { secret: SECRET });
  const o = observed(h.url, { websocket: FromEvilOrigin, token });
  await waitFor('a diagnosis', () => o.diagnoses.length > 0);
  await waitFor('two failed attempts', () => o.transportErrors() >= 2);
  assert.equal(o.diagnoses.length, 1);
  assert.equal(o.diagnoses[0]!.cause, 'origin_not_allowed');
  assert.equal(o.diagnoses[0]!.code, 403);
  assert.match(o.diagnoses[0]!.message, /HERALD_ALLOWED_ORIGINS=/);
  o.client.disconnect();
});

test('in a browser, where a refused upgrade shows no status, Herald answering the probe still points at the Origin check', () => {
  const d = diagnoseTransportFailure(
    {
      endpoint: { url: 'ws://rt.example:3002/ws', source: 'env' },
      pageOrigin: 'http://localhost:3000',
      connectTimeoutMs: 5000,
    },
    { reason: 'transport closed' },
    { kind: 'herald', status: 426, version: '0.1.0' },
  );
  assert.equal(d.cause, 'origin_not_allowed');
  assert.match(d.message, /HERALD_ALLOWED_ORIGINS=http:\/\/localhost:3000/);
});

test('a token signed with another secret: Herald closes with 3500 and the diagnosis says so with the code, and the client stops', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const bad = await mintToken(
    { user: { id: 'alice', name: 'alice' } },
    { secret: 'not-the-secret-herald-has-xxxxxxxxxxxx' },
  );
  const o = observed(h.url, { token: bad });
  await waitFor('a diagnosis', () => o.diagnoses.length > 0);
  const d = o.diagnoses[0]!;
  assert.equal(d.cause, 'token_invalid');
  assert.equal(d.code, 3500);
  assert.match(d.message, /invalid token/);
  assert.match(d.message, /HERALD_TOKEN_SECRET/);
  await waitFor('the client to give up', () => o.client.state === 'disconnected');
  assert.ok(!o.states.includes('connected'));
});

test('an expired token makes the SDK ask the token source again, and the fresh token connects', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  let calls = 0;
  const getToken = async () => {
    calls++;
    if (calls === 1) {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
        .sign(new TextEncoder().encode(SECRET));
    }
    return mintToken({ user: { id: 'alice', name: 'alice' } }, { secret: SECRET });
  };
  const o = observed(h.url, { getToken });
  await waitFor('connected', () => o.client.state === 'connected');
  assert.equal(calls, 2);
  assert.equal(o.diagnoses.length, 0);
  o.client.disconnect();
});

test('the token route: a signed-in user connects and publishes; a signed-out one gets one "not signed in" diagnosis', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  let signedIn = true;
  const route = createTokenRoute({
    secret: SECRET,
    getSession: () => (signedIn ? { user: { id: 'alice', name: 'alice' } } : null),
  });
  const app = createServer(async (req, res) => {
    const answer = await route(new Request(`http://127.0.0.1${req.url}`));
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(await answer.text());
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
  const tokenUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/api/herald/token`;

  const o = observed(h.url, { tokenUrl });
  await waitFor('connected', () => o.client.state === 'connected');
  const got: unknown[] = [];
  o.client.subscribe('chat:room', (p) => got.push(p.data));
  await waitFor('subscribed', () => o.client.centrifuge.getSubscription('chat:room')?.state === 'subscribed');
  await o.client.publish('chat:room', { text: 'hi' });
  await waitFor('the publication', () => got.length === 1);
  assert.deepEqual(got, [{ text: 'hi' }]);
  o.client.disconnect();

  signedIn = false;
  const out = observed(h.url, { tokenUrl });
  await waitFor('a diagnosis', () => out.diagnoses.length > 0);
  assert.equal(out.diagnoses[0]!.cause, 'not_signed_in');
  await waitFor('disconnected', () => out.client.state === 'disconnected');
  assert.equal(out.diagnoses.length, 1);
});

test('a token source that only hands out expired tokens: one "token expired" diagnosis with code 109', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  let calls = 0;
  const getToken = async () => {
    calls++;
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
  };
  const o = observed(h.url, { getToken });
  await waitFor('four token fetches', () => calls >= 4);
  assert.equal(o.diagnoses.length, 1);
  assert.equal(o.diagnoses[0]!.cause, 'token_expired');
  assert.equal(o.diagnoses[0]!.code, 109);
  assert.match(o.diagnoses[0]!.message, /clocks/);
  assert.ok(!o.states.includes('connected'));
  o.client.disconnect();
});
