import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { api, mintToken, newClient, RawClient, startHerald, waitFor, type TestServer } from '../support/herald.js';
import { engineNames } from '../support/engines.js';
import { assertNoStack } from './common.js';

/**
 * docs/security.md, "Replies and inputs": every reply Herald builds for a client or the API has a byte budget
 * (HERALD_MAX_REPLY_SIZE, HERALD_API_MAX_REPLY_SIZE), big replies cost more in the command rate limit, a batch and a
 * broadcast have a size, and data nested deeper than HERALD_MAX_JSON_DEPTH is refused where it enters.
 */

const KB = 1024;
const open = {
  channel: {
    withoutNamespace: {
      allow_subscribe_for_client: true,
      allow_publish_for_client: true,
      allow_history_for_client: true,
      allow_presence_for_client: true,
      presence: true,
      allow_recovery: true,
      history_size: 200,
      history_ttl_ms: 300_000,
    },
  },
};

async function connected(s: TestServer, user = 'mallory'): Promise<RawClient> {
  const c = await RawClient.open(s.wsUrl);
  c.send({ id: 1, connect: { token: await mintToken({ sub: user }) } });
  const r = await c.reply(1);
  assert.ok(r.connect, JSON.stringify(r));
  return c;
}

/** Fills `channel` with `n` publications of about `size` bytes each, through the in-process API. */
async function fill(s: TestServer, channel: string, n: number, size: number): Promise<void> {
  const blob = 'x'.repeat(size);
  for (let i = 0; i < n; i++) await s.herald.publish(channel, { i, blob });
}

async function waitForIds(c: RawClient, ids: number[], timeoutMs = 10_000): Promise<any[]> {
  await waitFor(
    () => ids.every((id) => c.messages.some((m) => m.id === id)),
    `replies ${ids[0]}..${ids.at(-1)}`,
    timeoutMs,
  );
  return ids.map((id) => c.messages.find((m) => m.id === id));
}

