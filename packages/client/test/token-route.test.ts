import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createTokenRoute } from '@herald/next';
import { createHeraldClient, type Diagnosis } from '../src/index.js';
import { SECRET, startHerald, waitFor } from './support.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function tokenApp(handler: (url: string) => Promise<Response>): Promise<string> {
  const app = createServer(async (req, res) => {
    const answer = await handler(req.url ?? '/');
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(await answer.text());
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => app.close(() => r())));
  return `http://127.0.0.1:${(app.address() as AddressInfo).port}/api/herald/token`;
}

test('a short-lived token from the route is fetched again before it expires, and the connection stays up', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  let hits = 0;
  const route = createTokenRoute({
    secret: SECRET,
    ttlSeconds: 2,
    getSession: () => ({ user: { id: 'alice', name: 'alice' } }),
  });
  const tokenUrl = await tokenApp(async (url) => {
    hits++;
    return route(new Request(`http://127.0.0.1${url}`));
  });
  const client = createHeraldClient({ url: h.url, tokenUrl, websocket: WebSocket, diagnose: false });
  cleanups.push(() => client.disconnect());
  const states: string[] = [];
  client.onState((s) => states.push(s));
  client.connect();
  await waitFor('connected', () => client.state === 'connected');
  await waitFor('the route to be asked again for a fresh token', () => hits >= 2, 8000);
  assert.equal(client.state, 'connected');
  assert.deepEqual(states, ['connecting', 'connected']);
  client.disconnect();
});

test('a missing token route is diagnosed once with the route file to add', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const tokenUrl = await tokenApp(async () => new Response('not found', { status: 404 }));
  const diagnoses: Diagnosis[] = [];
  const client = createHeraldClient({
    url: h.url,
    tokenUrl,
    websocket: WebSocket,
    diagnose: (d) => diagnoses.push(d),
    centrifuge: { minReconnectDelay: 50, maxReconnectDelay: 100 },
  });
  cleanups.push(() => client.disconnect());
  let tokenErrors = 0;
  client.centrifuge.on('error', (e) => {
    if (e.type === 'connectToken') tokenErrors++;
  });
  client.connect();
  await waitFor('three failed token fetches', () => tokenErrors >= 3);
  assert.equal(diagnoses.length, 1);
  assert.equal(diagnoses[0]!.cause, 'token_route');
  assert.match(diagnoses[0]!.message, /app\/api\/herald\/token\/route\.ts/);
  assert.match(diagnoses[0]!.message, /createTokenRoute/);
  client.disconnect();
});

test('a token route that cannot tell who the user is: the diagnosis carries its HERALD_TOKEN_CONFIG message with the fix', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  // next-auth's default session (name and email, no id) and no session cookie: the route refuses to guess an id.
  const route = createTokenRoute({
    secret: SECRET,
    getSession: () => ({ user: { name: 'alice', email: 'alice@x.test' } }),
  });
  const tokenUrl = await tokenApp(async (url) => route(new Request(`http://127.0.0.1${url}`)));
  const diagnoses: Diagnosis[] = [];
  const client = createHeraldClient({
    url: h.url,
    tokenUrl,
    websocket: WebSocket,
    diagnose: (d) => diagnoses.push(d),
    centrifuge: { minReconnectDelay: 50, maxReconnectDelay: 100 },
  });
  cleanups.push(() => client.disconnect());
  client.connect();
  await waitFor('a diagnosis', () => diagnoses.length > 0);
  assert.equal(diagnoses[0]!.cause, 'token_route');
  assert.equal(diagnoses[0]!.code, 500);
  assert.match(diagnoses[0]!.message, /HTTP 500: HERALD_TOKEN_CONFIG: no user id for this session/);
  assert.match(diagnoses[0]!.message, /subject/);
  assert.notEqual(client.state, 'connected');
  client.disconnect();
});
