import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { api, mintToken, RawClient, SECRET, startHerald, type TestServer } from '../support/herald.js';
import { createMemoryEngine } from '../../src/engine/memory/index.js';
import type { Engine } from '../../src/engine/engine.js';
import { channelNameProblem, MAX_CHANNEL_LENGTH } from '../../src/channels/name.js';
import { assertNoStack, securityChannels } from './common.js';

/**
 * docs/security.md, "Auth and authorization": hostile channel names never reach an engine, and other users'
 * private and user-limited channels stay closed. The engine is the memory engine wrapped so that every call that
 * names a channel is recorded.
 */
export function recordingEngine(): { engine: Engine; channels: Set<string> } {
  const inner = createMemoryEngine();
  const channels = new Set<string>();
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (typeof args[0] === 'string') channels.add(args[0]);
          return (v as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  const engine: Engine = {
    name: inner.name,
    broker: wrap(inner.broker),
    history: wrap(inner.history),
    presence: wrap(inner.presence),
    isReady: () => inner.isReady(),
    close: () => inner.close(),
  };
  return { engine, channels };
}

const HOSTILE_NAMES: [string, string][] = [
  ['a glob star', 'news*'],
  ['a question mark', 'news?'],
  ['a bracket class', 'news[abc]'],
  ['a brace alternation', 'news{a,b}'],
  ['a Redis pattern', '*'],
  ['a traversal', 'chat:../../admin'],
  ['a double dot', 'a..b'],
  ['a NUL byte', 'news\u0000admin'],
  ['a newline', 'news\nadmin'],
  ['an empty name', ''],
  ['256 characters', 'x'.repeat(MAX_CHANNEL_LENGTH + 1)],
  ['5 KB', 'y'.repeat(5000)],
  ['a lone surrogate', 'news\ud800'],
  ['a Unicode line separator', 'news\u2028admin'],
  ['a backslash', 'news\\admin'],
];

describe("channel names and other users' channels", { timeout: 60_000 }, () => {
  let s: TestServer;
  let rec: ReturnType<typeof recordingEngine>;
  let mallory: RawClient;
  before(async () => {
    rec = recordingEngine();
    s = await startHerald({
      engine: rec.engine,
      config: securityChannels,
      env: { HERALD_MAX_ERRORS: '100000', HERALD_COMMAND_RATE: '0', HERALD_MAX_MESSAGE_SIZE: String(1 << 20) },
    });
    mallory = await RawClient.open(s.wsUrl);
    mallory.send({ id: 1, connect: { token: await mintToken({ sub: 'mallory' }) } });
    await mallory.reply(1);
  });
  after(async () => {
    mallory.close();
    await s.close();
  });

  let nextId = 100;
  async function ask(method: string, params: Record<string, unknown>): Promise<any> {
    const id = nextId++;
    mallory.send({ id, [method]: params });
    return mallory.reply(id);
  }

  test('the recording engine sees channel names (the proof below depends on it)', async () => {
    assert.equal((await ask('subscribe', { channel: 'visible' })).error, undefined);
    assert.ok(rec.channels.has('visible'), [...rec.channels].join(','));
  });

  for (const [what, name] of HOSTILE_NAMES) {
    test(`a channel name with ${what} is refused with 107 by subscribe, publish, history, presence and the HTTP API, and reaches no engine`, async () => {
      for (const method of ['subscribe', 'publish', 'history', 'presence', 'presence_stats', 'sub_refresh']) {
        const params: Record<string, unknown> = { channel: name };
        if (method === 'publish') params.data = { x: 1 };
        if (method === 'sub_refresh') params.token = 'x';
        const r = await ask(method, params);
        assert.equal(r.error?.code, 107, `${method}: ${JSON.stringify(r)}`);
        assertNoStack(JSON.stringify(r), 'the error reply');
      }
      for (const method of [
        'publish',
        'history',
        'presence',
        'presence_stats',
        'subscribe',
        'unsubscribe',
        'history_remove',
      ]) {
        const r = await api(s, method, { channel: name, data: { x: 1 }, user: 'mallory' });
        assert.equal(r.status, 400, `API ${method}: ${JSON.stringify(r.json)}`);
      }
      const b = await api(s, 'broadcast', { channels: ['ok-channel', name], data: { x: 1 } });
      assert.ok(b.status === 400 || JSON.stringify(b.json).includes('107'), JSON.stringify(b.json));
      // Unsubscribing from a channel one never had is a no-op answered {} (as Centrifugo does); it touches no engine.
      assert.equal((await ask('unsubscribe', { channel: name })).error?.code ?? 0, 0);
      assert.equal(rec.channels.has(name), false, 'the engine never saw the name');
      // Nor any channel the validator refuses.
      for (const seen of rec.channels)
        assert.equal(channelNameProblem(seen), undefined, `the engine saw invalid ${JSON.stringify(seen)}`);
    });
  }

  test('property: for any string, a subscribe or API publish is refused with 107 exactly when the validator refuses it, and the engine sees only valid names', async () => {
    const alphabet = fc.constantFrom(...'ab:#,.-_*?[]{}"\'\\<>` \u0000\n\u2028\ud800\udc00é😀'.split(''));
    const nameArb = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: alphabet, maxLength: 20 }),
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.constant('z'.repeat(256)),
    );
    await fc.assert(
      fc.asyncProperty(nameArb, async (name) => {
        const invalid = channelNameProblem(name) !== undefined;
        const r = await ask('subscribe', { channel: name });
        if (invalid) assert.equal(r.error?.code, 107, JSON.stringify(r));
        else {
          assert.notEqual(r.error?.code, 107, `valid ${JSON.stringify(name)} refused: ${JSON.stringify(r)}`);
          if (!r.error) await ask('unsubscribe', { channel: name });
        }
        const p = await api(s, 'publish', { channel: name, data: 1 });
        assert.equal(
          p.status === 400,
          invalid,
          `API publish ${JSON.stringify(name)}: ${p.status} ${JSON.stringify(p.json)}`,
        );
        for (const seen of rec.channels)
          assert.equal(channelNameProblem(seen), undefined, `the engine saw invalid ${JSON.stringify(seen)}`);
      }),
      { numRuns: 150 },
    );
  });
});

