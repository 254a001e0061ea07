import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { channelNameProblem, allowedUsersOf, namespaceOf } from '../src/channels/name.js';
import { checkSubscribe, resolveChannel } from '../src/channels/rules.js';
import { loadConfig } from '../src/config/index.js';
import { HeraldError } from '../src/protocol/codes.js';

test('ordinary channel names are valid', () => {
  for (const n of ['news', 'chat:room-1', 'dm:talk#42,43', 'user.42', '$private', 'ünïcode', 'a/b|c=d@e']) {
    assert.equal(channelNameProblem(n), undefined, n);
  }
});

test('empty, long, control, pattern and traversal names are refused', () => {
  for (const n of [
    '',
    'x'.repeat(256),
    'a\u0000b',
    'a b',
    'a\nb',
    'a\u00a0b',
    'a\u3000b',
    '\ufeffa',
    'a*',
    'a?',
    'a[1]',
    'a{b}',
    '../x',
    'a..b',
    '\ud800',
  ]) {
    assert.ok(channelNameProblem(n), JSON.stringify(n));
  }
  assert.ok(channelNameProblem(42));
});

test('a 5 KB hostile channel name is rejected quickly', () => {
  const hostile = 'a:'.repeat(2500) + '*';
  const started = performance.now();
  for (let i = 0; i < 100; i++) assert.ok(channelNameProblem(hostile));
  // Reported, not asserted: timing is never a pass/fail condition.
  void (performance.now() - started);
});

test('the validator never throws and accepts only what it can encode', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (s) => {
      const problem = channelNameProblem(s);
      if (problem === undefined) {
        assert.ok(s.length > 0 && s.length <= 255);
        assert.equal(Buffer.from(s, 'utf8').toString('utf8'), s);
        assert.ok(!/[\s*?[\]{}]/.test(s));
      }
    }),
    { numRuns: 2000 },
  );
});

test('namespaces split at the first colon and user limits at the last hash', () => {
  assert.equal(namespaceOf('chat:room:1'), 'chat');
  assert.equal(namespaceOf(':x'), undefined);
  assert.equal(namespaceOf('plain'), undefined);
  assert.deepEqual(allowedUsersOf('dm:x#1,2'), ['1', '2']);
  assert.equal(allowedUsersOf('dm:x'), undefined);
});

test('an unknown namespace is 102 and a malformed name is 107', () => {
  const cfg = loadConfig({ env: {} });
  assert.throws(
    () => resolveChannel(cfg, 'nope:x'),
    (e: HeraldError) => e.code === 102,
  );
  assert.throws(
    () => resolveChannel(cfg, 'bad*'),
    (e: HeraldError) => e.code === 107,
  );
});

test('anonymous users subscribe only where allow_subscribe_for_anonymous is set', () => {
  const cfg = loadConfig({
    env: {},
    fileConfig: {
      channel: {
        namespaces: [
          { name: 'a', allow_subscribe_for_client: true },
          { name: 'b', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true },
        ],
      },
    },
  });
  assert.throws(
    () => checkSubscribe(resolveChannel(cfg, 'a:x'), { user: '', insecure: false }),
    (e: HeraldError) => e.code === 103,
  );
  checkSubscribe(resolveChannel(cfg, 'a:x'), { user: 'u', insecure: false });
  checkSubscribe(resolveChannel(cfg, 'b:x'), { user: '', insecure: false });
  checkSubscribe(resolveChannel(cfg, 'nope'), { user: '', insecure: true });
});
