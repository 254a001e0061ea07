import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { mintToken, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';
import { Backend, hang, status } from './support/proxy-backend.js';

/** herald_proxy_* in /metrics and the max_in_flight limit, over a real HTTP backend with the centrifuge SDK. */

/** The value of the sample of `name` whose labels are exactly `labels`; undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const keys = Object.keys(labels);
    if (keys.length === Object.keys(set).length && keys.every((k) => set[k] === labels[k])) return Number(m[3]);
  }
  return undefined;
}

async function metrics(s: TestServer): Promise<string> {
  return (await fetch(`${s.httpUrl}/metrics`)).text();
}

async function connected(c: Centrifuge): Promise<void> {
  const p = new Promise((r) => c.once('connected', r));
  c.connect();
  await p;
}

async function client(s: TestServer, user: string): Promise<Centrifuge> {
  const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) });
  await connected(c);
  return c;
}

/**
 * Subscribes and resolves with the first outcome. A subscription that fails is unsubscribed at once, so the SDK
 * does not retry it and each subscribe here makes exactly one proxy call.
 */
function outcome(sub: Subscription): Promise<{ kind: string; code?: number; message?: string }> {
  return new Promise((resolve) => {
    sub.once('subscribed', () => resolve({ kind: 'subscribed' }));
    sub.once('error', (ctx) => {
      resolve({ kind: 'error', code: ctx.error.code, message: ctx.error.message });
      sub.unsubscribe();
    });
    sub.once('unsubscribed', (ctx) => resolve({ kind: 'unsubscribed', code: ctx.code, message: ctx.reason }));
    sub.subscribe();
  });
}

describe('proxy metrics in /metrics', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;

  before(async () => {
    backend = await Backend.start();
    s = await startHerald({
      fileConfig: {
        client: { proxy: { connect: { enabled: true, endpoint: backend.url('/connect'), timeout: '300ms' } } },
        channel: {
          without_namespace: { allow_subscribe_for_client: true },
          namespaces: [{ name: 'room', subscribe_proxy_enabled: true, subscribe_proxy_name: 'members' }],
        },
        proxies: [{ name: 'members', endpoint: backend.url('/subscribe'), timeout: '300ms' }],
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });

  test('a timeout, a 500, a refusal and an allow are counted by outcome under the proxy name, with their latency', async () => {
    backend.on('/subscribe', (req) => {
      const channel = (req.body as { channel: string }).channel;
      if (channel === 'room:slow') return hang();
      if (channel === 'room:broken') return status(500);
      if (channel === 'room:closed') return { error: { code: 403, message: 'not a member' } };
      return { result: {} };
    });
    const c = await client(s, 'alice');
    const slow = await outcome(c.newSubscription('room:slow'));
    assert.equal(slow.code, 150);
    assert.match(slow.message!, /no answer within 300 ms/);
    assert.equal((await outcome(c.newSubscription('room:broken'))).code, 150);
    assert.equal((await outcome(c.newSubscription('room:closed'))).code, 403);
    assert.equal((await outcome(c.newSubscription('room:open'))).kind, 'subscribed');
    c.disconnect();

    const m = await metrics(s);
    const counted = (outcome: string) =>
      sample(m, 'herald_proxy_requests_total', { proxy: 'members', kind: 'subscribe', outcome });
    assert.equal(counted('timeout'), 1);
    assert.equal(counted('http_status'), 1);
    assert.equal(counted('error'), 1);
    assert.equal(counted('ok'), 1);
    assert.equal(sample(m, 'herald_proxy_request_duration_seconds_count', { proxy: 'members', kind: 'subscribe' }), 4);
    // The timed-out call alone took its 300 ms timeout (less a timer's millisecond of rounding).
    const sum = sample(m, 'herald_proxy_request_duration_seconds_sum', { proxy: 'members', kind: 'subscribe' });
    assert.ok(sum !== undefined && sum >= 0.29, `latency sum ${sum} s`);
    assert.equal(sample(m, 'herald_proxy_requests_in_flight', { proxy: 'members', kind: 'subscribe' }), 0);
  });

  test('a connect proxy that answers disconnect is counted as disconnect under the name default', async () => {
    backend.on('/connect', () => ({ disconnect: { code: 4501, reason: 'no session' } }));
    const c = newClient(s.wsUrl);
    const closed = new Promise<{ code: number }>((r) => c.once('disconnected', r));
    c.connect();
    assert.equal((await closed).code, 4501);
    const m = await metrics(s);
    assert.equal(
      sample(m, 'herald_proxy_requests_total', { proxy: 'default', kind: 'connect', outcome: 'disconnect' }),
      1,
    );
  });
});

describe('max_in_flight: a backend that holds its requests', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  let held: (() => void)[] = [];
  let holding = true;

  before(async () => {
    backend = await Backend.start();
    backend.on(
      '/held',
      () =>
        new Promise((resolve) => {
          if (holding) held.push(() => resolve({ result: {} }));
          else resolve({ result: {} });
        }),
    );
    s = await startHerald({
      fileConfig: {
        channel: {
          without_namespace: { allow_subscribe_for_client: true, allow_publish_for_subscriber: true },
          namespaces: [{ name: 'held', subscribe_proxy_enabled: true, subscribe_proxy_name: 'held' }],
        },
        // One call at a time, 4 more may wait (4 per slot); the long timeout keeps the waiting ones waiting.
        proxies: [{ name: 'held', endpoint: backend.url('/held'), timeout: '20s', max_in_flight: 1 }],
      },
    });
  });
  after(async () => {
    holding = false;
    for (const release of held.splice(0)) release();
    await s.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.requests.length = 0;
  });

  test('the call past max_in_flight and its waiting list gets 150 at once; other connections keep working', async () => {
    // Five connections (commands on one connection run in order): one call in flight, four waiting for its slot.
    const clients: Centrifuge[] = [];
    for (let i = 1; i <= 5; i++) clients.push(await client(s, `u${i}`));
    const pending = clients.map((c, i) => outcome(c.newSubscription(`held:${i + 1}`)));
    await waitFor(async () => {
      const m = await metrics(s);
      return sample(m, 'herald_proxy_requests_in_flight', { proxy: 'held', kind: 'subscribe' }) === 5;
    }, 'five subscribe calls in flight or waiting');
    await waitFor(() => held.length === 1, 'the backend holding the first call');
    assert.equal(backend.to('/held').length, 1);

    // The sixth is refused while the backend still holds the first: busy, temporary.
    const sixth = await client(s, 'u6');
    const refused = await outcome(sixth.newSubscription('held:6'));
    assert.equal(refused.kind, 'error');
    assert.equal(refused.code, 150);
    assert.match(refused.message!, /busy: 1 calls in flight and 4 waiting \(max_in_flight 1\)/);
    assert.equal(held.length, 1, 'the backend still holds the first call');

    // A connection that needs no proxy subscribes, publishes and receives meanwhile.
    const other = await client(s, 'other');
    const lobby = other.newSubscription('lobby');
    assert.equal((await outcome(lobby)).kind, 'subscribed');
    const got = new Promise<unknown>((r) => lobby.once('publication', (ctx) => r(ctx.data)));
    await lobby.publish({ text: 'still here' });
    assert.deepEqual(await got, { text: 'still here' });

    const m = await metrics(s);
    assert.equal(sample(m, 'herald_proxy_requests_total', { proxy: 'held', kind: 'subscribe', outcome: 'busy' }), 1);

    // Released, the five held and waiting subscriptions all succeed, one call at a time.
    holding = false;
    for (const release of held.splice(0)) release();
    const outcomes = await Promise.all(pending);
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      ['subscribed', 'subscribed', 'subscribed', 'subscribed', 'subscribed'],
    );
    assert.equal(backend.to('/held').length, 5);
    for (const c of [...clients, sixth, other]) c.disconnect();
  });
});
