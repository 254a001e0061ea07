import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedPollChannel, type SharedPollSubscriber } from '../src/shared-poll/channel.js';
import { SHARED_POLL_DEFAULTS } from '../src/config/shared-poll.js';
import type { SharedPollNamespaceOptions } from '../src/config/namespace.js';
import type { SharedPollAnswer } from '../src/proxy/proxies.js';
import { checkSharedPollSignature, signSharedPollKeys, SIGNATURE_GRACE_SEC } from '../src/shared-poll/signature.js';
import { HeraldError } from '../src/index.js';

/** SharedPollChannel's state machine over a fake clock and a fake backend whose answers the test releases. */

interface Call {
  items: { key: string; version?: number }[];
  at: number;
  answer(a: SharedPollAnswer): Promise<void>;
  fail(): Promise<void>;
}

function harness(opts: Partial<SharedPollNamespaceOptions> = {}) {
  let now = 1_000_000;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 0;
  const calls: Call[] = [];
  const warnings: string[] = [];
  const closed: string[] = [];
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const ch = new SharedPollChannel(
    'votes:1',
    { ...SHARED_POLL_DEFAULTS, refresh_interval_ms: 1000, ...opts },
    {
      now: () => now,
      schedule(ms, fn) {
        const id = ++nextId;
        timers.push({ at: now + ms, fn, id });
        return () => {
          timers = timers.filter((t) => t.id !== id);
        };
      },
      warn: (_obj, msg) => warnings.push(msg),
      closed: (c) => closed.push(c),
      refresh(body) {
        return new Promise<SharedPollAnswer>((resolve, reject) => {
          calls.push({
            items: body.items,
            at: now,
            answer: async (a) => {
              resolve(a);
              await settle();
            },
            fail: async () => {
              reject(new HeraldError(150, 'proxy unavailable'));
              await settle();
            },
          });
        });
      },
    },
  );
  /** Moves the clock, running every timer that falls due (and what they schedule) in order. */
  async function advance(ms: number): Promise<void> {
    const end = now + ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = timers[0];
      if (!t || t.at > end) break;
      timers.shift();
      now = t.at;
      t.fn();
      await settle();
    }
    now = end;
  }
  return { ch, calls, warnings, closed, advance, settle, timers: () => timers.length };
}

function subscriber(id: string) {
  const got: { key: string; data?: unknown; version?: number; removed?: boolean }[] = [];
  const sub: SharedPollSubscriber = {
    id,
    deliver(frame) {
      got.push((JSON.parse(frame.text) as { push: { pub: never } }).push.pub);
    },
  };
  return { sub, got };
}

const item = (key: string, data: unknown, version = 0, removed = false) => ({
  key,
  data: JSON.stringify(data),
  version,
  removed,
});