for (const engineName of engineNames.filter((e) => e !== 'redis-sharded')) {
  describe(`client replies have a byte budget (${engineName} engine)`, { timeout: 120_000 }, () => {
    let s: TestServer;
    const ch = `big-${engineName}`;
    before(async () => {
      // 100 publications of 10 KB: 1 MB of history, four times the 256 KB a reply may take here.
      s = await startHerald({ engineName, config: open, env: { HERALD_MAX_REPLY_SIZE: String(256 * KB) } });
      await fill(s, ch, 100, 10 * KB);
    });
    after(() => s.close());

    test('150 history {limit: -1} commands in one frame each answer 106 without building the reply, and the connection stays usable', async () => {
      const c = await connected(s);
      const ids = Array.from({ length: 150 }, (_, i) => 10 + i);
      c.ws.send(ids.map((id) => JSON.stringify({ id, history: { channel: ch, limit: -1 } })).join('\n'));
      const replies = await waitForIds(c, ids);
      for (const r of replies) {
        assert.equal(r.error?.code, 106, JSON.stringify(r).slice(0, 200));
        assert.match(r.error.message, /HERALD_MAX_REPLY_SIZE/);
        assertNoStack(r.error.message, 'the 106 message');
      }
      c.send({ id: 500, history: { channel: ch, limit: 10 } });
      const page = await c.reply(500);
      assert.equal(page.history?.publications?.length, 10, 'a page that fits is answered');
      assert.equal(c.closeCode, undefined);
      c.close();
    });

    test('a recovering subscribe whose missed publications do not fit answers recovered: false at the current position; one that fits recovers', async () => {
      const c = await connected(s);
      c.send({ id: 2, history: { channel: ch, limit: 0 } });
      const top = (await c.reply(2)).history;
      c.send({ id: 3, subscribe: { channel: ch, recover: true, offset: 0, epoch: top.epoch } });
      const r = (await c.reply(3)).subscribe;
      assert.equal(r.was_recovering, true);
      assert.equal(r.recovered, false, 'told it missed publications instead of being sent 1 MB');
      assert.equal(r.publications, undefined);
      assert.equal(r.offset, top.offset);
      assert.equal(r.epoch, top.epoch);
      c.send({ id: 4, unsubscribe: { channel: ch } });
      await c.reply(4);
      c.send({ id: 5, subscribe: { channel: ch, recover: true, offset: top.offset - 3, epoch: top.epoch } });
      const ok = (await c.reply(5)).subscribe;
      assert.equal(ok.recovered, true);
      assert.deepEqual(
        ok.publications.map((p: any) => p.offset),
        [top.offset - 2, top.offset - 1, top.offset],
      );
      c.send({ id: 6, unsubscribe: { channel: ch } });
      await c.reply(6);
      // The "reject unrecovered" flag asks for 112 rather than recovered: false.
      c.send({ id: 7, subscribe: { channel: ch, recover: true, offset: 0, epoch: top.epoch, flag: 2 } });
      assert.equal((await c.reply(7)).error?.code, 112);
      c.close();
    });

    test('a connect recovering server-side subscriptions (channels claim) answers recovered: false for the one that does not fit', async () => {
      const probe = await connected(s);
      probe.send({ id: 2, history: { channel: ch, limit: 0 } });
      const top = (await probe.reply(2)).history;
      probe.close();
      const c = await RawClient.open(s.wsUrl);
      c.send({
        id: 1,
        connect: {
          token: await mintToken({ sub: 'server-side', channels: [ch] }),
          subs: { [ch]: { recover: true, offset: 0, epoch: top.epoch } },
        },
      });
      const sub = (await c.reply(1)).connect.subs[ch];
      assert.equal(sub.was_recovering, true);
      assert.equal(sub.recovered, false);
      assert.equal(sub.publications, undefined);
      assert.equal(sub.offset, top.offset);
      c.close();
    });

    test('the SDK subscribing with a position too far behind is told recovered: false and keeps its connection', async () => {
      const token = await mintToken({ sub: 'sdk-user' });
      const probe = await connected(s);
      probe.send({ id: 2, history: { channel: ch, limit: 0 } });
      const top = (await probe.reply(2)).history;
      probe.close();
      const client = newClient(s.wsUrl, { token });
      let connects = 0;
      client.on('connected', () => connects++);
      const sub = client.newSubscription(ch, { since: { offset: 1, epoch: top.epoch } });
      const subscribed = new Promise<any>((resolve) => sub.once('subscribed', resolve));
      const pubs: unknown[] = [];
      sub.on('publication', (p) => pubs.push(p));
      sub.subscribe();
      client.connect();
      const ctx = await subscribed;
      assert.equal(ctx.wasRecovering, true);
      assert.equal(ctx.recovered, false);
      assert.equal(pubs.length, 0);
      await s.herald.publish(ch, { after: true });
      await waitFor(() => pubs.length === 1, 'the next publication');
      assert.equal(connects, 1, 'no reconnect');
      client.disconnect();
    });

    test('presence larger than the budget answers 106 and presence_stats still counts the members', async () => {
      const pch = `crowd-${engineName}`;
      const info = JSON.stringify({
        name: 'member with a long display name',
        avatar: 'https://example.invalid/avatar/'.padEnd(60, 'a'),
      });
      for (let i = 0; i < 3000; i++) {
        await s.herald.engine.presence.addPresence(
          pch,
          { user: `u${i}`, client: `client-${i}-${'c'.repeat(20)}`, connInfo: info },
          60_000,
        );
      }
      const c = await connected(s);
      c.send({ id: 2, presence: { channel: pch } });
      const r = await c.reply(2);
      assert.equal(r.error?.code, 106, JSON.stringify(r).slice(0, 200));
      assert.match(r.error.message, /presence_stats/);
      c.send({ id: 3, presence_stats: { channel: pch } });
      assert.equal((await c.reply(3)).presence_stats.num_clients, 3000);
      c.close();
    });
  });
}

