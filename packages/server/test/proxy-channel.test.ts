import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { RawClient, mintToken, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';
import { Backend, capturingLogger, hang, raw, status } from './support/proxy-backend.js';
import { HeraldError } from '../src/index.js';

/** Subscribe, publish, sub_refresh and rpc proxies over a real HTTP backend, driven by the centrifuge SDK. */

function fileConfig(backend: Backend) {
  return {
    channel: {
      proxy: {
        subscribe: { endpoint: backend.url('/subscribe'), timeout: '300ms', max_response_size: 4096 },
        publish: { endpoint: backend.url('/publish'), timeout: '300ms' },
        sub_refresh: { endpoint: backend.url('/sub_refresh') },
      },
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [
        { name: 'room', subscribe_proxy_enabled: true, publish_proxy_enabled: true, presence: true },
        { name: 'named', subscribe_proxy_enabled: true, subscribe_proxy_name: 'other' },
        { name: 'live', subscribe_proxy_enabled: true, sub_refresh_proxy_enabled: true },
        { name: 'hooked', publish_proxy_enabled: true, allow_subscribe_for_client: true },
      ],
    },
    proxies: [{ name: 'other', endpoint: backend.url('/other-subscribe') }],
    rpc: {
      proxy: { endpoint: backend.url('/rpc'), timeout: '300ms' },
      without_namespace: { proxy_enabled: true },
      namespaces: [{ name: 'off' }],
    },
  };
}

async function connected(c: Centrifuge): Promise<void> {
  const p = new Promise((r) => c.once('connected', r));
  c.connect();
  await p;
}

/** Subscribes and resolves with the first outcome: subscribed (with its data), an error, or unsubscribed. */
function outcome(
  sub: Subscription,
): Promise<{ kind: string; data?: unknown; code?: number; message?: string; temporary?: boolean }> {
  return new Promise((resolve) => {
    sub.once('subscribed', (ctx) => resolve({ kind: 'subscribed', data: ctx.data }));
    sub.once('error', (ctx) =>
      resolve({
        kind: 'error',
        code: ctx.error.code,
        message: ctx.error.message,
        temporary: (ctx.error as { temporary?: boolean }).temporary,
      }),
    );
    sub.once('unsubscribed', (ctx) => resolve({ kind: 'unsubscribed', code: ctx.code, message: ctx.reason }));
    sub.subscribe();
  });
}

describe('subscribe, publish and rpc proxies (memory engine)', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  let logs: ReturnType<typeof capturingLogger>;
  const order: string[] = [];

  before(async () => {
    backend = await Backend.start();
    logs = capturingLogger();
    s = await startHerald({
      engineName: 'memory',
      logger: logs.logger,
      fileConfig: fileConfig(backend),
      hooks: {
        onPublish: ({ channel, data }) => {
          if (!channel.startsWith('hooked:')) return undefined;
          order.push('hook');
          const d = data as { text?: string };
          if (d.text === 'hook-refuses') throw new HeraldError(1001, 'the hook said no');
          return { data: { ...d, hooked: true } };
        },
        onRpc: ({ method }) => (method === 'local' ? { from: 'hook' } : undefined),
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.requests.length = 0;
    logs.lines.length = 0;
    order.length = 0;
  });

  async function client(user = 'alice'): Promise<Centrifuge> {
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) });
    await connected(c);
    return c;
  }

  test('subscribe: the backend allows, and its data reaches the SDK and its info the presence', async () => {
    backend.on('/subscribe', () => ({ result: { data: { topic: 'hello' }, info: { seat: 7 } } }));
    const c = await client();
    const o = await outcome(c.newSubscription('room:1'));
    assert.deepEqual(o, { kind: 'subscribed', data: { topic: 'hello' } });
    const req = backend.to('/subscribe')[0]!;
    assert.equal(req.body.channel, 'room:1');
    assert.equal(req.body.user, 'alice');
    assert.equal(req.body.transport, 'websocket');
    const presence = [...(await s.herald.presence('room:1')).values()];
    assert.deepEqual(JSON.parse(presence[0]!.chanInfo!), { seat: 7 });
    c.disconnect();
  });

  test('subscribe: the backend refuses with an error the SDK reports as terminal (unsubscribed 403)', async () => {
    backend.on('/subscribe', () => ({ error: { code: 403, message: 'not a member' } }));
    const c = await client();
    const o = await outcome(c.newSubscription('room:2'));
    assert.equal(o.kind, 'unsubscribed');
    assert.equal(o.code, 403);
    assert.equal((await s.herald.presence('room:2')).size, 0);
    c.disconnect();
  });

  test('subscribe: the backend decides instead of allow_subscribe_for_client (a namespace without it still works)', async () => {
    backend.on('/other-subscribe', () => ({ result: {} }));
    const c = await client();
    const o = await outcome(c.newSubscription('named:x'));
    assert.equal(o.kind, 'subscribed');
    assert.equal(backend.to('/other-subscribe').length, 1, 'subscribe_proxy_name picked the named proxy');
    assert.equal(backend.to('/subscribe').length, 0);
    c.disconnect();
  });

  test('subscribe: a subscription token skips the proxy', async () => {
    backend.on('/subscribe', () => ({ error: { code: 403, message: 'never asked' } }));
    const c = await client('bob');
    const token = await mintToken({ sub: 'bob', channel: 'room:tok' });
    const o = await outcome(c.newSubscription('room:tok', { token }));
    assert.equal(o.kind, 'subscribed');
    assert.equal(backend.to('/subscribe').length, 0);
    c.disconnect();
  });

  for (const [what, reply, code, problem] of [
    ['a 500', () => status(500), 150, /HTTP 500/],
    ['a timeout', () => hang(), 150, /timeout/],
    ['a non-JSON body', () => raw('<h1>oops</h1>'), 151, /not JSON/],
    ['a body over max_response_size', () => ({ result: { data: 'x'.repeat(8000) } }), 151, /larger than 4096/],
    ['the wrong shape', () => ({ result: { expire_at: 'soon' } }), 151, /result\.expire_at/],
  ] as const) {
    test(`subscribe: ${what} from the backend is a temporary error ${code} the SDK retries, with one warning`, async () => {
      backend.on('/subscribe', reply);
      const c = await client();
      const o = await outcome(c.newSubscription(`room:${code}`));
      assert.equal(o.kind, 'error');
      assert.equal(o.code, code);
      assert.equal(o.temporary, true);
      c.disconnect();
      const warns = logs.lines.filter((l) => l.level === 40);
      assert.ok(warns.length >= 1);
      assert.equal(warns[0].proxy, 'default');
      assert.equal(warns[0].kind, 'subscribe');
      assert.match(warns[0].problem, problem);
    });
  }

  test('subscribe: the SDK resubscribes after a temporary failure and succeeds once the backend is back', async () => {
    let calls = 0;
    backend.on('/subscribe', () => (++calls < 2 ? status(502) : { result: {} }));
    const c = await client();
    const sub = c.newSubscription('room:retry');
    const subscribed = new Promise((r) => sub.once('subscribed', r));
    sub.subscribe();
    await subscribed;
    assert.equal(calls, 2);
    c.disconnect();
  });

  test('a slow subscribe backend never stalls other connections', async () => {
    let release: (() => void) | undefined;
    backend.on('/subscribe', (req) =>
      req.body.channel === 'room:slow' ? new Promise((r) => (release = () => r({ result: {} }))) : { result: {} },
    );
    const a = await client('slow');
    const slow = outcome(a.newSubscription('room:slow'));
    await waitFor(() => release !== undefined, 'the slow call to reach the backend');
    let slowDone = false;
    void slow.then(() => (slowDone = true));
    const b = await client('fast');
    const o = await outcome(b.newSubscription('room:fast'));
    assert.equal(o.kind, 'subscribed');
    await b.publish('lobby', { n: 1 }).catch(() => undefined);
    assert.equal(slowDone, false, 'the other connection finished while the slow call was still pending');
    release!();
    assert.equal((await slow).kind, 'subscribed');
    a.disconnect();
    b.disconnect();
  });

  test('publish: the backend allows, and the publication reaches subscribers as sent', async () => {
    backend.on('/subscribe', () => ({ result: {} }));
    backend.on('/publish', () => ({ result: {} }));
    const c = await client();
    const sub = c.newSubscription('room:pub');
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    await outcome(sub);
    await sub.publish({ text: 'hi' });
    await waitFor(() => got.length === 1, 'the publication');
    assert.deepEqual(got[0], { text: 'hi' });
    const req = backend.to('/publish')[0]!;
    assert.deepEqual(req.body.data, { text: 'hi' });
    assert.equal(req.body.channel, 'room:pub');
    c.disconnect();
  });

  test('publish: the backend replaces the data before it is stored and fanned out', async () => {
    backend.on('/subscribe', () => ({ result: {} }));
    backend.on('/publish', (req) => ({
      result: { data: { text: String(req.body.data.text).toUpperCase(), checked: true } },
    }));
    const c = await client();
    const sub = c.newSubscription('room:rewrite');
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    await outcome(sub);
    await sub.publish({ text: 'quiet' });
    await waitFor(() => got.length === 1, 'the publication');
    assert.deepEqual(got[0], { text: 'QUIET', checked: true });
    c.disconnect();
  });

  test('publish: the backend refuses; the client gets its error and nothing is delivered', async () => {
    backend.on('/subscribe', () => ({ result: {} }));
    backend.on('/publish', (req) =>
      req.body.data.text === '' ? { error: { code: 1400, message: 'empty message' } } : { result: {} },
    );
    const c = await client();
    const sub = c.newSubscription('room:refuse');
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    await outcome(sub);
    await assert.rejects(sub.publish({ text: '' }), (e: { code: number; message: string }) => {
      assert.equal(e.code, 1400);
      assert.equal(e.message, 'empty message');
      return true;
    });
    await sub.publish({ text: 'after' });
    await waitFor(() => got.length === 1, 'the allowed publication');
    assert.deepEqual(got, [{ text: 'after' }], 'the refused publication was never delivered');
    c.disconnect();
  });

  test('publish: a dead backend is error 150 and nothing is delivered', async () => {
    backend.on('/subscribe', () => ({ result: {} }));
    backend.on('/publish', () => hang());
    const c = await client();
    const sub = c.newSubscription('room:dead');
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    await outcome(sub);
    await assert.rejects(sub.publish({ text: 'x' }), (e: { code: number }) => e.code === 150);
    await s.herald.publish('room:dead', { marker: true });
    await waitFor(() => got.length === 1, 'the marker');
    assert.deepEqual(got, [{ marker: true }]);
    c.disconnect();
  });

  test('publish: the onPublish hook runs first; the backend sees its data; a hook refusal never reaches the backend', async () => {
    backend.on('/publish', (req) => {
      order.push('proxy');
      return { result: { data: { ...req.body.data, proxied: true } } };
    });
    const c = await client();
    const sub = c.newSubscription('hooked:1');
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    await outcome(sub);
    await sub.publish({ text: 'a' });
    await waitFor(() => got.length === 1, 'the publication');
    assert.deepEqual(order, ['hook', 'proxy']);
    assert.deepEqual(backend.to('/publish')[0]!.body.data, { text: 'a', hooked: true });
    assert.deepEqual(got[0], { text: 'a', hooked: true, proxied: true });
    await assert.rejects(sub.publish({ text: 'hook-refuses' }), (e: { code: number }) => e.code === 1001);
    assert.equal(backend.to('/publish').length, 1);
    c.disconnect();
  });

  test('rpc: the backend answers with the app result', async () => {
    backend.on('/rpc', (req) => ({ result: { data: { echo: req.body.data, method: req.body.method } } }));
    const c = await client();
    const r = await c.rpc('getPrice', { id: 12 });
    assert.deepEqual(r.data, { echo: { id: 12 }, method: 'getPrice' });
    assert.equal(backend.to('/rpc')[0]!.body.user, 'alice');
    c.disconnect();
  });

  test('rpc: the backend refuses with its error; a dead backend is 150; an onRpc answer skips the backend', async () => {
    backend.on('/rpc', (req) =>
      req.body.method === 'down' ? status(503) : { error: { code: 1404, message: 'no such item' } },
    );
    const c = await client();
    await assert.rejects(
      c.rpc('find', {}),
      (e: { code: number; message: string }) => e.code === 1404 && e.message === 'no such item',
    );
    await assert.rejects(c.rpc('down', {}), (e: { code: number }) => e.code === 150);
    const before = backend.to('/rpc').length;
    assert.deepEqual((await c.rpc('local', {})).data, { from: 'hook' });
    assert.equal(backend.to('/rpc').length, before);
    c.disconnect();
  });

  test('rpc: a namespace without proxy_enabled answers 108; an unknown rpc namespace answers 104', async () => {
    // A Herald without onRpc: every method goes by its rpc namespace.
    const plain = await startHerald({ fileConfig: fileConfig(backend) });
    const raw1 = await RawClient.open(plain.wsUrl);
    raw1.send({ id: 1, connect: { token: await mintToken({ sub: 'zed' }) } });
    await raw1.reply(1);
    raw1.send({ id: 2, rpc: { method: 'off:x', data: {} } }, { id: 3, rpc: { method: 'nowhere:x', data: {} } });
    assert.equal((await raw1.reply(2)).error.code, 108);
    assert.equal((await raw1.reply(3)).error.code, 104);
    assert.equal(backend.to('/rpc').length, 0);
    raw1.close();
    await plain.close();
  });

  test('a disconnect answer from the subscribe backend closes the connection with its code', async () => {
    backend.on('/subscribe', () => ({ disconnect: { code: 4503, reason: 'account closed' } }));
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'quit' }) });
    const disc = new Promise<{ code: number; reason: string }>((r) => c.once('disconnected', r));
    await connected(c);
    c.newSubscription('room:bye').subscribe();
    const ctx = await disc;
    assert.equal(ctx.code, 4503);
    assert.equal(ctx.reason, 'account closed');
  });

  test('sub_refresh: at the subscription expiry Herald asks the backend; expired unsubscribes with 2501', async () => {
    backend.on('/subscribe', () => ({ result: { expire_at: Math.ceil(Date.now() / 1000) + 1 } }));
    let refreshes = 0;
    backend.on('/sub_refresh', () =>
      ++refreshes === 1 ? { result: { expire_at: Math.ceil(Date.now() / 1000) + 1 } } : { result: { expired: true } },
    );
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send(
      { id: 1, connect: { token: await mintToken({ sub: 'kim' }) } },
      { id: 2, subscribe: { channel: 'live:1' } },
    );
    const r = await raw1.reply(2);
    assert.equal(r.subscribe.expires, undefined, 'the client is not told to refresh: Herald does');
    const unsub = await waitFor(
      () => raw1.messages.find((m) => m.push?.unsubscribe),
      'the unsubscribe push after the second refresh',
      8000,
    );
    assert.equal(unsub.push.channel, 'live:1');
    assert.equal(unsub.push.unsubscribe.code, 2501);
    assert.equal(refreshes, 2);
    const req = backend.to('/sub_refresh')[0]!;
    assert.equal(req.body.channel, 'live:1');
    assert.equal(req.body.user, 'kim');
    raw1.close();
  });
});

describe('subscribe and publish proxies on the Redis engine', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  before(async () => {
    backend = await Backend.start();
    s = await startHerald({ engineName: 'redis', fileConfig: fileConfig(backend) });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });

  test('a proxied subscribe and a rewritten publish travel through Redis to the subscriber', async () => {
    backend.on('/subscribe', () => ({ result: { info: { badge: 'gold' } } }));
    backend.on('/publish', () => ({ result: { data: { text: 'rewritten' } } }));
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'redis-user' }) });
    await connected(c);
    const sub = c.newSubscription('room:redis');
    const got: { data: unknown; info?: { chanInfo?: unknown } }[] = [];
    sub.on('publication', (p) => got.push(p));
    assert.equal((await outcome(sub)).kind, 'subscribed');
    await sub.publish({ text: 'original' });
    await waitFor(() => got.length === 1, 'the publication');
    assert.deepEqual(got[0]!.data, { text: 'rewritten' });
    assert.deepEqual(got[0]!.info?.chanInfo, { badge: 'gold' });
    c.disconnect();
  });
});
