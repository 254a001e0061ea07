// Resource limits beyond the single-client checks in packages/server/test/conformance/limits.test.ts: the per-IP
// connection limit, and for every limit that the offender alone is refused, everyone else keeps working, the slot
// is given back when the offender leaves, and the server keeps serving.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RawClient,
  api,
  mintToken,
  startHerald,
  waitFor,
  type TestServer,
} from '../../packages/server/test/support/herald.js';
import { rawUpgrade } from './support/raw-ws.js';

const open = { channel: { withoutNamespace: { allow_subscribe_for_client: true } } };

async function connected(s: TestServer, user: string, localAddress = '127.0.0.1'): Promise<RawClient> {
  const raw = await RawClient.open(s.wsUrl, { localAddress });
  raw.send({ id: 1, connect: { token: await mintToken({ sub: user }) } });
  const r = await raw.reply(1);
  assert.ok(r.connect, `connected: ${JSON.stringify(r)}`);
  return raw;
}

let nextId = 1000;
/** Subscribes `clients` to `channel`, publishes once through the API, and checks each of them received it. */
async function allReceive(s: TestServer, clients: RawClient[], channel: string): Promise<void> {
  for (const c of clients) {
    const id = nextId++;
    c.send({ id, subscribe: { channel } });
    assert.deepEqual((await c.reply(id)).subscribe, {}, 'subscribed');
  }
  const marker = nextId++;
  assert.equal((await api(s, 'publish', { channel, data: { marker } })).status, 200);
  for (const c of clients)
    await waitFor(
      () => c.messages.some((m) => m.push?.channel === channel && m.push.pub?.data?.marker === marker),
      `publication on ${channel}`,
    );
}

async function healthy(s: TestServer): Promise<void> {
  assert.equal((await fetch(`${s.httpUrl}/health`)).status, 200);
}

describe('per-IP connection limit', () => {
  let s: TestServer;
  before(async () => (s = await startHerald({ env: { HERALD_IP_CONNECTION_LIMIT: '3' }, config: open })));
  after(() => s.close());

  test('an IP over the limit gets 429 before the upgrade; other IPs and the connections already open are unaffected; a closed connection frees its slot', async () => {
    const mine = [await connected(s, 'a'), await connected(s, 'b'), await connected(s, 'c')];
    const refusals = [];
    for (let i = 0; i < 20; i++) refusals.push(await rawUpgrade(s.port, { localAddress: '127.0.0.1' }));
    for (const r of refusals) {
      assert.equal(r.status, 429);
      await r.closed;
    }
    assert.match(refusals[0]!.socket.readyState, /closed/);
    // Another address on the same machine is a different client IP.
    const other = await connected(s, 'd', '127.0.0.2');
    await allReceive(s, [...mine, other], 'ip-news');
    await healthy(s);
    // 20 refusals did not use up slots: closing one connection lets exactly one more in.
    mine[0]!.close();
    await waitFor(() => s.herald.connectionCount === 3, 'the closed connection released');
    const again = await connected(s, 'e');
    const over = await rawUpgrade(s.port, { localAddress: '127.0.0.1' });
    assert.equal(over.status, 429);
    over.socket.destroy();
    for (const c of [...mine.slice(1), other, again]) c.close();
  });
});

describe('per-user connection limit', () => {
  let s: TestServer;
  before(async () => (s = await startHerald({ env: { HERALD_USER_CONNECTION_LIMIT: '2' }, config: open })));
  after(() => s.close());

  test('a user over the limit is closed with 3504 while their open connections and other users keep working; leaving frees a slot', async () => {
    const first = [await connected(s, 'lim'), await connected(s, 'lim')];
    const others = [await connected(s, 'someone'), await connected(s, 'someone')];
    for (let i = 0; i < 5; i++) {
      const extra = await RawClient.open(s.wsUrl);
      extra.send({ id: 1, connect: { token: await mintToken({ sub: 'lim' }) } });
      assert.equal((await extra.closed()).code, 3504);
    }
    await allReceive(s, [...first, ...others], 'user-news');
    assert.equal(first.concat(others).filter((c) => c.closeCode !== undefined).length, 0, 'nobody else was closed');
    await healthy(s);
    first[0]!.close();
    await waitFor(() => s.herald.connectionCount === 3, 'the closed connection released');
    const again = await connected(s, 'lim');
    await allReceive(s, [first[1]!, again], 'user-news-2');
    for (const c of [first[1]!, again, ...others]) c.close();
  });
});