describe('SharedPollChannel (fake clock, fake backend)', () => {
  test('a key tracked at version 0 with no data here is polled at once, not after the interval', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    h.ch.join(a.sub);
    assert.deepEqual(h.ch.track(a.sub, [{ items: [{ key: 'k', version: 0 }], expiresAtMs: 0 }], []), []);
    await h.advance(0);
    assert.equal(h.calls.length, 1);
    assert.deepEqual(h.calls[0]!.items, [{ key: 'k', version: 0 }]);
    await h.calls[0]!.answer({ items: [item('k', { v: 1 }, 1)] });
    assert.deepEqual(a.got, [{ data: { v: 1 }, key: 'k', version: 1 }]);
  });

  test('immediate polls of keys without data are at most one per tenth of the interval, however often keys are re-tracked', async () => {
    const h = harness({ mode: 'versioned', refresh_interval_ms: 10_000 });
    const a = subscriber('a');
    h.ch.join(a.sub);
    for (let i = 0; i < 50; i++) {
      h.ch.track(a.sub, [{ items: [{ key: 'unknown', version: 0 }], expiresAtMs: 0 }], []);
      h.ch.untrack(a.sub, ['unknown']);
      h.ch.track(a.sub, [{ items: [{ key: 'unknown', version: 0 }], expiresAtMs: 0 }], []);
      await h.advance(10);
      for (const c of h.calls.filter((c) => c.items.length > 0)) void c.answer({ items: [] });
    }
    // 500 ms of re-tracking: one poll at once, then one more after 1 s (a tenth of the 10 s interval).
    assert.equal(h.calls.length, 1);
    await h.advance(1000);
    assert.equal(h.calls.length, 2);
  });

  test('versioned: a subscriber is sent a key only when the version is newer than the one it holds, once', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    const b = subscriber('b');
    h.ch.join(a.sub);
    h.ch.join(b.sub);
    h.ch.track(a.sub, [{ items: [{ key: 'k', version: 5 }], expiresAtMs: 0 }], []);
    h.ch.track(b.sub, [{ items: [{ key: 'k', version: 3 }], expiresAtMs: 0 }], []);
    await h.advance(1000);
    assert.equal(h.calls.length, 1, 'no cold poll: both hold a version');
    await h.calls[0]!.answer({ items: [item('k', 'five', 5)] });
    assert.deepEqual(a.got, []);
    assert.deepEqual(b.got, [{ data: 'five', key: 'k', version: 5 }]);
    await h.advance(1000);
    await h.calls[1]!.answer({ items: [item('k', 'five', 5)] });
    assert.equal(a.got.length + b.got.length, 1, 'the same version again is sent to nobody');
    await h.advance(1000);
    await h.calls[2]!.answer({ items: [item('k', 'six', 6)] });
    assert.deepEqual(a.got, [{ data: 'six', key: 'k', version: 6 }]);
    assert.deepEqual(b.got.at(-1), { data: 'six', key: 'k', version: 6 });
    assert.deepEqual(h.calls[2]!.items, [{ key: 'k', version: 5 }], 'the backend is told the version held here');
  });

  test('versioned: an older version answered late (or again) never replaces a newer one', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    h.ch.join(a.sub);
    h.ch.track(a.sub, [{ items: [{ key: 'k', version: 0 }], expiresAtMs: 0 }], []);
    await h.advance(0);
    const cold = h.calls[0]!;
    await h.advance(1000);
    const cycle = h.calls[1]!;
    await cycle.answer({ items: [item('k', 'new', 7)] });
    await cold.answer({ items: [item('k', 'old', 6)] });
    assert.deepEqual(a.got, [{ data: 'new', key: 'k', version: 7 }]);
  });

  test('versionless: Herald numbers each change of data; the same data again is no update', async () => {
    const h = harness();
    const a = subscriber('a');
    h.ch.join(a.sub);
    assert.equal(h.ch.epoch.length, 8);
    h.ch.track(a.sub, [{ items: [{ key: 'x', version: 0 }], expiresAtMs: 0 }], []);
    await h.advance(0);
    assert.deepEqual(h.calls[0]!.items, [{ key: 'x' }], 'no versions sent in versionless mode');
    await h.calls[0]!.answer({ items: [item('x', { s: 1 })] });
    await h.advance(1000);
    await h.calls[1]!.answer({ items: [item('x', { s: 1 })] });
    await h.advance(1000);
    await h.calls[2]!.answer({ items: [item('x', { s: 2 })] });
    assert.deepEqual(a.got, [
      { data: { s: 1 }, key: 'x', version: 1 },
      { data: { s: 2 }, key: 'x', version: 2 },
    ]);
  });

  test('a later tracker gets the data held here at once (the caller sends it) and is then up to date', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    const b = subscriber('b');
    h.ch.join(a.sub);
    h.ch.join(b.sub);
    h.ch.track(a.sub, [{ items: [{ key: 'k', version: 0 }], expiresAtMs: 0 }], []);
    await h.advance(0);
    await h.calls[0]!.answer({ items: [item('k', 'v4', 4)] });
    const cached = h.ch.track(b.sub, [{ items: [{ key: 'k', version: 0 }], expiresAtMs: 0 }], []);
    assert.deepEqual(cached, [{ key: 'k', data: '"v4"', version: 4 }]);
    await h.advance(0);
    assert.equal(h.calls.length, 1, 'a key with data here is not polled again at once');
    await h.advance(1000);
    await h.calls[1]!.answer({ items: [item('k', 'v4', 4)] });
    assert.deepEqual(b.got, [], 'the version it was given is not sent again');
  });

  test('keys are polled in batches of refresh_batch_size spread over the interval', async () => {
    const h = harness({ mode: 'versioned', refresh_batch_size: 100 });
    const a = subscriber('a');
    h.ch.join(a.sub);
    const items = Array.from({ length: 250 }, (_, i) => ({ key: `k${i}`, version: 1 }));
    h.ch.track(a.sub, [{ items, expiresAtMs: 0 }], []);
    await h.advance(1000);
    await h.advance(999);
    assert.deepEqual(
      h.calls.map((c) => [Math.round(c.at - h.calls[0]!.at), c.items.length]),
      [
        [0, 100],
        [333, 100],
        [667, 50],
      ],
    );
  });

  test('a cycle waits for the previous one: a backend slower than the interval is never called twice at once', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    h.ch.join(a.sub);
    h.ch.track(a.sub, [{ items: [{ key: 'k', version: 1 }], expiresAtMs: 0 }], []);
    await h.advance(1000);
    await h.advance(5000);
    assert.equal(h.calls.length, 1);
    await h.calls[0]!.answer({ items: [] });
    await h.advance(0);
    assert.equal(h.calls.length, 2, 'the next cycle starts at once when the last one overran');
  });

  test('the backend removing a key tells its trackers once and stops polling it', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    h.ch.join(a.sub);
    h.ch.track(
      a.sub,
      [
        {
          items: [
            { key: 'k', version: 1 },
            { key: 'j', version: 1 },
          ],
          expiresAtMs: 0,
        },
      ],
      [],
    );
    await h.advance(1000);
    await h.calls[0]!.answer({ items: [{ key: 'k', version: 2, removed: true }] });
    assert.deepEqual(a.got, [{ key: 'k', removed: true }]);
    assert.equal(h.ch.trackedBy(a.sub), 1);
    await h.advance(1000);
    assert.deepEqual(h.calls[1]!.items, [{ key: 'j', version: 0 }]);
  });

  test('more keys than max_keys_per_connection throws 106 and changes nothing; untracked keys make room', async () => {
    const h = harness({ mode: 'versioned', max_keys_per_connection: 2 });
    const a = subscriber('a');
    h.ch.join(a.sub);
    h.ch.track(
      a.sub,
      [
        {
          items: [
            { key: 'a', version: 1 },
            { key: 'b', version: 1 },
          ],
          expiresAtMs: 0,
        },
      ],
      [],
    );
    assert.throws(
      () => h.ch.track(a.sub, [{ items: [{ key: 'c', version: 1 }], expiresAtMs: 0 }], []),
      (e: unknown) => e instanceof HeraldError && e.code === 106,
    );
    assert.equal(h.ch.trackedBy(a.sub), 2);
    h.ch.track(a.sub, [{ items: [{ key: 'c', version: 1 }], expiresAtMs: 0 }], ['a']);
    assert.equal(h.ch.trackedBy(a.sub), 2);
    await h.advance(1000);
    assert.deepEqual(h.calls[0]!.items.map((i) => i.key).sort(), ['b', 'c']);
  });

  test('keys whose signature expired are dropped after track_expired_extra_delay unless tracked again', async () => {
    const h = harness({ mode: 'versioned', track_expired_extra_delay_ms: 2000 });
    const a = subscriber('a');
    h.ch.join(a.sub);
    const start = 1_000_000;
    h.ch.track(a.sub, [{ items: [{ key: 'short', version: 1 }], expiresAtMs: start + 1000 }], []);
    h.ch.track(a.sub, [{ items: [{ key: 'renewed', version: 1 }], expiresAtMs: start + 1000 }], []);
    await h.advance(1000);
    await h.calls[0]!.answer({ items: [] });
    h.ch.track(a.sub, [{ items: [{ key: 'renewed', version: 1 }], expiresAtMs: start + 60_000 }], []);
    // Cycles at +2 s and +3 s still ask for 'short' (expired at +1 s, dropped after +3 s); the one at +4 s does not.
    for (let i = 1; i <= 3; i++) {
      await h.advance(1000);
      assert.equal(h.calls.length, i + 1);
      if (i < 3) await h.calls[i]!.answer({ items: [] });
    }
    assert.deepEqual(
      h.calls[2]!.items.map((i) => i.key),
      ['short', 'renewed'],
    );
    const last = h.calls.at(-1)!;
    assert.deepEqual(
      last.items.map((i) => i.key),
      ['renewed'],
    );
    assert.equal(h.ch.trackedBy(a.sub), 1);
  });

  test('a failed refresh keeps the data, warns once a minute, and the next cycle tries again', async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    h.ch.join(a.sub);
    h.ch.track(a.sub, [{ items: [{ key: 'k', version: 0 }], expiresAtMs: 0 }], []);
    await h.advance(0);
    await h.calls[0]!.answer({ items: [item('k', 1, 1)] });
    for (let i = 1; i <= 3; i++) {
      await h.advance(1000);
      await h.calls[i]!.fail();
    }
    assert.equal(h.warnings.length, 1);
    await h.advance(1000);
    await h.calls[4]!.answer({ items: [item('k', 2, 2)] });
    assert.deepEqual(
      a.got.map((g) => g.version),
      [1, 2],
    );
  });

  test('the last subscriber leaving closes the channel after channel_shutdown_delay; joining before keeps it', async () => {
    const h = harness({ channel_shutdown_delay_ms: 500 });
    const a = subscriber('a');
    h.ch.join(a.sub);
    const epoch = h.ch.epoch;
    h.ch.leave(a.sub);
    await h.advance(400);
    h.ch.join(a.sub);
    await h.advance(1000);
    assert.equal(h.ch.closed, false);
    assert.equal(h.ch.epoch, epoch);
    h.ch.leave(a.sub);
    await h.advance(500);
    assert.equal(h.ch.closed, true);
    assert.deepEqual(h.closed, ['votes:1']);
    assert.equal(h.timers(), 0, 'no timer left behind');
  });

  test("versioned: a change of the backend's epoch resets every version: each tracker gets the key again", async () => {
    const h = harness({ mode: 'versioned' });
    const a = subscriber('a');
    h.ch.join(a.sub);
    h.ch.track(a.sub, [{ items: [{ key: 'k', version: 0 }], expiresAtMs: 0 }], []);
    await h.advance(0);
    await h.calls[0]!.answer({ epoch: 'e1', items: [item('k', 'a', 9)] });
    assert.equal(h.ch.epoch, 'e1');
    await h.advance(1000);
    await h.calls[1]!.answer({ epoch: 'e2', items: [item('k', 'b', 1)] });
    assert.equal(h.ch.epoch, 'e2');
    assert.deepEqual(
      a.got.map((g) => [g.data, g.version]),
      [
        ['a', 9],
        ['b', 1],
      ],
    );
  });
});

