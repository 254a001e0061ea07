import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge } from 'centrifuge';
import {
  RawClient,
  encodings,
  mintToken,
  newClient,
  payload,
  startHerald,
  waitFor,
  type Encoding,
  type TestServer,
} from '../support/herald.js';
import { Backend, status } from '../support/proxy-backend.js';
import { signSharedPollKeys } from '../../src/index.js';

/**
 * Shared poll subscriptions (docs/shared-poll.md) driven by the real SDK's newSharedPollSubscription over real
 * sockets, against a real HTTP refresh backend: what a client gets, when, and what the backend is asked.
 */

const POLL_SECRET = 'shared-poll-test-secret';

interface Item {
  data: unknown;
  version?: number;
  removed?: boolean;
}

function fileConfig(backend: Backend) {
  return {
    shared_poll: { hmac_secret_key: POLL_SECRET },
    channel: {
      proxy: { shared_poll_refresh: { endpoint: backend.url('/refresh'), timeout: '2s' } },
      namespaces: [
        {
          name: 'votes',
          subscription_type: 'shared_poll',
          shared_poll: { mode: 'versioned', refresh_interval: '100ms', max_keys_per_connection: 3 },
          allow_subscribe_for_client: true,
        },
        {
          name: 'scores',
          subscription_type: 'shared_poll',
          shared_poll: { refresh_interval: '100ms', channel_shutdown_delay: '100ms' },
          allow_subscribe_for_client: true,
        },
        {
          name: 'slow',
          subscription_type: 'shared_poll',
          shared_poll: { mode: 'versioned', refresh_interval: '1h' },
          allow_subscribe_for_client: true,
        },
        { name: 'stream', allow_subscribe_for_client: true },
      ],
    },
  };
}

function sign(user: string, channel: string, keys: readonly string[], ttlSec = 3600): string {
  const iat = Math.floor(Date.now() / 1000);
  return signSharedPollKeys(POLL_SECRET, { iat, exp: ttlSec === 0 ? 0 : iat + ttlSec, user, channel, keys });
}

