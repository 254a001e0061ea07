// createProxyHandlers driving a real Herald: a plain Node HTTP server on 127.0.0.1 turns each proxy POST into a Web
// Request, as a Next.js App Router route receives it, hands it to the route handler, and writes back its Response.
// The centrifuge SDK connects with only a cookie; subscribe, publish, rpc, refresh and sub_refresh go through the routes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { Centrifuge, type Options as CentrifugeOptions } from 'centrifuge';
import { createHerald, type Herald } from '@herald/server';
import { createProxyHandlers, proxyError, type ProxyRouteHandler } from '../src/index.js';

const SECRET = 'proxy-route-secret-0123456789';
const ORIGIN = 'http://app.test';

const calls: string[] = [];
const online = new Set<string>();

const routes = createProxyHandlers(
  {
    connect(req, { request }) {
      calls.push('connect');
      const sid = /(?:^|; )sid=([^;]+)/.exec(request.headers.get('cookie') ?? '')?.[1];
      if (!sid) return { disconnect: { code: 4501, reason: 'sign in first' } };
      online.add(sid);
      return {
        result: {
          user: sid,
          expire_at: Math.ceil(Date.now() / 1000) + 1,
          info: { name: sid.toUpperCase() },
          data: { hello: sid, client: req.client },
        },
      };
    },
    refresh(req) {
      calls.push(`refresh:${req.user}`);
      return { result: { expire_at: Math.floor(Date.now() / 1000) + 3600 } };
    },
    subscribe(req) {
      calls.push(`subscribe:${req.channel}`);
      if (req.channel === 'chat:secret') return proxyError(403, 'not a member');
      return { result: { data: { topic: req.channel }, expire_at: Math.ceil(Date.now() / 1000) + 1 } };
    },
    sub_refresh(req) {
      calls.push(`sub_refresh:${req.channel}`);
      return { result: { expire_at: Math.floor(Date.now() / 1000) + 3600 } };
    },
    publish(req) {
      const text = (req.data as { text?: unknown } | null)?.text;
      if (typeof text !== 'string' || text.trim() === '') return proxyError(1400, 'empty message');
      return { result: { data: { text: text.trim(), from: req.user } } };
    },
    rpc(req) {
      if (req.method === 'online') return { result: { data: { users: [...online].sort() } } };
      return proxyError(1404, `unknown method ${req.method ?? ''}`);
    },
  },
  { secret: SECRET },
);

let server: Server;
let herald: Herald;
let heraldWithWrongSecret: Herald;
let wsUrl = '';
let wrongSecretUrl = '';

before(async () => {
  const byPath: Record<string, ProxyRouteHandler> = {
    '/api/herald/connect': routes.connect,
    '/api/herald/refresh': routes.refresh,
    '/api/herald/subscribe': routes.subscribe,
    '/api/herald/sub-refresh': routes.sub_refresh,
    '/api/herald/publish': routes.publish,
    '/api/herald/rpc': routes.rpc,
  };
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const url = `http://127.0.0.1${req.url ?? '/'}`;
      const route = byPath[req.url ?? ''];
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      const init: RequestInit = { method: req.method, headers };
      if (req.method === 'POST') init.body = Buffer.concat(chunks);
      route(new Request(url, init))
        .then(async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers));
          res.end(await response.text());
        })
        .catch(() => res.writeHead(500).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/herald`;
  const proxy = (path: string, secret = SECRET) => ({
    endpoint: `${base}/${path}`,
    http_headers: ['Cookie'],
    http: { static_headers: { 'X-Herald-Proxy-Secret': secret } },
  });
  const fileConfig = (secret: string) => ({
    client: {
      allowed_origins: [ORIGIN],
      proxy: {
        connect: { enabled: true, ...proxy('connect', secret) },
        refresh: { enabled: true, ...proxy('refresh', secret) },
      },
    },
    channel: {
      proxy: {
        subscribe: proxy('subscribe', secret),
        publish: proxy('publish', secret),
        sub_refresh: proxy('sub-refresh', secret),
      },
      namespaces: [
        {
          name: 'chat',
          subscribe_proxy_enabled: true,
          publish_proxy_enabled: true,
          sub_refresh_proxy_enabled: true,
        },
      ],
    },
    rpc: { proxy: proxy('rpc', secret), without_namespace: { proxy_enabled: true } },
  });
  herald = createHerald({ logger: false, env: {}, fileConfig: fileConfig(SECRET) });
  wsUrl = `ws://127.0.0.1:${(await herald.listen(0, '127.0.0.1')).port}/connection/websocket`;
  heraldWithWrongSecret = createHerald({ logger: false, env: {}, fileConfig: fileConfig('not-the-secret') });
  wrongSecretUrl = `ws://127.0.0.1:${(await heraldWithWrongSecret.listen(0, '127.0.0.1')).port}/connection/websocket`;
});

