/**
 * Map subscriptions (Centrifugo v6.8, docs/protocol.md#map-subscriptions) driven through the official SDK's
 * newMapSubscription / newMapClientsSubscription, and by hand (RawClient) where the SDK's timing cannot be steered.
 * Runs on every engine that has a map broker.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge } from 'centrifuge';
import { RawClient, api, newClient, payload, startHerald, waitFor, type TestServer } from '../support/herald.js';
import { REDIS_URL, dropPrefix, engineNames, uniquePrefix } from '../support/engines.js';

const mapConfig = {
  client: { insecure: true },
  channel: {
    namespaces: [
      {
        name: 'eph',
        subscription_type: 'map',
        map: { mode: 'ephemeral', key_ttl: '60s', allow_publish_for_client: true, allow_remove_for_client: true },
        allow_subscribe_for_client: true,
      },
      {
        name: 'paged',
        subscription_type: 'map',
        map: { mode: 'persistent', min_page_size: 1, allow_publish_for_client: true },
        allow_subscribe_for_client: true,
      },
      {
        name: 'pers',
        subscription_type: 'map',
        map: { mode: 'persistent', allow_publish_for_client: true, allow_remove_for_client: true },
        allow_subscribe_for_client: true,
      },
      {
        name: 'small',
        subscription_type: 'map',
        map: { mode: 'persistent', stream_size: 2, stream_ttl: '60s' },
        allow_subscribe_for_client: true,
      },
      {
        name: 'short',
        subscription_type: 'map',
        map: { mode: 'recoverable', key_ttl: '1s' },
        allow_subscribe_for_client: true,
      },
      {
        name: 'ephshort',
        subscription_type: 'map',
        map: { mode: 'ephemeral', key_ttl: '1s' },
        allow_subscribe_for_client: true,
      },
      {
        name: 'mine',
        subscription_type: 'map',
        map: { mode: 'ephemeral', key_ttl: '60s', client_key: 'client_id', allow_publish_for_subscriber: true },
        allow_subscribe_for_client: true,
      },
      {
        name: 'room',
        subscription_type: 'map',
        map_clients_presence_channel_prefix: 'who:',
        map: { mode: 'ephemeral', key_ttl: '60s' },
        allow_subscribe_for_client: true,
      },
      {
        name: 'who',
        subscription_type: 'map_clients',
        map: { mode: 'ephemeral', key_ttl: '60s' },
        allow_subscribe_for_client: true,
      },
      {
        name: 'tagged',
        subscription_type: 'map',
        map: { mode: 'persistent' },
        allow_tags_filter: true,
        allow_subscribe_for_client: true,
      },
      {
        name: 'dmap',
        subscription_type: 'map',
        map: { mode: 'persistent' },
        allowed_delta_types: ['fossil'],
        delta_publish: true,
        allow_subscribe_for_client: true,
      },
      {
        name: 'own',
        subscription_type: 'map',
        map: {
          mode: 'persistent',
          client_key: 'client_id',
          remove_client_on_unsubscribe: true,
          allow_publish_for_subscriber: true,
        },
        allow_subscribe_for_client: true,
      },
      {
        name: 'debounced',
        subscription_type: 'map',
        map: { mode: 'ephemeral', key_ttl: '60s' },
        client_publish_debounce_interval: '50ms',
        allow_subscribe_for_client: true,
      },
    ],
  },
};

interface Update {
  key: string;
  data?: unknown;
  removed?: boolean;
}

let seq = 0;
const channelIn = (ns: string) => `${ns}:m_${Date.now()}_${++seq}`;

for (const engineName of engineNames) {
  describe(`map subscriptions (${engineName} engine)`, () => {
    let s: TestServer;
    const clients: Centrifuge[] = [];
    before(async () => {
      s = await startHerald({ engineName, fileConfig: mapConfig });
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      await s.close();
    });

    const client = async (): Promise<Centrifuge> => {
      const c = newClient(s.wsUrl);
      clients.push(c);
      c.connect();
      await c.ready(5000);
      return c;
    };
    const mapPublish = async (channel: string, key: string, data: unknown, tags?: Record<string, string>) => {
      const r = await api(s, 'map_publish', { channel, key, data, ...(tags ? { tags } : {}) });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json.result as { offset: number; epoch: string; suppressed?: boolean };
    };
    const mapRemove = async (channel: string, key: string) => {
      const r = await api(s, 'map_remove', { channel, key });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json.result as { offset: number; epoch: string; suppressed?: boolean };
    };

    test('a map subscriber receives the whole state, then each publish and removal as an update', async () => {
      const channel = channelIn('eph');
      await mapPublish(channel, 'a', { v: 1 });
      await mapPublish(channel, 'b', { v: 2 });
      const c = await client();
      const sub = c.newMapSubscription(channel);
      const updates: Update[] = [];
      sub.on('update', (u) => updates.push({ key: u.key, data: u.data, removed: u.removed }));
      const synced = new Promise<{ key: string; data: unknown }[]>((r) => sub.once('sync', (ctx) => r(ctx.entries)));
      sub.subscribe();
      const entries = await synced;
      assert.deepEqual(entries.map((e) => [e.key, e.data]).sort(), [
        ['a', { v: 1 }],
        ['b', { v: 2 }],
      ]);
      await mapPublish(channel, 'a', { v: 3 });
      await mapRemove(channel, 'b');
      await waitFor(() => updates.length === 2, 'two updates');
      assert.deepEqual(updates, [
        { key: 'a', data: { v: 3 }, removed: undefined },
        { key: 'b', data: undefined, removed: true },
      ]);
      sub.unsubscribe();
    });

    test('the in-process API sets and removes keys like the HTTP API', async () => {
      const channel = channelIn('pers');
      const set = await s.herald.mapPublish(channel, 'k', { v: 1 }, { tags: { a: 'b' } });
      assert.equal(set.suppressed, false);
      const removed = await s.herald.mapRemove(channel, 'k');
      assert.deepEqual([removed.offset, removed.epoch, removed.suppressed], [set.offset + 1, set.epoch, false]);
      const again = await s.herald.mapRemove(channel, 'k');
      assert.deepEqual([again.offset, again.suppressed, again.suppressReason], [removed.offset, true, 'key_not_found']);
      await assert.rejects(s.herald.mapPublish('plain', 'k', 1), (err: { code?: number }) => err.code === 108);
    });

    test('map_remove of a key that is not there changes nothing and says so', async () => {
      const channel = channelIn('pers');
      const first = await mapPublish(channel, 'a', 1);
      const r = await mapRemove(channel, 'zzz');
      assert.equal(r.suppressed, true);
      assert.equal(r.offset, first.offset);
      const removed = await mapRemove(channel, 'a');
      assert.equal(removed.offset, first.offset + 1);
      assert.equal(removed.suppressed, undefined);
    });

    test('map_publish to a stream channel, a stream publish to a map channel and a server-side subscribe to a map channel are refused with 108', async () => {
      assert.equal((await api(s, 'map_publish', { channel: 'plain', key: 'k', data: 1 })).json.error?.code, 108);
      assert.equal((await api(s, 'publish', { channel: channelIn('pers'), data: 1 })).json.error?.code, 108);
      assert.equal((await api(s, 'subscribe', { user: 'u', channel: channelIn('pers') })).json.error?.code, 108);
    });

    test('a state over several pages arrives whole, and changes made between pages arrive exactly once', async () => {
      const channel = channelIn('paged');
      for (const k of ['k1', 'k2', 'k3', 'k4', 'k5']) await mapPublish(channel, k, { k, n: 0 });
      const raw = await RawClient.open(s.wsUrl);
      try {
        raw.send({ id: 1, connect: {} }, { id: 2, subscribe: { channel, type: 1, phase: 2, limit: 2 } });
        const p1 = (await raw.reply(2)).subscribe;
        assert.equal(p1.phase, 2);
        assert.deepEqual(
          p1.state.map((e: Update) => e.key),
          ['k1', 'k2'],
        );
        // Between pages: k4 (not yet read) and k1 (already read) change, k6 appears, k2 goes.
        await mapPublish(channel, 'k4', { k: 'k4', n: 1 });
        await mapPublish(channel, 'k1', { k: 'k1', n: 1 });
        await mapPublish(channel, 'k6', { k: 'k6', n: 1 });
        await mapRemove(channel, 'k2');
        const state = new Map<string, unknown>(p1.state.map((e: { key: string; data: unknown }) => [e.key, e.data]));
        let cursor = p1.cursor as string;
        let id = 3;
        let live: any;
        for (;;) {
          raw.send({
            id,
            subscribe: { channel, type: 1, phase: 2, limit: 2, cursor, offset: p1.offset, epoch: p1.epoch },
          });
          const page = (await raw.reply(id++)).subscribe;
          for (const e of page.state ?? []) state.set(e.key, e.data);
          if (!page.phase) {
            live = page;
            break;
          }
          cursor = page.cursor;
        }
        const offsets = (live.publications ?? []).map((p: { offset: number }) => p.offset);
        assert.deepEqual(offsets, [p1.offset + 1, p1.offset + 2, p1.offset + 3, p1.offset + 4]);
        for (const p of live.publications) {
          if (p.removed) state.delete(p.key);
          else state.set(p.key, p.data);
        }
        assert.deepEqual([...state.entries()].sort(), [
          ['k1', { k: 'k1', n: 1 }],
          ['k3', { k: 'k3', n: 0 }],
          ['k4', { k: 'k4', n: 1 }],
          ['k5', { k: 'k5', n: 0 }],
          ['k6', { k: 'k6', n: 1 }],
        ]);
        assert.equal(live.offset, p1.offset + 4);
        // Live now: the next change is pushed once.
        await mapPublish(channel, 'k7', 7);
        const push = await waitFor(() => raw.messages.find((m) => m.push?.pub?.key === 'k7'), 'the push of k7');
        assert.equal(push.push.pub.offset, p1.offset + 5);
      } finally {
        raw.close();
      }
    });

    test('a persistent map subscriber that reconnects recovers exactly the changes it missed, without a new sync', async () => {
      const channel = channelIn('pers');
      const c = await client();
      const sub = c.newMapSubscription(channel);
      const updates: Update[] = [];
      let syncs = 0;
      sub.on('sync', () => syncs++);
      sub.on('update', (u) => updates.push({ key: u.key, data: u.data, removed: u.removed }));
      sub.subscribe();
      await sub.ready(5000);
      await mapPublish(channel, 'before', 1);
      await waitFor(() => updates.length === 1, 'the first update');
      c.disconnect();
      await mapPublish(channel, 'during', 2);
      await mapRemove(channel, 'before');
      const resubscribed = new Promise<{ recovered: boolean }>((r) => sub.once('subscribed', r));
      c.connect();
      const ctx = await resubscribed;
      assert.equal(ctx.recovered, true);
      await waitFor(() => updates.length === 3, 'the missed updates');
      assert.deepEqual(updates.slice(1), [
        { key: 'during', data: 2, removed: undefined },
        { key: 'before', data: undefined, removed: true },
      ]);
      assert.equal(syncs, 1);
      sub.unsubscribe();
    });

    test('a position the stream no longer covers makes the subscriber start over from the whole state', async () => {
      const channel = channelIn('small');
      const c = await client();
      const sub = c.newMapSubscription(channel);
      const firstUpdate = new Promise((r) => sub.once('update', r));
      sub.subscribe();
      await sub.ready(5000);
      await mapPublish(channel, 'initial', 0);
      await firstUpdate;
      sub.unsubscribe();
      for (let i = 1; i <= 4; i++) await mapPublish(channel, `o${i}`, i);
      const resubscribed = new Promise<{ recovered: boolean }>((r) => sub.once('subscribed', r));
      const synced = new Promise<{ key: string }[]>((r) => sub.once('sync', (ctx) => r(ctx.entries)));
      sub.subscribe();
      assert.equal((await resubscribed).recovered, false);
      assert.deepEqual((await synced).map((e) => e.key).sort(), ['initial', 'o1', 'o2', 'o3', 'o4']);
      sub.unsubscribe();
    });

    for (const [ns, mode] of [
      ['short', 'recoverable'],
      ['ephshort', 'ephemeral'],
    ] as const)
      test(`a key not published again within its key_ttl is removed, and subscribers see the removal (${mode} map)`, async () => {
        const channel = channelIn(ns);
        const c = await client();
        const sub = c.newMapSubscription(channel);
        const updates: Update[] = [];
        sub.on('update', (u) => updates.push({ key: u.key, removed: u.removed }));
        sub.subscribe();
        await sub.ready(5000);
        const published = await mapPublish(channel, 'brief', 1);
        await waitFor(() => updates.length === 2, 'the removal by TTL', 5000);
        assert.deepEqual(updates, [
          { key: 'brief', removed: undefined },
          { key: 'brief', removed: true },
        ]);
        // The expiry is a change of the stream like a remove: the next offset.
        const again = await mapPublish(channel, 'brief', 2);
        assert.equal(again.offset, published.offset + 2);
      });

    test('with client_key "client_id" a client publish is stored under the client ID whatever key it sent', async () => {
      const channel = channelIn('mine');
      const c = await client();
      const clientId = await new Promise<string>((r) => {
        const id = (c as unknown as { _client: string | null })._client;
        if (id) r(id);
        else c.once('connected', (ctx) => r(ctx.client));
      });
      const sub = c.newMapSubscription(channel);
      const update = new Promise<Update>((r) => sub.once('update', (u) => r({ key: u.key, data: u.data })));
      sub.subscribe();
      await sub.ready(5000);
      await sub.publish('chosen', { x: 1 });
      assert.deepEqual(await update, { key: clientId, data: { x: 1 } });
      sub.unsubscribe();
    });

    test('with remove_client_on_unsubscribe the entry a client owns goes when it unsubscribes or disconnects', async () => {
      const channel = channelIn('own');
      const watcher = await client();
      const watch = watcher.newMapSubscription(channel);
      const updates: Update[] = [];
      watch.on('update', (u) => updates.push({ key: u.key, removed: u.removed }));
      watch.subscribe();
      await watch.ready(5000);
      const a = await client();
      const subA = a.newMapSubscription(channel);
      subA.subscribe();
      await subA.ready(5000);
      await subA.publish('ignored', { mine: true });
      const b = await client();
      const subB = b.newMapSubscription(channel);
      subB.subscribe();
      await subB.ready(5000);
      await subB.publish('ignored', { mine: true });
      await waitFor(() => updates.length === 2, 'both entries');
      const [keyA, keyB] = [updates[0]!.key, updates[1]!.key];
      subA.unsubscribe();
      b.disconnect();
      await waitFor(() => updates.length === 4, 'both removals');
      assert.deepEqual(
        updates.slice(2).sort((x, y) => (x.key < y.key ? -1 : 1)),
        [
          { key: keyA, removed: true },
          { key: keyB, removed: true },
        ].sort((x, y) => (x.key < y.key ? -1 : 1)),
      );
      watch.unsubscribe();
    });

    test('a client publish to a map_clients channel is refused with 108: Herald alone writes presence', async () => {
      const c = await client();
      await assert.rejects(c.mapPublish(channelIn('who'), 'k', 1), (err: { code?: number }) => err.code === 108);
    });

    test('a map subscription lists its client in the map_clients channel while it lasts', async () => {
      const channel = channelIn('room');
      const watcher = await client();
      const who = watcher.newMapClientsSubscription('who:' + channel);
      const updates: Update[] = [];
      who.on('update', (u) => updates.push({ key: u.key, removed: u.removed }));
      who.subscribe();
      await who.ready(5000);
      const member = await client();
      const sub = member.newMapSubscription(channel);
      sub.subscribe();
      await sub.ready(5000);
      await waitFor(() => updates.length === 1, 'the presence entry');
      const memberId = updates[0]!.key;
      assert.equal(updates[0]!.removed, undefined);
      sub.unsubscribe();
      await waitFor(() => updates.length === 2, 'the presence removal');
      assert.deepEqual(updates[1], { key: memberId, removed: true });
      who.unsubscribe();
    });

    test('a tags filter gives the subscriber only the entries and changes whose tags match', async () => {
      const channel = channelIn('tagged');
      await mapPublish(channel, 'e1', 1, { team: 'eng' });
      await mapPublish(channel, 's1', 2, { team: 'sales' });
      const c = await client();
      const sub = c.newMapSubscription(channel, { tagsFilter: { key: 'team', cmp: 'eq', val: 'eng' } });
      const updates: Update[] = [];
      sub.on('update', (u) => updates.push({ key: u.key }));
      const synced = new Promise<{ key: string }[]>((r) => sub.once('sync', (ctx) => r(ctx.entries)));
      sub.subscribe();
      assert.deepEqual(
        (await synced).map((e) => e.key),
        ['e1'],
      );
      await mapPublish(channel, 's2', 3, { team: 'sales' });
      await mapPublish(channel, 'e2', 4, { team: 'eng' });
      await waitFor(() => updates.length >= 1, 'the matching change');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(updates, [{ key: 'e2' }]);
      sub.unsubscribe();
    });

    test('in protobuf, a map subscriber with a nested tags filter gets the matching state and changes, and removals', async () => {
      const channel = channelIn('tagged');
      await mapPublish(channel, 'e1', { n: 1 }, { team: 'eng', lvl: '3' });
      await mapPublish(channel, 'e0', { n: 0 }, { team: 'eng', lvl: '1' });
      await mapPublish(channel, 'o1', { n: 2 }, { team: 'ops', lvl: '5' });
      await mapPublish(channel, 's1', { n: 3 }, { team: 'sales', lvl: '9' });
      const c = newClient(s.wsUrl, {}, 'protobuf');
      clients.push(c);
      c.connect();
      await c.ready(5000);
      const sub = c.newMapSubscription(channel, {
        tagsFilter: {
          op: 'and',
          nodes: [
            { key: 'team', cmp: 'in', vals: ['eng', 'ops'] },
            { op: 'not', nodes: [{ key: 'lvl', cmp: 'lt', val: '2' }] },
          ],
        },
      });
      const updates: Update[] = [];
      sub.on('update', (u) =>
        // A removal has no data: the protobuf build gives empty bytes.
        updates.push({ key: u.key, data: u.removed ? undefined : payload(u.data), removed: u.removed }),
      );
      const synced = new Promise<{ key: string; data: unknown }[]>((r) => sub.once('sync', (ctx) => r(ctx.entries)));
      sub.subscribe();
      assert.deepEqual((await synced).map((e) => [e.key, payload(e.data)]).sort(), [
        ['e1', { n: 1 }],
        ['o1', { n: 2 }],
      ]);
      await mapPublish(channel, 's2', { n: 4 }, { team: 'sales', lvl: '5' });
      await mapPublish(channel, 'o2', { n: 5 }, { team: 'ops', lvl: '7' });
      await mapRemove(channel, 'e1');
      await waitFor(() => updates.length >= 2, 'the matching change and removal');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(updates, [
        { key: 'o2', data: { n: 5 }, removed: undefined },
        { key: 'e1', data: undefined, removed: true },
      ]);
      sub.unsubscribe();
    });

    test('map subscribes left between two state pages count towards the channel limit', async () => {
      const limited = await startHerald({ engineName, fileConfig: mapConfig, env: { HERALD_CHANNEL_LIMIT: '2' } });
      const raw = await RawClient.open(limited.wsUrl);
      try {
        const channels = [channelIn('paged'), channelIn('paged'), channelIn('paged')];
        for (const ch of channels)
          for (const k of ['a', 'b']) await api(limited, 'map_publish', { channel: ch, key: k, data: 1 });
        raw.send(
          { id: 1, connect: {} },
          ...channels.map((channel, i) => ({ id: i + 2, subscribe: { channel, type: 1, phase: 2, limit: 1 } })),
        );
        assert.equal((await raw.reply(2)).subscribe?.phase, 2);
        assert.equal((await raw.reply(3)).subscribe?.phase, 2);
        assert.equal((await raw.reply(4)).error?.code, 106);
      } finally {
        raw.close();
        await limited.close();
      }
    });

    test('a tags filter on a namespace without allow_tags_filter is refused with 107', async () => {
      const raw = await RawClient.open(s.wsUrl);
      try {
        raw.send(
          { id: 1, connect: {} },
          {
            id: 2,
            subscribe: { channel: channelIn('pers'), type: 1, phase: 2, tf: { key: 'a', cmp: 'eq', val: 'b' } },
          },
        );
        assert.equal((await raw.reply(2)).error?.code, 107);
      } finally {
        raw.close();
      }
    });

    test("a fossil-delta map subscriber gets each change as a patch of its own key's value, from the state on", async () => {
      const channel = channelIn('dmap');
      const pad = (c: string) => c.repeat(400);
      await mapPublish(channel, 'a', { n: 1, pad: pad('a') });
      await mapPublish(channel, 'b', { n: 1, pad: pad('b') });
      const c = await client();
      const sub = c.newMapSubscription(channel, { delta: 'fossil' });
      const updates: Update[] = [];
      sub.on('update', (u) => updates.push({ key: u.key, data: u.data, removed: u.removed }));
      sub.subscribe();
      await sub.ready(5000);
      await mapPublish(channel, 'a', { n: 2, pad: pad('a') });
      await mapPublish(channel, 'b', { n: 2, pad: pad('b') });
      await mapPublish(channel, 'c', { n: 1, pad: pad('c') });
      await mapRemove(channel, 'a');
      await mapPublish(channel, 'a', { n: 3, pad: pad('a') });
      await waitFor(() => updates.length === 5, 'five updates');
      assert.deepEqual(updates, [
        { key: 'a', data: { n: 2, pad: pad('a') }, removed: undefined },
        { key: 'b', data: { n: 2, pad: pad('b') }, removed: undefined },
        { key: 'c', data: { n: 1, pad: pad('c') }, removed: undefined },
        { key: 'a', data: undefined, removed: true },
        { key: 'a', data: { n: 3, pad: pad('a') }, removed: undefined },
      ]);
      // The two state entries and c's first value and a's value after its removal are whole; a and b's changes patches.
      const stats = sub.deltaStats();
      assert.equal(stats.numDeltaPayloads, 2);
      assert.equal(stats.numFullPayloads, 4);
      sub.unsubscribe();
    });

    test('a map subscribe tells the SDK the namespace client_publish_debounce_interval', async () => {
      const raw = await RawClient.open(s.wsUrl);
      try {
        raw.send({ id: 1, connect: {} }, { id: 2, subscribe: { channel: channelIn('debounced'), type: 1, phase: 2 } });
        const r = (await raw.reply(2)).subscribe;
        assert.equal(r.publish_debounce, 50);
        assert.equal(r.type, 1);
        assert.equal(r.phase, undefined);
      } finally {
        raw.close();
      }
    });

    test('a stream subscribe to a map channel and a map subscribe to a stream channel are refused with 108', async () => {
      const raw = await RawClient.open(s.wsUrl);
      try {
        raw.send(
          { id: 1, connect: {} },
          { id: 2, subscribe: { channel: channelIn('pers') } },
          { id: 3, subscribe: { channel: 'plain', type: 1, phase: 2 } },
        );
        assert.equal((await raw.reply(2)).error?.code, 108);
        assert.equal((await raw.reply(3)).error?.code, 108);
      } finally {
        raw.close();
      }
    });
  });
}

test('a Redis engine chosen by configuration (HERALD_ENGINE=redis, as herald serve does) serves map subscriptions', async () => {
  const prefix = uniquePrefix('map-env');
  const s = await startHerald({
    env: { HERALD_ENGINE: 'redis', REDIS_URL, HERALD_REDIS_PREFIX: prefix },
    fileConfig: mapConfig,
  });
  const c = newClient(s.wsUrl);
  try {
    const channel = channelIn('pers');
    // The configured engine loads (a dynamic import) and connects before the node serves the API.
    await waitFor(async () => (await fetch(`${s.httpUrl}/ready`)).ok, 'the Redis engine ready');
    assert.equal((await api(s, 'map_publish', { channel, key: 'a', data: 1 })).status, 200);
    c.connect();
    const sub = c.newMapSubscription(channel);
    const synced = new Promise<{ key: string }[]>((r) => sub.once('sync', (ctx) => r(ctx.entries)));
    sub.subscribe();
    assert.deepEqual(
      (await synced).map((e) => e.key),
      ['a'],
    );
  } finally {
    c.disconnect();
    await s.close();
    await dropPrefix(prefix);
  }
});