describe('channel limit', () => {
  let s: TestServer;
  before(async () => (s = await startHerald({ env: { HERALD_CHANNEL_LIMIT: '3' }, config: open })));
  after(() => s.close());

  test('a subscribe past the limit gets 106 and nothing else: the connection and its subscriptions stay, another connection is unaffected, and an unsubscribe frees a slot', async () => {
    const c = await connected(s, 'chan');
    const other = await connected(s, 'other');
    c.send(
      { id: 2, subscribe: { channel: 'c1' } },
      { id: 3, subscribe: { channel: 'c2' } },
      { id: 4, subscribe: { channel: 'c3' } },
    );
    for (const id of [2, 3, 4]) assert.deepEqual((await c.reply(id)).subscribe, {});
    for (let i = 0; i < 10; i++) {
      c.send({ id: 10 + i, subscribe: { channel: `over${i}` } });
      assert.equal((await c.reply(10 + i)).error.code, 106);
    }
    assert.equal(c.closeCode, undefined, 'the connection stays open');
    other.send(
      { id: 2, subscribe: { channel: 'c1' } },
      { id: 3, subscribe: { channel: 'o2' } },
      { id: 4, subscribe: { channel: 'o3' } },
    );
    for (const id of [2, 3, 4]) assert.deepEqual((await other.reply(id)).subscribe, {});
    assert.equal((await api(s, 'publish', { channel: 'c1', data: { k: 1 } })).status, 200);
    for (const x of [c, other])
      await waitFor(
        () => x.messages.some((m) => m.push?.channel === 'c1' && m.push.pub?.data?.k === 1),
        'c1 publication',
      );
    c.send({ id: 30, unsubscribe: { channel: 'c2' } });
    await c.reply(30);
    c.send({ id: 31, subscribe: { channel: 'c4' } });
    assert.deepEqual((await c.reply(31)).subscribe, {}, 'an unsubscribe frees a slot');
    c.send({ id: 32, subscribe: { channel: 'c5' } });
    assert.equal((await c.reply(32)).error.code, 106, 'and only one');
    await healthy(s);
    c.close();
    other.close();
  });
});

describe('command rate limit', () => {
  let s: TestServer;
  // Presence on, so presence_stats succeeds and any error the calm connection sees can only come from the limiter.
  before(
    async () =>
      (s = await startHerald({
        env: { HERALD_COMMAND_RATE: '20' },
        config: {
          channel: {
            withoutNamespace: { allow_subscribe_for_client: true, presence: true, allow_presence_for_client: true },
          },
        },
      })),
  );
  after(() => s.close());

  test('a flooding connection is closed with 3013 while another connection of the same user and IP keeps getting every reply without 111', async () => {
    const flooder = await connected(s, 'same');
    const calm = await connected(s, 'same');
    let calmId = 100;
    const calmReplies: any[] = [];
    const calmLoop = (async () => {
      // 10 commands a second (half the limit) for 2 s, across the flood and after it.
      while (calmId < 120) {
        const id = calmId++;
        calm.send({ id, presence_stats: { channel: 'flood' } });
        calmReplies.push(await calm.reply(id));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let id = 2;
    while (flooder.closeCode === undefined && id < 5000) {
      flooder.send(...Array.from({ length: 50 }, () => ({ id: id++, presence_stats: { channel: 'flood' } })));
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal((await flooder.closed()).code, 3013);
    assert.ok(
      flooder.messages.some((m) => m.error?.code === 111),
      'the flooder was told 111 first',
    );
    await calmLoop;
    assert.ok(calmReplies.length > 0);
    assert.deepEqual(
      calmReplies.filter((r) => r.error),
      [],
      'the calm connection got no error',
    );
    assert.equal(calm.closeCode, undefined);
    await allReceive(s, [calm], 'rate-news');
    await healthy(s);
    calm.close();
  });
});
