import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { RawClient, mintToken, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';
import { Backend, capturingLogger } from './support/proxy-backend.js';

/**
 * What Herald does with the less common parts of proxy answers, with the centrifuge SDK over a real HTTP backend:
 * subscribe `override`, refresh answers, and `info` past HERALD_MAX_INFO_SIZE (from a proxy or an in-process hook).
 */

const MAX_INFO = 64;
/** JSON text of exactly `bytes` bytes: {"pad":"xx…"}. */
const infoOf = (bytes: number) => ({ pad: 'x'.repeat(bytes - 10) });
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
const soon = () => Math.floor(Date.now() / 1000) + 2;

function subscribed(
  sub: Subscription,
): Promise<{ kind: string; code?: number; message?: string; recoverable?: boolean }> {
  return new Promise((resolve) => {
    sub.once('subscribed', (ctx) => resolve({ kind: 'subscribed', recoverable: ctx.recoverable }));
    sub.once('error', (ctx) => {
      resolve({ kind: 'error', code: ctx.error.code, message: ctx.error.message });
      sub.unsubscribe(); // no resubscribe of a temporary error: one proxy call per subscribe here
    });
    sub.once('unsubscribed', (ctx) => resolve({ kind: 'unsubscribed', code: ctx.code, message: ctx.reason }));
    sub.subscribe();
  });
}

/** Connects and resolves with the first outcome: connected, a connect error, or a server close (reconnecting). */
function connectOutcome(c: Centrifuge): Promise<{ kind: string; code?: number; message?: string; client?: string }> {
  return new Promise((resolve) => {
    c.once('connected', (ctx) => resolve({ kind: 'connected', client: ctx.client }));
    c.on('error', (ctx) => {
      // The SDK's own errors (transport, 11 connection closed) when the server closes: 'connecting' tells the code.
      if (ctx.type === 'transport' || ctx.error.code < 100) return;
      resolve({ kind: 'error', code: ctx.error.code, message: ctx.error.message });
      c.disconnect();
    });
    c.on('connecting', (ctx) => {
      if (ctx.code === 0) return; // the connect() call itself
      resolve({ kind: 'closed', code: ctx.code, message: ctx.reason });
      c.disconnect();
    });
    c.on('disconnected', (ctx) => resolve({ kind: 'closed', code: ctx.code, message: ctx.reason }));
    c.connect();
  });
}

describe('proxy answers: override, refresh and the info cap', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  let logs: ReturnType<typeof capturingLogger>;

  before(async () => {
    backend = await Backend.start();
    logs = capturingLogger();
    backend.on('/connect', (req) => {
      const c = (req.body as { data?: { case?: string } }).data?.case;
      if (c === 'info-at-limit') return { result: { user: 'lim', info: infoOf(MAX_INFO) } };
      if (c === 'info') return { result: { user: 'big', info: infoOf(MAX_INFO + 1) } };
      if (c === 'b64info') return { result: { user: 'big', b64info: b64(infoOf(MAX_INFO + 1)) } };
      if (c === 'subs') return { result: { user: 'big', subs: { lobby: { info: infoOf(MAX_INFO + 1) } } } };
      if (c === 'extends') return { result: { user: 'ext', expire_at: soon() } };
      if (c === 'expires') return { result: { user: 'exp', expire_at: soon() } };
      return { disconnect: { code: 4501, reason: 'unknown case' } };
    });
    backend.on('/refresh', (req) => {
      const body = req.body as { user: string };
      if (body.user === 'exp') return { result: { expired: true } };
      // The first refresh extends by a couple of seconds only, so the connection must live through a second one.
      const n = backend.to('/refresh').filter((r) => (r.body as { user: string }).user === body.user).length;
      return { result: { expire_at: n === 1 ? soon() : Math.floor(Date.now() / 1000) + 3600 } };
    });
    backend.on('/subscribe', (req) => {
      const channel = (req.body as { channel: string }).channel;
      if (channel === 'room:limit') return { result: { info: infoOf(MAX_INFO) } };
      if (channel === 'room:big') return { result: { info: infoOf(MAX_INFO + 1) } };
      if (channel === 'room:b64big') return { result: { b64info: b64(infoOf(MAX_INFO + 1)) } };
      if (channel === 'opt:on')
        return {
          result: {
            override: {
              presence: { value: false },
              join_leave: { value: true },
              force_push_join_leave: { value: true },
              force_recovery: { value: true },
            },
          },
        };
      return { result: {} };
    });
    s = await startHerald({
      env: { HERALD_MAX_INFO_SIZE: String(MAX_INFO) },
      logger: logs.logger,
      fileConfig: {
        client: {
          proxy: {
            connect: { enabled: true, endpoint: backend.url('/connect'), timeout: '2s' },
            refresh: { enabled: true, endpoint: backend.url('/refresh'), timeout: '2s' },
          },
        },
        channel: {
          proxy: { subscribe: { endpoint: backend.url('/subscribe'), timeout: '2s' } },
          without_namespace: { allow_subscribe_for_client: true },
          namespaces: [
            { name: 'room', subscribe_proxy_enabled: true },
            // presence on, join/leave and recovery off: the override turns them around for one subscription.
            { name: 'opt', subscribe_proxy_enabled: true, presence: true, history_size: 10, history_ttl: '60s' },
            { name: 'hooked', allow_subscribe_for_client: true },
          ],
        },
      },
      hooks: {
        onConnecting: ({ data }) =>
          (data as { case?: string } | undefined)?.case === 'hook-info'
            ? { user: 'hooked', info: infoOf(MAX_INFO + 1) }
            : undefined,
        onSubscribe: ({ channel }) =>
          channel === 'hooked:big'
            ? { info: infoOf(MAX_INFO + 1) }
            : channel === 'hooked:limit'
              ? { info: infoOf(MAX_INFO) }
              : undefined,
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });
  beforeEach(() => {
    logs.lines.length = 0;
  });

  async function tokenClient(user: string): Promise<Centrifuge> {
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) });
    assert.equal((await connectOutcome(c)).kind, 'connected');
    return c;
  }

  // ---- override -----------------------------------------------------------------------------------------------

  test("a subscribe answer's override turns on join/leave and recovery and turns off presence for that subscription", async () => {
    const a = await tokenClient('a');
    const b = await tokenClient('b');
    const joins: Record<string, string[]> = { 'opt:on': [], 'opt:off': [] };
    const subsA: Record<string, Subscription> = {};
    const recoverable: Record<string, boolean | undefined> = {};
    for (const channel of ['opt:on', 'opt:off']) {
      const sub = a.newSubscription(channel);
      sub.on('join', (ctx) => joins[channel]!.push(ctx.info.user));
      subsA[channel] = sub;
      const o = await subscribed(sub);
      assert.equal(o.kind, 'subscribed');
      recoverable[channel] = o.recoverable;
      assert.equal((await subscribed(b.newSubscription(channel))).kind, 'subscribed');
    }
    // A publication after b's subscribe arrives after any join b's subscribe caused.
    for (const channel of ['opt:on', 'opt:off']) {
      const got = new Promise((r) => subsA[channel]!.once('publication', r));
      await s.herald.publish(channel, { after: 'b' });
      await got;
    }
    assert.deepEqual(joins, { 'opt:on': ['b'], 'opt:off': [] });
    assert.deepEqual(recoverable, { 'opt:on': true, 'opt:off': false });
    assert.equal((await s.herald.presence('opt:on')).size, 0);
    assert.equal((await s.herald.presence('opt:off')).size, 2);
    a.disconnect();
    b.disconnect();
  });

  // ---- refresh ------------------------------------------------------------------------------------------------

  test('a refresh answer that extends expire_at keeps the SDK connected through two refreshes', async () => {
    const c = newClient(s.wsUrl, { data: { case: 'extends' } });
    const reconnects: number[] = [];
    const o = await connectOutcome(c);
    assert.equal(o.kind, 'connected');
    c.on('connecting', (ctx) => reconnects.push(ctx.code));
    await waitFor(
      () => backend.to('/refresh').filter((r) => (r.body as { user: string }).user === 'ext').length >= 2,
      'a second refresh of the extended connection',
      10_000,
    );
    const clients = backend
      .to('/refresh')
      .filter((r) => (r.body as { user: string }).user === 'ext')
      .map((r) => (r.body as { client: string }).client);
    assert.deepEqual(clients.slice(0, 2), [o.client, o.client]);
    assert.equal((await subscribed(c.newSubscription('lobby'))).kind, 'subscribed');
    assert.deepEqual(reconnects, []);
    assert.equal(c.state, 'connected');
    c.disconnect();
  });

  test('a refresh answer with expired closes the connection with 3005 (the SDK reconnects)', async () => {
    const c = newClient(s.wsUrl, { data: { case: 'expires' } });
    assert.equal((await connectOutcome(c)).kind, 'connected');
    const closed = await new Promise<{ code: number; reason: string }>((r) => c.once('connecting', r));
    c.disconnect();
    assert.equal(closed.code, 3005);
  });

  // ---- info cap: proxies ------------------------------------------------------------------------------------

  test('connect proxy info of exactly HERALD_MAX_INFO_SIZE bytes is accepted', async () => {
    const c = newClient(s.wsUrl, { data: { case: 'info-at-limit' } });
    assert.equal((await connectOutcome(c)).kind, 'connected');
    c.disconnect();
  });

  for (const which of ['info', 'b64info', 'subs'] as const) {
    test(`connect proxy ${which === 'subs' ? "subs' info" : which} past HERALD_MAX_INFO_SIZE closes with 3051 and warns naming the proxy`, async () => {
      // A raw socket: while the SDK is connecting it reconnects on a close without reporting the code.
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { data: { case: which } } });
      const closed = await raw.closed(5000);
      raw.close();
      assert.equal(closed.code, 3051);
      const warn = logs.lines.find((l) => l.kind === 'connect' && l.proxy === 'default');
      assert.ok(warn, 'one warning naming the proxy');
      assert.match(warn.problem, new RegExp(`larger than ${MAX_INFO} bytes \\(HERALD_MAX_INFO_SIZE\\)`));
      if (which === 'subs') assert.match(warn.problem, /subs\["lobby"\]\.info/);
    });
  }

  test('subscribe proxy info of exactly the limit is accepted; one byte more (info or b64info) is 151 with a warning', async () => {
    const c = await tokenClient('alice');
    assert.equal((await subscribed(c.newSubscription('room:limit'))).kind, 'subscribed');
    for (const channel of ['room:big', 'room:b64big']) {
      logs.lines.length = 0;
      const o = await subscribed(c.newSubscription(channel));
      assert.equal(o.kind, 'error');
      assert.equal(o.code, 151);
      assert.match(o.message!, /HERALD_MAX_INFO_SIZE/);
      const warn = logs.lines.find((l) => l.kind === 'subscribe' && l.proxy === 'default');
      assert.ok(warn, `a warning naming the proxy for ${channel}`);
      assert.match(warn.problem, /larger than 64 bytes/);
    }
    c.disconnect();
  });

  // ---- info cap: hooks ----------------------------------------------------------------------------------------

  test('onConnecting info past HERALD_MAX_INFO_SIZE fails the connect with 100 and a warning naming the hook', async () => {
    const c = newClient(s.wsUrl, { data: { case: 'hook-info' } });
    const o = await connectOutcome(c);
    assert.equal(o.kind, 'error');
    assert.equal(o.code, 100);
    assert.match(o.message!, /onConnecting hook returned info of 65 bytes, more than the 64 allowed/);
    const warn = logs.lines.find((l) => l.hook === 'onConnecting');
    assert.ok(warn, 'a warning naming the hook');
    assert.equal(warn.bytes, 65);
  });

  test('onSubscribe info past HERALD_MAX_INFO_SIZE fails the subscribe with 100 and a warning; at the limit it passes', async () => {
    const c = await tokenClient('bob');
    assert.equal((await subscribed(c.newSubscription('hooked:limit'))).kind, 'subscribed');
    const o = await subscribed(c.newSubscription('hooked:big'));
    assert.equal(o.kind, 'error');
    assert.equal(o.code, 100);
    assert.match(o.message!, /onSubscribe hook returned info of 65 bytes/);
    const warn = logs.lines.find((l) => l.hook === 'onSubscribe');
    assert.ok(warn, 'a warning naming the hook');
    assert.equal(warn.channel, 'hooked:big');
    c.disconnect();
  });
});