after(async () => {
  await herald.close();
  await heraldWithWrongSecret.close();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A Node WebSocket that sends a browser's Origin and session cookie on the upgrade. */
function socketWithCookie(cookie: string): CentrifugeOptions['websocket'] {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { origin: ORIGIN, cookie } });
    }
  } as unknown as CentrifugeOptions['websocket'];
}

function client(url: string, cookie: string): Centrifuge {
  return new Centrifuge(url, {
    websocket: socketWithCookie(cookie),
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
  });
}

async function waitFor<T>(check: () => T, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('createProxyHandlers behind a real Herald', { timeout: 30_000 }, () => {
  test('a browser with only a session cookie connects, subscribes, publishes and calls rpc through the routes', async () => {
    const c = client(wsUrl, 'sid=ann');
    const connected = new Promise<{ data: unknown; client: string }>((r) => c.once('connected', r));
    c.connect();
    const ctx = await connected;
    assert.deepEqual(ctx.data, { hello: 'ann', client: ctx.client });

    const sub = c.newSubscription('chat:lobby');
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    const subscribed = new Promise<{ data: unknown }>((r) => sub.once('subscribed', r));
    sub.subscribe();
    assert.deepEqual((await subscribed).data, { topic: 'chat:lobby' });

    await assert.rejects(sub.publish({ text: '   ' }), (e: { code: number; message: string }) => {
      assert.equal(e.code, 1400);
      assert.equal(e.message, 'empty message');
      return true;
    });
    await sub.publish({ text: '  hello  ' });
    await waitFor(() => got.length === 1, 'the publication');
    assert.deepEqual(got, [{ text: 'hello', from: 'ann' }], 'rewritten by the publish route; the empty one never sent');

    assert.deepEqual((await c.rpc('online', {})).data, { users: ['ann'] });
    await assert.rejects(c.rpc('nope', {}), (e: { code: number }) => e.code === 1404);

    // Both expire a second after they began: Herald asks the refresh and sub_refresh routes and both stay.
    await waitFor(
      () => calls.includes('refresh:ann') && calls.includes('sub_refresh:chat:lobby'),
      'refresh and sub_refresh calls',
      6000,
    );
    assert.equal(c.state, 'connected');
    assert.equal(sub.state, 'subscribed');
    c.disconnect();
  });

  test('a route refusal reaches the SDK: no cookie is a terminal 4501, a refused channel unsubscribes with 403', async () => {
    const anon = client(wsUrl, 'other=1');
    const disc = new Promise<{ code: number; reason: string }>((r) => anon.once('disconnected', r));
    anon.connect();
    assert.deepEqual(await disc, { code: 4501, reason: 'sign in first' });

    const c = client(wsUrl, 'sid=bo');
    c.connect();
    const sub = c.newSubscription('chat:secret');
    const unsub = new Promise<{ code: number }>((r) => sub.once('unsubscribed', r));
    sub.subscribe();
    assert.equal((await unsub).code, 403);
    c.disconnect();
  });

  test('a Herald without the shared secret is answered 401 and its client gets the reconnect code 3050', async () => {
    const before = calls.filter((x) => x === 'connect').length;
    const ws = new WebSocket(wrongSecretUrl, { headers: { origin: ORIGIN, cookie: 'sid=cy' } });
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, connect: {} })));
    assert.equal(await closed, 3050, 'connect proxy unavailable: the SDK reconnects with backoff');
    assert.equal(calls.filter((x) => x === 'connect').length, before, 'the handler never ran');
  });

  test('the route answers 405 to GET and 400 to a body that is not a proxy request', async () => {
    const headers = { 'x-herald-proxy-secret': SECRET, 'content-type': 'application/json' };
    assert.equal((await routes.publish(new Request('http://x/', { method: 'GET', headers }))).status, 405);
    const notJson = await routes.publish(new Request('http://x/', { method: 'POST', headers, body: '<html>' }));
    assert.equal(notJson.status, 400);
    const noChannel = await routes.publish(
      new Request('http://x/', { method: 'POST', headers, body: JSON.stringify({ client: 'c', user: 'u' }) }),
    );
    assert.equal(noChannel.status, 400);
  });
});