describe("another user's private and user-limited channels", { timeout: 60_000 }, () => {
  let s: TestServer;
  let alice: RawClient;
  let mallory: RawClient;
  before(async () => {
    s = await startHerald({ config: securityChannels });
    alice = await RawClient.open(s.wsUrl);
    alice.send({ id: 1, connect: { token: await mintToken({ sub: 'alice' }) } });
    await alice.reply(1);
    const { SignJWT } = await import('jose');
    const subToken = await new SignJWT({ sub: 'alice', channel: 'priv:alice-inbox' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(SECRET));
    alice.send(
      { id: 2, subscribe: { channel: 'priv:alice-inbox', token: subToken } },
      { id: 3, subscribe: { channel: 'dm:talk#alice,bob' } },
    );
    assert.equal((await alice.reply(2)).error, undefined, JSON.stringify(alice.messages));
    assert.equal((await alice.reply(3)).error, undefined, JSON.stringify(alice.messages));
    await api(s, 'publish', { channel: 'priv:alice-inbox', data: { secret: 'inbox-secret' } });
    await api(s, 'publish', { channel: 'dm:talk#alice,bob', data: { secret: 'dm-secret' } });
    mallory = await RawClient.open(s.wsUrl);
    mallory.send({ id: 1, connect: { token: await mintToken({ sub: 'mallory' }) } });
    await mallory.reply(1);
  });
  after(async () => {
    alice.close();
    mallory.close();
    await s.close();
  });

  let nextId = 100;
  async function ask(c: RawClient, method: string, params: Record<string, unknown>): Promise<any> {
    const id = nextId++;
    c.send({ id, [method]: params });
    return c.reply(id);
  }

  for (const channel of ['priv:alice-inbox', 'dm:talk#alice,bob']) {
    test(`subscribe, history and presence on ${channel} are refused with 103 for mallory, and nothing leaks`, async () => {
      for (const method of ['subscribe', 'history', 'presence', 'presence_stats']) {
        const r = await ask(mallory, method, { channel, limit: 10 });
        assert.equal(r.error?.code, 103, `${method}: ${JSON.stringify(r)}`);
      }
      const everything = JSON.stringify(mallory.messages);
      assert.doesNotMatch(everything, /secret|alice(?!-inbox|,bob)/, `mallory saw: ${everything}`);
    });
  }

  test("forged subscription tokens for alice's private channel are refused: wrong user, other channel, other secret", async () => {
    const { SignJWT } = await import('jose');
    const sign = (claims: Record<string, unknown>, secret = SECRET) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(secret));
    const tokens = [
      await sign({ sub: 'alice', channel: 'priv:alice-inbox' }),
      await sign({ sub: 'mallory', channel: 'priv:other' }),
      await sign({ sub: 'mallory', channel: 'priv:alice-inbox' }, 'guessed-secret'),
    ];
    for (const [i, token] of tokens.entries()) {
      const c = await RawClient.open(s.wsUrl);
      c.send({ id: 1, connect: { token: await mintToken({ sub: 'mallory' }) } });
      await c.reply(1);
      c.send({ id: 2, subscribe: { channel: 'priv:alice-inbox', token } });
      await new Promise((r) => setTimeout(r, 100));
      const reply = c.messages.find((m) => m.id === 2);
      assert.ok(
        reply?.error || c.closeCode === 3500 || (await c.closed(2000)).code === 3500,
        `token ${i}: ${JSON.stringify(c.messages)}`,
      );
      assert.ok(!reply?.subscribe, `token ${i} was accepted`);
      assert.doesNotMatch(JSON.stringify(c.messages), /inbox-secret/);
      c.close();
    }
  });

  test('a user-limited channel does not admit a user whose id only looks like a listed one', async () => {
    for (const user of ['alic', 'alice,bob', 'bob ', 'ALICE', '']) {
      const c = await RawClient.open(s.wsUrl);
      c.send({ id: 1, connect: { token: await mintToken({ sub: user }) } });
      await c.reply(1);
      c.send(
        { id: 2, subscribe: { channel: 'dm:talk#alice,bob' } },
        { id: 3, history: { channel: 'dm:talk#alice,bob', limit: 10 } },
      );
      assert.equal((await c.reply(2)).error?.code, 103, `user ${JSON.stringify(user)}`);
      assert.equal((await c.reply(3)).error?.code, 103, `user ${JSON.stringify(user)}`);
      assert.doesNotMatch(JSON.stringify(c.messages), /dm-secret/);
      c.close();
    }
  });
});