describe('big replies count for more in the command rate limit', { timeout: 60_000 }, () => {
  test('after one 450 KB history reply, the next commands of a 2-per-second connection answer 111 (three small ones would pass)', async () => {
    const s = await startHerald({
      config: open,
      env: { HERALD_COMMAND_RATE: '2', HERALD_MAX_REPLY_SIZE: String(600 * KB) },
    });
    try {
      await fill(s, 'rated', 45, 10 * KB);
      const c = await connected(s);
      // Burst 4: connect took 1. Three history commands in one frame.
      c.ws.send(
        [1, 2, 3].map((i) => JSON.stringify({ id: 10 + i, history: { channel: 'rated', limit: -1 } })).join('\n'),
      );
      const [a, b, d] = await waitForIds(c, [11, 12, 13]);
      assert.equal(a.history?.publications?.length, 45);
      assert.equal(b.error?.code, 111, 'the second costs more than what is left');
      assert.equal(d.error?.code, 111);
      assert.equal(c.closeCode, undefined, 'answered 111, not disconnected');
      c.close();
    } finally {
      await s.close();
    }
  });
});

describe('HTTP API bounds', { timeout: 120_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startHerald({
      config: open,
      env: {
        HERALD_API_MAX_REPLY_SIZE: String(1024 * KB),
        HERALD_API_MAX_BATCH: '60',
        HERALD_API_MAX_BROADCAST: '100',
      },
    });
    await fill(s, 'api-big', 20, 10 * KB);
  });
  after(() => s.close());

  for (const parallel of [false, true]) {
    test(`a ${parallel ? 'parallel' : 'sequential'} batch of 50 history {limit: -1} stops at HERALD_API_MAX_REPLY_SIZE: what fits is answered, the rest answers 106`, async () => {
      const commands = Array.from({ length: 50 }, () => ({ history: { channel: 'api-big', limit: -1 } }));
      const res = await fetch(`${s.httpUrl}/api/batch`, {
        method: 'POST',
        headers: { 'x-api-key': 'conformance-api-key' },
        body: JSON.stringify({ commands, parallel }),
      });
      const text = await res.text();
      assert.equal(res.status, 200);
      assert.ok(
        Buffer.byteLength(text) <= 1024 * KB + 50 * 300,
        `answer of ${Buffer.byteLength(text)} bytes stays near the 1 MiB budget`,
      );
      type BatchReply = { history?: { publications: unknown[] }; error?: { code: number; message: string } };
      const replies = (JSON.parse(text) as { result: { replies: BatchReply[] } }).result.replies;
      assert.equal(replies.length, 50);
      const answered = replies.filter((r) => r.history);
      const refused = replies.filter((r) => r.error);
      // Each reply is ~206 KB (20 x 10,275 bytes): five fit in 1 MiB with ~20 KB to spare, a sixth cannot.
      assert.equal(answered.length, 5);
      assert.equal(refused.length, 45);
      for (const r of answered) assert.equal(r.history?.publications.length, 20);
      for (const r of refused) {
        assert.equal(r.error?.code, 106);
        assert.match(r.error?.message ?? '', /HERALD_API_MAX_REPLY_SIZE/);
      }
    });
  }

  test('a batch of more than HERALD_API_MAX_BATCH commands is refused with 400 and runs none of them', async () => {
    const commands = Array.from({ length: 61 }, (_, i) => ({ publish: { channel: 'batch-count', data: { i } } }));
    const r = await api(s, 'batch', { commands });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /HERALD_API_MAX_BATCH/);
    const h = await api(s, 'history', { channel: 'batch-count', limit: -1 });
    assert.equal(h.json.result.publications.length, 0);
  });

  test('a broadcast to more than HERALD_API_MAX_BROADCAST channels is refused with 400 and publishes nothing', async () => {
    const channels = Array.from({ length: 101 }, (_, i) => `bc-${i}`);
    const r = await api(s, 'broadcast', { channels, data: { x: 1 } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /HERALD_API_MAX_BROADCAST/);
    const h = await api(s, 'history', { channel: 'bc-0', limit: -1 });
    assert.equal(h.json.result.publications.length, 0);
    const ok = await api(s, 'broadcast', { channels: channels.slice(0, 100), data: { x: 2 } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.result.responses.length, 100);
  });

  test('API presence larger than HERALD_API_MAX_REPLY_SIZE answers 106', async () => {
    const info = JSON.stringify({ bio: 'b'.repeat(400) });
    for (let i = 0; i < 3000; i++)
      await s.herald.engine.presence.addPresence(
        'api-crowd',
        { user: `u${i}`, client: `c${i}`, connInfo: info },
        60_000,
      );
    const r = await api(s, 'presence', { channel: 'api-crowd' });
    assert.equal(r.json.error?.code, 106, JSON.stringify(r.json).slice(0, 200));
    assert.equal((await api(s, 'presence_stats', { channel: 'api-crowd' })).json.result.num_clients, 3000);
  });

  test('the channels API refuses a pattern no channel name can match (400) and answers 1 MB of "*" at once', async () => {
    const long = await api(s, 'channels', { pattern: 'a*'.repeat(300) });
    assert.equal(long.status, 400);
    assert.match(long.json.error.message, /pattern/);
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: await mintToken({ sub: 'lister' }) } });
    await c.reply(1);
    c.send(
      ...Array.from({ length: 100 }, (_, i) => ({
        id: 10 + i,
        subscribe: { channel: `listed-${'a'.repeat(200)}-${i}` },
      })),
    );
    await waitForIds(
      c,
      Array.from({ length: 100 }, (_, i) => 10 + i),
    );
    const started = Date.now();
    const stars = await api(s, 'channels', { pattern: '*'.repeat(1_000_000) });
    const ms = Date.now() - started;
    assert.equal(stars.status, 200);
    assert.equal(Object.keys(stars.json.result.channels).filter((n) => n.startsWith('listed-')).length, 100);
    // Generous bound (measured: a few ms); the quadratic matcher took seconds here.
    assert.ok(ms < 3000, `answered in ${ms} ms`);
    const some = await api(s, 'channels', { pattern: `listed-*-${'*'.repeat(10)}7` });
    assert.deepEqual(
      Object.keys(some.json.result.channels).sort(),
      [7, 17, 27, 37, 47, 57, 67, 77, 87, 97].map((i) => `listed-${'a'.repeat(200)}-${i}`).sort(),
    );
    c.close();
  });
});

