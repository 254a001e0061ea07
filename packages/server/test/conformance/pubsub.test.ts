import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, Subscription } from 'centrifuge';
import { engineNames } from '../support/engines.js';
import {
  RawClient,
  api,
  encodings,
  mintToken,
  newClient,
  payload,
  startHerald,
  waitFor,
  wire,
  type Encoding,
  type TestServer,
} from '../support/herald.js';

const config = {
  channel: {
    withoutNamespace: { allow_subscribe_for_client: true },
    namespaces: {
      chat: {
        allow_subscribe_for_client: true,
        allow_publish_for_subscriber: true,
        allow_history_for_subscriber: true,
        allow_presence_for_subscriber: true,
        presence: true,
        join_leave: true,
        history_size: 100,
        history_ttl_ms: 300_000,
        force_recovery: true,
      },
      small: { allow_subscribe_for_client: true, history_size: 2, history_ttl_ms: 300_000, force_recovery: true },
      private: {},
      dm: { allow_user_limited_channels: true },
      open: { allow_subscribe_for_client: true, allow_publish_for_client: true },
    },
  },
};

interface Received {
  data: unknown;
  offset?: number;
}

async function connectClient(s: TestServer, user: string, encoding: Encoding): Promise<Centrifuge> {
  const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) }, encoding);
  const connected = new Promise((r) => c.once('connected', r));
  c.connect();
  await connected;
  return c;
}

async function subscribe(
  c: Centrifuge,
  channel: string,
  opts: Parameters<Centrifuge['newSubscription']>[1] = {},
): Promise<{ sub: Subscription; got: Received[] }> {
  const sub = c.newSubscription(channel, opts);
  const got: Received[] = [];
  sub.on('publication', (ctx) => got.push({ data: payload(ctx.data), offset: ctx.offset }));
  const subscribed = new Promise((r) => sub.once('subscribed', r));
  sub.subscribe();
  await subscribed;
  return { sub, got };
}

/** A refused subscribe ends in the SDK's unsubscribed state with the server's error code. */
function refusal(sub: Subscription): Promise<number> {
  return new Promise((r) => sub.once('unsubscribed', (ctx) => r(ctx.code)));
}

for (const engineName of engineNames) {
  for (const encoding of encodings) describeEngine(engineName, encoding);
}