describe('shared poll signatures', () => {
  const config = { secret: 's1', previousSecret: '', previousValidUntil: 0, concurrencyLimit: 64 };
  const now = 1_800_000_000;
  const base = { iat: now, exp: now + 60, user: 'u', channel: 'votes:1', keys: ['a', 'b'] };

  test('a signature over the same keys, user and channel is taken; any other is a mismatch', () => {
    const sig = signSharedPollKeys('s1', base);
    assert.deepEqual(checkSharedPollSignature(config, sig, { ...base, nowSec: now }), { ok: true, exp: now + 60 });
    for (const other of [
      { keys: ['b', 'a'] },
      { keys: ['a'] },
      { user: 'v' },
      { channel: 'votes:2' },
      { user: 'u\0votes:1' },
    ])
      assert.deepEqual(checkSharedPollSignature(config, sig, { ...base, ...other, nowSec: now }), {
        ok: false,
        why: 'mismatch',
      });
    assert.deepEqual(checkSharedPollSignature(config, 'a:b:c', { ...base, nowSec: now }), {
      ok: false,
      why: 'malformed',
    });
  });

  test(`expiry has ${SIGNATURE_GRACE_SEC} s of grace; exp 0 never expires; a future iat is refused`, () => {
    const sig = signSharedPollKeys('s1', base);
    const at = (nowSec: number) => checkSharedPollSignature(config, sig, { ...base, nowSec });
    assert.equal(at(now + 60 + SIGNATURE_GRACE_SEC).ok, true);
    assert.deepEqual(at(now + 61 + SIGNATURE_GRACE_SEC), { ok: false, why: 'expired' });
    const forever = signSharedPollKeys('s1', { ...base, exp: 0 });
    assert.equal(checkSharedPollSignature(config, forever, { ...base, nowSec: now + 10 ** 8 }).ok, true);
    assert.deepEqual(at(now - SIGNATURE_GRACE_SEC - 1), { ok: false, why: 'not_yet_valid' });
  });

  test('during a key rotation the previous key is taken for signatures issued up to its valid_until', () => {
    const rotating = { ...config, secret: 's2', previousSecret: 's1', previousValidUntil: now };
    const old = signSharedPollKeys('s1', base);
    assert.equal(checkSharedPollSignature(rotating, old, { ...base, nowSec: now }).ok, true);
    const late = signSharedPollKeys('s1', { ...base, iat: now + 1 });
    assert.deepEqual(checkSharedPollSignature(rotating, late, { ...base, nowSec: now + 1 }), {
      ok: false,
      why: 'mismatch',
    });
    const fresh = signSharedPollKeys('s2', base);
    assert.equal(checkSharedPollSignature(rotating, fresh, { ...base, nowSec: now }).ok, true);
  });
});
