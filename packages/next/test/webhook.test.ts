// verifyWebhook against the webhooks a real Herald sends: a plain Node HTTP server on 127.0.0.1 turns each POST into
// a Web Request, as a Next.js App Router route receives it, and verifies it; then tampered, stale, unsigned and
// wrongly keyed copies of a real request are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createHerald, type Herald } from '@herald/server';
import {
  mintToken,
  verifyWebhook,
  WebhookVerificationError,
  type HeraldWebhookEvent,
  type WebhookErrorReason,
} from '../src/index.js';

const TOKEN_SECRET = 'webhook-route-token-secret-0123456789';
const WEBHOOK_SECRET = 'webhook-route-secret-0123456789abcdef';

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  verified?: HeraldWebhookEvent[];
  error?: unknown;
}

const received: Received[] = [];
let server: Server;
let herald: Herald;
let wsUrl = '';

/** A Web Request like the one Next.js hands a route handler. */
function webRequest(r: { url: string; headers: IncomingHttpHeaders; body: string }): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') headers.set(k, v);
  return new Request(r.url, { method: 'POST', headers, body: r.body });
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        url: `http://127.0.0.1${req.url}`,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      received.push(r);
      verifyWebhook(webRequest(r), WEBHOOK_SECRET).then(
        (events) => {
          r.verified = events;
          res.writeHead(204).end();
        },
        (err: unknown) => {
          r.error = err;
          res.writeHead(err instanceof WebhookVerificationError ? err.status : 500).end();
        },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/herald/webhook`;
  herald = createHerald({
    logger: false,
    env: { HERALD_TOKEN_SECRET: TOKEN_SECRET },
    fileConfig: {
      webhooks: [{ endpoint, events: ['connect', 'disconnect'], secret: WEBHOOK_SECRET, flush_interval: '10ms' }],
    },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  wsUrl = `ws://127.0.0.1:${addr.port}/connection/websocket`;
});

after(async () => {
  await herald.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Connects as `user` over a raw WebSocket and closes; Herald sends connect and disconnect events. */
async function connectAndLeave(user: string): Promise<void> {
  const token = await mintToken({ user: { id: user } }, { secret: TOKEN_SECRET });
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ id: 1, connect: { token } }));
  await new Promise((resolve) => ws.once('message', resolve));
  ws.close(1000);
}

async function refused(
  r: { url: string; headers: IncomingHttpHeaders; body: string },
  secret: string | string[],
  now?: number,
) {
  try {
    await verifyWebhook(webRequest(r), secret, now === undefined ? {} : { now: () => now });
  } catch (err) {
    assert.ok(err instanceof WebhookVerificationError);
    return { reason: err.reason as WebhookErrorReason, status: err.status };
  }
  assert.fail('verifyWebhook accepted it');
}

test('a route verifies the webhooks Herald sends and reads their typed events', async () => {
  await connectAndLeave('alice');
  await waitFor(() => received.flatMap((r) => r.verified ?? []).some((e) => e.type === 'disconnect'), 'disconnect');
  assert.deepEqual(
    received.map((r) => r.error),
    received.map(() => undefined),
  );
  const events = received.flatMap((r) => r.verified ?? []);
  const connect = events.find((e) => e.type === 'connect');
  const disconnect = events.find((e) => e.type === 'disconnect');
  assert.ok(connect && connect.type === 'connect' && connect.user === 'alice');
  assert.ok(disconnect && disconnect.type === 'disconnect');
  assert.equal(disconnect.client, connect.client);
  assert.equal(typeof disconnect.code, 'number');
});

test('a tampered body, another secret, a stale timestamp and missing headers are refused; a rotation list verifies', async () => {
  const real = received.find((r) => r.verified)!;
  assert.ok(real);
  const tampered = { ...real, body: real.body.replace('alice', 'mallory') };
  assert.notEqual(tampered.body, real.body);
  assert.deepEqual(await refused(tampered, WEBHOOK_SECRET), { reason: 'bad_signature', status: 401 });
  assert.deepEqual(await refused(real, 'another-secret-0123456789abcdef'), { reason: 'bad_signature', status: 401 });
  const sentAt = Number(real.headers['x-herald-timestamp']) * 1000;
  assert.deepEqual(await refused(real, WEBHOOK_SECRET, sentAt + 301_000), { reason: 'stale', status: 401 });
  const { 'x-herald-signature': _s, ...unsigned } = real.headers;
  assert.deepEqual(await refused({ ...real, headers: unsigned }, WEBHOOK_SECRET), {
    reason: 'bad_headers',
    status: 401,
  });
  assert.deepEqual(await refused(real, ''), { reason: 'no_secret', status: 500 });
  const events = await verifyWebhook(webRequest(real), ['old-secret-0123456789abcdef', WEBHOOK_SECRET], {
    now: () => sentAt + 299_000,
  });
  assert.deepEqual(events, real.verified);
});