function describeEngine(engineName: string, encoding: Encoding): void {
  // Cases that drive the JSON protocol by hand (RawClient) run once, with the JSON suite.
  const rawTest = encoding === 'json' ? test : () => undefined;
  describe(`channels, publications and recovery (${engineName} engine, ${encoding})`, { timeout: 60_000 }, () => {
    let s: TestServer;
    const clients: Centrifuge[] = [];
    before(async () => {
      s = await startHerald({ engineName, config });
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      await s.close();
    });
    const client = async (user: string) => {
      const c = await connectClient(s, user, encoding);
      clients.push(c);
      return c;
    };

    test('a publication through the HTTP API reaches every subscriber with its offset', async () => {
      const subs = await Promise.all(['a', 'b', 'c'].map(async (u) => subscribe(await client(u), 'chat:api')));
      const res = await api(s, 'publish', { channel: 'chat:api', data: { text: 'hello' } });
      assert.equal(res.status, 200);
      assert.equal(typeof res.json.result.epoch, 'string');
      const offset = res.json.result.offset;
      assert.ok(offset >= 1);
      for (const { got } of subs) {
        await waitFor(() => got.length === 1, 'delivery');
        assert.deepEqual(got[0], { data: { text: 'hello' }, offset });
      }
    });

    test('a publication through the in-process API reaches every subscriber', async () => {
      const subs = await Promise.all(['a', 'b'].map(async (u) => subscribe(await client(u), 'plain')));
      const pos = await s.herald.publish('plain', { n: 1 });
      assert.equal(pos.offset, 0);
      for (const { got } of subs) {
        await waitFor(() => got.length === 1, 'delivery');
        assert.deepEqual(got[0]!.data, { n: 1 });
      }
    });

    test('a subscriber may publish where allow_publish_for_subscriber is set and gets info of the publisher', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const { sub } = await subscribe(alice, 'chat:room');
      const infos: unknown[] = [];
      const { sub: bobSub } = await subscribe(bob, 'chat:room');
      bobSub.on('publication', (ctx) => infos.push(ctx.info?.user));
      await sub.publish(wire(encoding, { text: 'from alice' }));
      await waitFor(() => infos.length === 1, 'bob receives');
      assert.equal(infos[0], 'alice');
    });

    test('publishing to a channel one is not subscribed to is refused with 103', async () => {
      const c = await client('eve');
      await assert.rejects(c.publish('chat:room2', wire(encoding, { x: 1 })), (e: { code: number }) => e.code === 103);
    });

    test('subscribing without permission is refused with 103 and to an unknown namespace with 102', async () => {
      const c = await client('eve');
      const sub = c.newSubscription('private:x');
      const err = refusal(sub);
      sub.subscribe();
      assert.equal(await err, 103);
      const sub2 = c.newSubscription('nosuch:x');
      const err2 = refusal(sub2);
      sub2.subscribe();
      assert.equal(await err2, 102);
    });

    test('a subscription token opens a private channel and a wrong-channel token is refused', async () => {
      const c = await client('alice');
      const { sub } = await subscribe(c, 'private:alice-stuff', {
        token: await mintToken({ sub: 'alice', channel: 'private:alice-stuff' }),
      });
      assert.equal(sub.state, 'subscribed');
      const bad = c.newSubscription('private:other', {
        token: await mintToken({ sub: 'alice', channel: 'private:alice-stuff' }),
      });
      const err = refusal(bad);
      bad.subscribe();
      assert.equal(await err, 103);
    });

    test('a subscription with a short-lived token is kept alive by sub_refresh with fresh tokens', async () => {
      const short = await startHerald({ engineName, config, env: { HERALD_EXPIRED_CLOSE_DELAY: '3s' } });
      try {
        const c = await connectClient(short, 'alice', encoding);
        let refreshes = 0;
        const sub = c.newSubscription('private:refreshing', {
          getToken: async () => {
            refreshes++;
            return mintToken({ sub: 'alice', channel: 'private:refreshing' }, { ttlSec: 2 });
          },
        });
        let unsubscribed = false;
        sub.on('unsubscribed', () => {
          unsubscribed = true;
        });
        sub.subscribe();
        await sub.ready(5000);
        await waitFor(() => refreshes >= 3, 'two sub_refresh rounds', 8000);
        assert.equal(unsubscribed, false);
        assert.equal(sub.state, 'subscribed');
        c.disconnect();
      } finally {
        await short.close();
      }
    });

    test('a user-limited channel admits only the users it names', async () => {
      const alice = await client('alice');
      const { sub } = await subscribe(alice, 'dm:talk#alice,bob');
      assert.equal(sub.state, 'subscribed');
      const eve = await client('eve');
      const s2 = eve.newSubscription('dm:talk#alice,bob');
      const err = refusal(s2);
      s2.subscribe();
      assert.equal(await err, 103);
    });

    rawTest('a subscribe reply for a recoverable channel carries recoverable, offset and epoch', async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send(
        { id: 1, connect: { token: await mintToken({ sub: 'r' }) } },
        { id: 2, subscribe: { channel: 'chat:pos' } },
      );
      const r = await raw.reply(2);
      assert.equal(r.subscribe.recoverable, true);
      assert.equal(r.subscribe.positioned, true);
      assert.equal(typeof r.subscribe.epoch, 'string');
      assert.equal(r.subscribe.offset, 0);
      raw.close();
    });

    test('recovery after a disconnect delivers exactly the missed publications, in order, once', async () => {
      const c = await client('rec');
      const { got } = await subscribe(c, 'chat:recover');
      for (let i = 1; i <= 3; i++) await s.herald.publish('chat:recover', { i });
      await waitFor(() => got.length === 3, 'first three');
      c.disconnect();
      for (let i = 4; i <= 8; i++) await s.herald.publish('chat:recover', { i });
      const recovered = new Promise<{ recovered: boolean; wasRecovering: boolean }>((r) =>
        c.getSubscription('chat:recover')!.once('subscribed', r),
      );
      c.connect();
      const ctx = await recovered;
      assert.equal(ctx.wasRecovering, true);
      assert.equal(ctx.recovered, true);
      await s.herald.publish('chat:recover', { i: 9 });
      await waitFor(() => got.length === 9, 'all nine');
      assert.deepEqual(
        got.map((g) => (g.data as { i: number }).i),
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
      assert.deepEqual(
        got.map((g) => g.offset),
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
    });

    test('recovery reports recovered false with no publications when history no longer covers the gap', async () => {
      const c = await client('gap');
      const { got } = await subscribe(c, 'small:gap');
      await s.herald.publish('small:gap', { i: 1 });
      await waitFor(() => got.length === 1, 'first');
      c.disconnect();
      for (let i = 2; i <= 6; i++) await s.herald.publish('small:gap', { i });
      const resub = new Promise<{ recovered: boolean; wasRecovering: boolean }>((r) =>
        c.getSubscription('small:gap')!.once('subscribed', r),
      );
      c.connect();
      const ctx = await resub;
      assert.equal(ctx.wasRecovering, true);
      assert.equal(ctx.recovered, false);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got.length, 1, 'no partial set of publications');
    });

    rawTest('a recovery with a stale epoch is not recovered', async () => {
      const raw = await RawClient.open(s.wsUrl);
      await s.herald.publish('chat:epoch', { i: 1 });
      raw.send(
        { id: 1, connect: { token: await mintToken({ sub: 'r' }) } },
        { id: 2, subscribe: { channel: 'chat:epoch', recover: true, offset: 0, epoch: 'not-the-epoch' } },
      );
      const r = await raw.reply(2);
      assert.equal(r.subscribe.was_recovering, true);
      assert.equal(r.subscribe.recovered, false);
      assert.equal(r.subscribe.publications, undefined);
      raw.send({ id: 3, subscribe: { channel: 'small:epoch2', recover: true, offset: 0, epoch: 'nope', flag: 2 } });
      assert.equal((await raw.reply(3)).error.code, 112);
      raw.close();
    });

    test('publications racing a recovering subscribe are delivered once and in order', async () => {
      const c = await client('race');
      const { got } = await subscribe(c, 'chat:race');
      await s.herald.publish('chat:race', { i: 1 });
      await waitFor(() => got.length === 1, 'first');
      c.disconnect();
      await s.herald.publish('chat:race', { i: 2 });
      c.connect();
      // Publish continuously while the client recovers.
      for (let i = 3; i <= 40; i++) {
        await s.herald.publish('chat:race', { i });
        if (i % 5 === 0) await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => got.length === 40, 'all forty', 5000);
      assert.deepEqual(
        got.map((g) => g.offset),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
    });

    test('presence and presence_stats list the subscribers of a channel', async () => {
      const a = await client('p1');
      const b = await client('p2');
      const b2 = await client('p2');
      const { sub } = await subscribe(a, 'chat:presence');
      await subscribe(b, 'chat:presence');
      await subscribe(b2, 'chat:presence');
      const p = await sub.presence();
      const users = Object.values(p.clients)
        .map((x) => x.user)
        .sort();
      assert.deepEqual(users, ['p1', 'p2', 'p2']);
      const st = await sub.presenceStats();
      assert.deepEqual({ c: st.numClients, u: st.numUsers }, { c: 3, u: 2 });
      const viaApi = await api(s, 'presence_stats', { channel: 'chat:presence' });
      assert.deepEqual(viaApi.json.result, { num_clients: 3, num_users: 2 });
      b2.disconnect();
      await waitFor(async () => (await sub.presenceStats()).numClients === 2, 'leave removes presence');
    });

    test('join and leave pushes reach subscribers that asked for them', async () => {
      const a = await client('j1');
      const { sub } = await subscribe(a, 'chat:joins', { joinLeave: true });
      const joins: string[] = [];
      const leaves: string[] = [];
      sub.on('join', (ctx) => joins.push(ctx.info.user));
      sub.on('leave', (ctx) => leaves.push(ctx.info.user));
      const b = await client('j2');
      const { sub: bs } = await subscribe(b, 'chat:joins');
      await waitFor(() => joins.includes('j2'), 'join');
      bs.unsubscribe();
      await waitFor(() => leaves.includes('j2'), 'leave');
    });

    test('history returns publications with offsets and epoch', async () => {
      const c = await client('h');
      const { sub } = await subscribe(c, 'chat:hist');
      for (let i = 1; i <= 5; i++) await s.herald.publish('chat:hist', { i });
      const h = await sub.history({ limit: 3 });
      assert.deepEqual(
        h.publications.map((p) => (payload(p.data) as { i: number }).i),
        [1, 2, 3],
      );
      assert.equal(h.offset, 5);
      const rev = await sub.history({ limit: 2, reverse: true });
      assert.deepEqual(
        rev.publications.map((p) => p.offset),
        [5, 4],
      );
      const since = await sub.history({ limit: 10, since: { offset: 3, epoch: h.epoch } });
      assert.deepEqual(
        since.publications.map((p) => p.offset),
        [4, 5],
      );
    });

    test('server-side subscriptions from the token channels claim arrive in the connect reply', async () => {
      const c = newClient(
        s.wsUrl,
        { token: await mintToken({ sub: 'srv', channels: ['chat:server-side'] }) },
        encoding,
      );
      clients.push(c);
      const got: unknown[] = [];
      c.on('publication', (ctx) => got.push(payload(ctx.data)));
      const subscribed = new Promise<{ channel: string }>((r) => c.once('subscribed', r));
      c.connect();
      assert.equal((await subscribed).channel, 'chat:server-side');
      await s.herald.publish('chat:server-side', { hi: 1 });
      await waitFor(() => got.length === 1, 'server-side publication');
    });

    test('server-side subscriptions from the token subs claim carry their data into the subscribed event', async () => {
      const c = newClient(
        s.wsUrl,
        { token: await mintToken({ sub: 'srv2', subs: { 'chat:subs-claim': { data: { welcome: true } } } }) },
        encoding,
      );
      clients.push(c);
      const subscribed = new Promise<{ channel: string; data?: unknown }>((r) => c.once('subscribed', r));
      c.connect();
      const ctx = await subscribed;
      assert.equal(ctx.channel, 'chat:subs-claim');
      assert.deepEqual(payload(ctx.data), { welcome: true });
      const got: unknown[] = [];
      c.on('publication', (p) => got.push(payload(p.data)));
      await s.herald.publish('chat:subs-claim', { hi: 2 });
      await waitFor(() => got.length === 1, 'server-side publication');
    });

    test('the server API subscribes, unsubscribes and disconnects a user', async () => {
      const c = await client('managed');
      const subscribed = new Promise<{ channel: string }>((r) => c.once('subscribed', r));
      assert.equal((await api(s, 'subscribe', { user: 'managed', channel: 'chat:managed' })).status, 200);
      assert.equal((await subscribed).channel, 'chat:managed');
      const unsub = new Promise<{ channel: string }>((r) => c.once('unsubscribed', r));
      await api(s, 'unsubscribe', { user: 'managed', channel: 'chat:managed' });
      assert.equal((await unsub).channel, 'chat:managed');
      const disc = new Promise<{ code: number }>((r) => c.once('disconnected', r));
      await api(s, 'disconnect', { user: 'managed' });
      assert.equal((await disc).code, 3503);
    });

    test('unsubscribe and disconnect hooks see every subscription end', async () => {
      const events: string[] = [];
      const hooked = await startHerald({
        engineName,
        config,
        hooks: {
          onUnsubscribe: (ctx) => events.push(`unsub:${ctx.channel}:${ctx.reason}`),
          onDisconnect: (ctx) => events.push(`disc:${ctx.user}:${ctx.code}`),
        },
      });
      try {
        const c = await connectClient(hooked, 'hooky', encoding);
        const { sub } = await subscribe(c, 'chat:one');
        await subscribe(c, 'chat:two');
        sub.unsubscribe();
        await waitFor(() => events.includes('unsub:chat:one:client'), 'client unsubscribe hook');
        await hooked.herald.disconnectUser('hooky', { code: 4000, reason: 'bye' });
        await waitFor(() => events.includes('disc:hooky:4000'), 'disconnect hook');
        assert.ok(events.includes('unsub:chat:two:disconnect'));
        c.disconnect();
      } finally {
        await hooked.close();
      }
    });

    test('rpc answers 108 without a handler and the handler result with one', async () => {
      const c = await client('rpc');
      await assert.rejects(c.rpc('sum', wire(encoding, { a: 1 })), (e: { code: number }) => e.code === 108);
      const withRpc = await startHerald({
        engineName,
        hooks: { onRpc: ({ method, data }) => ({ method, echo: data }) },
      });
      try {
        const c2 = await connectClient(withRpc, 'rpc', encoding);
        const r = await c2.rpc('sum', wire(encoding, { a: 1 }));
        assert.deepEqual(payload(r.data), { method: 'sum', echo: { a: 1 } });
        c2.disconnect();
      } finally {
        await withRpc.close();
      }
    });

    test('send messages reach the onMessage hook and server messages reach the client', async () => {
      const got: unknown[] = [];
      const h = await startHerald({
        engineName,
        hooks: {
          onMessage: ({ data }) => {
            got.push(data);
          },
        },
      });
      try {
        const c = await connectClient(h, 'sender', encoding);
        await c.send(wire(encoding, { ping: 1 }));
        await waitFor(() => got.length === 1, 'onMessage');
        assert.deepEqual(got[0], { ping: 1 });
        c.disconnect();
      } finally {
        await h.close();
      }
    });

    test('an onPublish hook can refuse a publication and an onSubscribe hook can refuse a subscription', async () => {
      const { HeraldError } = await import('../../src/index.js');
      const h = await startHerald({
        engineName,
        config,
        hooks: {
          onPublish: ({ data }) => {
            if ((data as { bad?: boolean }).bad) throw new HeraldError(103, 'no bad words');
          },
          onSubscribe: ({ channel }) => {
            if (channel.endsWith('forbidden')) throw new HeraldError(103, 'not you');
            return { data: { welcome: true } };
          },
        },
      });
      try {
        const c = await connectClient(h, 'x', encoding);
        const sub = c.newSubscription('open:ok');
        const subscribed = new Promise<{ data?: unknown }>((r) => sub.once('subscribed', r));
        sub.subscribe();
        assert.deepEqual(payload((await subscribed).data), { welcome: true });
        await assert.rejects(
          c.publish('open:ok', wire(encoding, { bad: true })),
          (e: { code: number }) => e.code === 103,
        );
        await c.publish('open:ok', wire(encoding, { bad: false }));
        const f = c.newSubscription('open:forbidden');
        const err = refusal(f);
        f.subscribe();
        assert.equal(await err, 103);
        c.disconnect();
      } finally {
        await h.close();
      }
    });
  });
}