interface Update {
  key: string;
  data: unknown;
  version: number;
  removed?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('shared poll subscriptions (memory engine)', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  /** The backend's data per channel and key. */
  const data = new Map<string, Map<string, Item>>();
  const clients: Centrifuge[] = [];
  let seq = 0;

  const put = (channel: string, key: string, item: Item) => {
    let m = data.get(channel);
    if (!m) data.set(channel, (m = new Map()));
    m.set(key, item);
  };
  /** Keys the backend was asked for, per channel, in order. */
  const asked = (channel: string): string[] =>
    backend.requests
      .filter((r) => r.path === '/refresh' && r.body.channel === channel)
      .flatMap((r) => (r.body.items as { key: string }[]).map((i) => i.key));

  before(async () => {
    backend = await Backend.start();
    backend.on('/refresh', (req) => {
      const body = req.body as { channel: string; items: { key: string; version?: number }[] };
      const m = data.get(body.channel) ?? new Map<string, Item>();
      const items = [];
      for (const { key } of body.items) {
        const it = m.get(key);
        if (it) items.push({ key, ...it });
      }
      return { result: { items } };
    });
    s = await startHerald({ engineName: 'memory', fileConfig: fileConfig(backend) });
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await s?.close();
    await backend?.close();
  });

  beforeEach(() => {
    backend.requests.length = 0;
  });

  async function client(encoding: Encoding = 'json', user = 'u1'): Promise<Centrifuge> {
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) }, encoding);
    clients.push(c);
    c.connect();
    await c.ready(5000);
    return c;
  }

  function channel(ns: string): string {
    return `${ns}:t${++seq}`;
  }

  /** A shared poll subscription signing with the backend's key, subscribed, and the updates it receives. */
  async function pollSub(c: Centrifuge, ch: string, user = 'u1') {
    const sub = c.newSharedPollSubscription(ch, {
      getSignature: async (ctx) => ({ keys: ctx.keys, signature: sign(user, ch, ctx.keys) }),
    });
    const updates: Update[] = [];
    sub.on('update', (ctx) =>
      updates.push({ key: ctx.key, data: payload(ctx.data), version: ctx.version, removed: ctx.removed || undefined }),
    );
    sub.subscribe();
    await sub.ready(5000);
    return { sub, updates };
  }

  for (const encoding of encodings) {
    test(`a client tracking signed keys gets their data, then each newer version once (${encoding})`, async () => {
      const c = await client(encoding);
      const ch = channel('votes');
      put(ch, 'a', { data: { votes: 1 }, version: 1 });
      put(ch, 'b', { data: { votes: 7 }, version: 3 });
      const { sub, updates } = await pollSub(c, ch);
      sub.track(['a', 'b']);
      await waitFor(() => updates.length >= 2, 'the first data of a and b');
      assert.deepEqual(
        [...updates].sort((x, y) => x.key.localeCompare(y.key)),
        [
          { key: 'a', data: { votes: 1 }, version: 1, removed: undefined },
          { key: 'b', data: { votes: 7 }, version: 3, removed: undefined },
        ],
      );
      put(ch, 'a', { data: { votes: 2 }, version: 2 });
      await waitFor(() => updates.length >= 3, 'a at version 2');
      // Several more polls answer the same versions: nothing more is sent.
      const polls = asked(ch).length;
      await waitFor(() => asked(ch).length >= polls + 3, 'three more polls');
      assert.deepEqual(updates.slice(2), [{ key: 'a', data: { votes: 2 }, version: 2, removed: undefined }]);
      sub.unsubscribe();
    });
  }

  test('a key already held at the version the backend answers is not sent again', async () => {
    const c = await client();
    const ch = channel('votes');
    put(ch, 'k', { data: { v: 5 }, version: 5 });
    const { sub, updates } = await pollSub(c, ch);
    sub.track([{ key: 'k', version: 5 }], sign('u1', ch, ['k']));
    await waitFor(() => asked(ch).length >= 3, 'three polls of k');
    assert.deepEqual(updates, []);
    put(ch, 'k', { data: { v: 6 }, version: 6 });
    await waitFor(() => updates.length === 1, 'k at version 6');
    assert.deepEqual(updates, [{ key: 'k', data: { v: 6 }, version: 6, removed: undefined }]);
  });

  test("a second client tracking a key gets this node's data in the track reply, without a poll", async () => {
    const ch = channel('slow');
    put(ch, 'cfg', { data: { theme: 'dark' }, version: 4 });
    const a = await pollSub(await client('json', 'ua'), ch, 'ua');
    a.sub.track(['cfg']);
    // The first tracker's key is cold: polled at once rather than after the hour-long interval.
    await waitFor(() => a.updates.length === 1, 'the cold key polled at once');
    assert.deepEqual(asked(ch), ['cfg']);
    const b = await pollSub(await client('json', 'ub'), ch, 'ub');
    b.sub.track(['cfg']);
    await waitFor(() => b.updates.length === 1, "the second client's data");
    assert.deepEqual(b.updates, [{ key: 'cfg', data: { theme: 'dark' }, version: 4, removed: undefined }]);
    assert.deepEqual(asked(ch), ['cfg'], 'the backend was asked once for both clients');
  });

  test('versionless mode numbers changes itself: the same data answered again is not an update', async () => {
    const c = await client();
    const ch = channel('scores');
    put(ch, 'x', { data: { score: 1 } });
    const { sub, updates } = await pollSub(c, ch);
    sub.track(['x']);
    await waitFor(() => updates.length === 1, 'the first data of x');
    const first = updates[0]!;
    assert.ok(first.version > 0, 'a version Herald numbered');
    await waitFor(() => asked(ch).length >= 4, 'more polls with the same data');
    assert.equal(updates.length, 1);
    put(ch, 'x', { data: { score: 2 } });
    await waitFor(() => updates.length === 2, 'the changed data');
    assert.deepEqual(updates[1], { key: 'x', data: { score: 2 }, version: first.version + 1, removed: undefined });
  });

  test('a key the backend removes is a removal for its trackers and is no longer polled', async () => {
    const c = await client();
    const ch = channel('scores');
    put(ch, 'gone', { data: { n: 1 } });
    put(ch, 'stays', { data: { n: 2 } });
    const { sub, updates } = await pollSub(c, ch);
    sub.track(['gone', 'stays']);
    await waitFor(() => updates.length === 2, 'both keys');
    put(ch, 'gone', { data: null, removed: true });
    await waitFor(() => updates.some((u) => u.removed), 'the removal');
    assert.deepEqual(
      updates.filter((u) => u.key === 'gone').map((u) => u.removed ?? false),
      [false, true],
    );
    backend.requests.length = 0;
    await waitFor(() => asked(ch).length >= 3, 'three more polls');
    assert.deepEqual([...new Set(asked(ch))], ['stays']);
    assert.equal(sub.trackedKeys().has('gone'), false);
  });

  test('a backend that fails keeps the last data; the next change after it recovers arrives', async () => {
    const c = await client();
    const ch = channel('votes');
    put(ch, 'p', { data: { price: 10 }, version: 1 });
    const { sub, updates } = await pollSub(c, ch);
    sub.track(['p']);
    await waitFor(() => updates.length === 1, 'the first price');
    // The backend answers 503 for a while (its handler replaced), then recovers with a newer version.
    let down = true;
    const ok = (req: { body: { channel: string; items: { key: string }[] } }) => {
      const m = data.get(req.body.channel) ?? new Map<string, Item>();
      return { result: { items: req.body.items.flatMap(({ key }) => (m.has(key) ? [{ key, ...m.get(key) }] : [])) } };
    };
    backend.on('/refresh', (req) => (down ? status(503) : ok(req as never)));
    const before = asked(ch).length;
    await waitFor(() => asked(ch).length >= before + 3, 'three failed polls');
    assert.equal(updates.length, 1);
    put(ch, 'p', { data: { price: 11 }, version: 2 });
    down = false;
    await waitFor(() => updates.length === 2, 'the price after the backend recovered');
    assert.deepEqual(updates[1], { key: 'p', data: { price: 11 }, version: 2, removed: undefined });
    backend.on('/refresh', (req) => ok(req as never));
  });

  test('a disconnected client is no longer polled for once the channel shuts down', async () => {
    const c = await client();
    const ch = channel('scores');
    put(ch, 'q', { data: { n: 1 } });
    const { sub, updates } = await pollSub(c, ch);
    sub.track(['q']);
    await waitFor(() => updates.length === 1, 'q');
    c.disconnect();
    await sleep(400);
    const n = asked(ch).length;
    await sleep(400);
    assert.equal(asked(ch).length, n, 'no poll for a channel nobody is subscribed to');
  });

  describe('the track command, by hand', () => {
    async function subscribed(ch: string): Promise<RawClient> {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: await mintToken({ sub: 'u1' }) } });
      await raw.reply(1);
      raw.send({ id: 2, subscribe: { channel: ch, type: 4 } });
      const r = await raw.reply(2);
      assert.equal(r.subscribe.type, 4);
      return raw;
    }

    test('a signature made for other keys, another user or another channel is refused with 103', async () => {
      const ch = channel('votes');
      const raw = await subscribed(ch);
      const cases = [sign('u1', ch, ['other']), sign('u2', ch, ['k']), sign('u1', channel('votes'), ['k']), 'junk'];
      let id = 10;
      for (const signature of cases) {
        raw.send({ id: ++id, sub_refresh: { channel: ch, type: 1, track: [{ signature, items: [{ key: 'k' }] }] } });
        const r = await raw.reply(id);
        assert.equal(r.error?.code, 103, `signature ${signature.slice(0, 20)}…`);
      }
      raw.close();
    });

    test('an expired signature is 109 (the SDK gets a new one); the keys are signed in the order sent', async () => {
      const ch = channel('votes');
      const raw = await subscribed(ch);
      const iat = Math.floor(Date.now() / 1000) - 3600;
      const expired = signSharedPollKeys(POLL_SECRET, { iat, exp: iat + 60, user: 'u1', channel: ch, keys: ['k'] });
      raw.send({
        id: 3,
        sub_refresh: { channel: ch, type: 1, track: [{ signature: expired, items: [{ key: 'k' }] }] },
      });
      assert.equal((await raw.reply(3)).error?.code, 109);
      const reversed = sign('u1', ch, ['b', 'a']);
      raw.send({
        id: 4,
        sub_refresh: { channel: ch, type: 1, track: [{ signature: reversed, items: [{ key: 'a' }, { key: 'b' }] }] },
      });
      assert.equal((await raw.reply(4)).error?.code, 103);
      raw.send({
        id: 5,
        sub_refresh: { channel: ch, type: 1, track: [{ signature: reversed, items: [{ key: 'b' }, { key: 'a' }] }] },
      });
      const ok = await raw.reply(5);
      assert.equal(ok.error, undefined);
      assert.equal(ok.sub_refresh.expires, true);
      assert.ok(ok.sub_refresh.ttl > 3500 && ok.sub_refresh.ttl <= 3600);
      raw.close();
    });

    test('more keys than max_keys_per_connection is 106 and tracks none of them', async () => {
      const ch = channel('votes');
      put(ch, 'k1', { data: 1, version: 1 });
      const raw = await subscribed(ch);
      const keys = ['k1', 'k2', 'k3', 'k4'];
      raw.send({
        id: 3,
        sub_refresh: {
          channel: ch,
          type: 1,
          track: [{ signature: sign('u1', ch, keys), items: keys.map((key) => ({ key })) }],
        },
      });
      const r = await raw.reply(3);
      assert.equal(r.error?.code, 106);
      assert.match(r.error.message, /max_keys_per_connection/);
      await sleep(300);
      assert.deepEqual(asked(ch), [], 'nothing tracked, nothing polled');
      raw.close();
    });

    test('track on a stream channel is 107, on a channel not subscribed 103, and malformed batches 107', async () => {
      const raw = await subscribed(channel('votes'));
      raw.send({ id: 3, subscribe: { channel: 'stream:s' } });
      await raw.reply(3);
      const sig = sign('u1', 'stream:s', ['k']);
      raw.send({
        id: 4,
        sub_refresh: { channel: 'stream:s', type: 1, track: [{ signature: sig, items: [{ key: 'k' }] }] },
      });
      assert.equal((await raw.reply(4)).error?.code, 107);
      raw.send({
        id: 5,
        sub_refresh: { channel: 'votes:none', type: 1, track: [{ signature: sig, items: [{ key: 'k' }] }] },
      });
      assert.equal((await raw.reply(5)).error?.code, 103);
      for (const [id, track] of [
        [6, 'not an array'],
        [7, [{ signature: sig, items: [] }]],
        [8, [{ signature: sig, items: [{ key: '' }] }]],
        [9, [{ signature: sig, items: [{ key: 'k', version: -1 }] }]],
        [10, [{ signature: sig, items: [{ key: 'x'.repeat(1025) }] }]],
      ] as const) {
        raw.send({ id, sub_refresh: { channel: 'votes:none', type: 1, track } });
        assert.equal((await raw.reply(id)).error?.code, 107, `track ${JSON.stringify(track).slice(0, 60)}`);
      }
      assert.equal(raw.closeCode, undefined, 'bad input is an error reply, not a closed connection');
      raw.close();
    });
  });
});