for (const engineName of engineNames.filter((e) => e !== 'redis-sharded')) {
  describe(`stream offsets are non-negative integers (${engineName} engine)`, { timeout: 60_000 }, () => {
    let s: TestServer;
    before(async () => {
      s = await startHerald({ engineName, config: open });
      await fill(s, 'offsets', 3, 10);
    });
    after(() => s.close());

    for (const [what, offset] of [
      ['1e300', 1e300],
      ['-1', -1],
      ['1.5', 1.5],
      ['"1"', '1'],
      ['2^53', 2 ** 53],
    ] as const) {
      test(`API history with since.offset ${what} answers 400 naming the field`, async () => {
        const r = await api(s, 'history', { channel: 'offsets', limit: -1, since: { offset, epoch: '' } });
        assert.equal(r.status, 400, JSON.stringify(r.json));
        assert.match(r.json.error.message, /since\.offset/);
        assertNoStack(r.json.error.message, 'the 400 message');
      });

      test(`client history and subscribe with offset ${what} answer 107`, async () => {
        const c = await connected(s);
        c.send({ id: 2, history: { channel: 'offsets', limit: -1, since: { offset, epoch: '' } } });
        assert.equal((await c.reply(2)).error?.code, 107);
        c.send({ id: 3, subscribe: { channel: 'offsets', recover: true, offset, epoch: '' } });
        assert.equal((await c.reply(3)).error?.code, 107);
        c.close();
      });
    }
  });
}

describe('JSON nesting depth (HERALD_MAX_JSON_DEPTH)', { timeout: 60_000 }, () => {
  const MAX_ERRORS = 5;
  let s: TestServer;
  const logged: string[] = [];
  before(async () => {
    const sink = new Writable({
      write(chunk, _e, cb) {
        logged.push(String(chunk));
        cb();
      },
    });
    s = await startHerald({
      config: open,
      logger: pino({ level: 'warn' }, sink),
      env: { HERALD_MAX_ERRORS: String(MAX_ERRORS) },
      hooks: { onRpc: ({ data }) => data, onMessage: () => {} },
    });
  });
  after(() => s.close());

  const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);

  test('publish, rpc, subscribe and send with data nested 30,000 deep each answer 107, nothing is logged, and they count towards 3509', async () => {
    const c = await connected(s);
    const d = deep(30_000); // 60 KB: under the 64 KB message limit
    c.send(`{"id":2,"publish":{"channel":"deep","data":${d}}}`);
    c.send(`{"id":3,"rpc":{"method":"m","data":${d}}}`);
    c.send(`{"id":4,"subscribe":{"channel":"deep2","data":${d}}}`);
    c.send(`{"send":{"data":${d}}}`);
    const [p, r, sub] = await waitForIds(c, [2, 3, 4]);
    for (const reply of [p, r, sub]) {
      assert.equal(reply.error?.code, 107, JSON.stringify(reply));
      assert.match(reply.error.message, /HERALD_MAX_JSON_DEPTH/);
    }
    await waitFor(() => c.messages.some((m) => m.error && m.id === undefined), 'the error for send');
    c.send({ id: 5, ping: {} });
    await c.reply(5);
    assert.equal(c.closeCode, undefined);
    c.send(`{"id":6,"publish":{"channel":"deep","data":${d}}}`); // the fifth bad command: still answered
    await c.reply(6);
    c.send(`{"id":7,"publish":{"channel":"deep","data":${d}}}`);
    assert.equal((await c.closed()).code, 3509);
    assert.equal(logged.filter((l) => l.includes('command failed')).length, 0, logged.join('\n').slice(0, 500));
  });

  test('connect data nested too deep answers 107 and the client can connect again', async () => {
    const c = await RawClient.open(s.wsUrl);
    c.send(`{"id":1,"connect":{"token":${JSON.stringify(await mintToken({ sub: 'deep' }))},"data":${deep(1000)}}}`);
    assert.equal((await c.reply(1)).error?.code, 107);
    c.send({ id: 2, connect: { token: await mintToken({ sub: 'deep' }) } });
    assert.ok((await c.reply(2)).connect);
    c.close();
  });

  test('data exactly 64 levels deep is published; 65 levels is refused', async () => {
    const c = await connected(s);
    c.send(`{"id":2,"publish":{"channel":"edge","data":${deep(64)}}}`);
    assert.deepEqual((await c.reply(2)).publish, {});
    c.send(
      `{"id":3,"publish":{"channel":"edge","data":{"s":"[[[[ brackets in strings do not count","a":${deep(63)}}}}`,
    );
    assert.deepEqual((await c.reply(3)).publish, {});
    c.send(`{"id":4,"publish":{"channel":"edge","data":${deep(65)}}}`);
    assert.equal((await c.reply(4)).error?.code, 107);
    c.close();
  });

  /** The body as text: JSON.stringify itself cannot serialize data this deep. */
  async function rawApi(method: string, body: string): Promise<{ status: number; json: any }> {
    const res = await fetch(`${s.httpUrl}/api/${method}`, {
      method: 'POST',
      headers: { 'x-api-key': 'conformance-api-key' },
      body,
    });
    return { status: res.status, json: await res.json() };
  }

  test('the HTTP API answers 400 naming HERALD_MAX_JSON_DEPTH for deep data in publish, broadcast and batch', async () => {
    const d = deep(30_000);
    for (const [method, body] of [
      ['publish', `{"channel":"deep","data":${d}}`],
      ['broadcast', `{"channels":["deep","deep2"],"data":${d}}`],
    ] as const) {
      const r = await rawApi(method, body);
      assert.equal(r.status, 400, `${method}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, /HERALD_MAX_JSON_DEPTH/);
    }
    const b = await rawApi(
      'batch',
      `{"commands":[{"publish":{"channel":"deep","data":${d}}},{"publish":{"channel":"deep","data":1}}]}`,
    );
    assert.equal(b.json.result.replies[0].error.code, 107);
    assert.match(b.json.result.replies[0].error.message, /HERALD_MAX_JSON_DEPTH/);
    assert.ok(b.json.result.replies[1].publish);
    await assert.rejects(s.herald.call('publish', { channel: 'deep', data: JSON.parse(d) }), /HERALD_MAX_JSON_DEPTH/);
  });

  test('the in-process herald.publish refuses data nested 30,000 deep with 107 naming HERALD_MAX_JSON_DEPTH', async () => {
    await assert.rejects(
      s.herald.publish('deep', JSON.parse(deep(30_000))),
      (err: any) => err.code === 107 && /HERALD_MAX_JSON_DEPTH/.test(err.message),
    );
  });
});
