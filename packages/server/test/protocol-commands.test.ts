import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CommandMethod } from '../src/protocol/codec.js';
import { HeraldError } from '../src/protocol/codes.js';
import {
  parseCommand,
  publishWithoutData,
  tokenNotString,
  unknownDeltaType,
  type CommandParams,
} from '../src/protocol/commands.js';
import {
  MAX_CHANNEL_PATTERN_LENGTH,
  parseApiCommand,
  parseBatchItem,
  type ApiMethod,
  type ApiParams,
  type ApiParseLimits,
} from '../src/protocol/api-commands.js';

/** The HeraldError `fn` throws (fails when it returns). */
function refusal(fn: () => unknown): HeraldError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HeraldError, `a HeraldError, not ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

function refused(fn: () => unknown, code: number, message: string): void {
  const e = refusal(fn);
  assert.deepEqual({ code: e.code, message: e.message }, { code, message });
}

function params<M extends CommandMethod>(method: M, p: Record<string, unknown>): CommandParams[M] {
  const c = parseCommand(method, p);
  assert.equal(c.method, method);
  return c.params as CommandParams[M];
}

// ---- client commands ---------------------------------------------------------------------------------------------

test('each client command field of the wrong type is refused with 107 naming the field', () => {
  const cases: [CommandMethod, Record<string, unknown>, string][] = [
    ['connect', { token: 5 }, 'connect.token must be a string'],
    ['connect', { name: true }, 'connect.name must be a string'],
    ['connect', { version: 1 }, 'connect.version must be a string'],
    ['connect', { subs: [] }, 'connect.subs must be an object'],
    ['connect', { subs: { a: 1 } }, 'connect.subs entries must be objects'],
    ['connect', { subs: { a: { offset: -1 } } }, 'connect.subs["a"].offset must be a non-negative integer'],
    ['connect', { subs: { a: { recover: 'yes' } } }, 'connect.subs["a"].recover must be a boolean'],
    ['connect', { subs: { a: { epoch: 1 } } }, 'connect.subs["a"].epoch must be a string'],
    ['connect', { headers: 'h' }, 'connect.headers must be an object'],
    ['connect', { headers: { a: 1 } }, 'connect.headers values must be strings'],
    ['subscribe', { channel: 1 }, 'subscribe.channel must be a string'],
    ['subscribe', { channel: 'a', token: {} }, 'subscribe.token must be a string'],
    ['subscribe', { channel: 'a', recover: 1 }, 'subscribe.recover must be a boolean'],
    ['subscribe', { channel: 'a', epoch: 1 }, 'subscribe.epoch must be a string'],
    ['subscribe', { channel: 'a', offset: 1.5 }, 'subscribe.offset must be a non-negative integer'],
    ['subscribe', { channel: 'a', offset: 2 ** 53 }, 'subscribe.offset must be a non-negative integer'],
    ['subscribe', { channel: 'a', positioned: 'x' }, 'subscribe.positioned must be a boolean'],
    ['subscribe', { channel: 'a', recoverable: 0 }, 'subscribe.recoverable must be a boolean'],
    ['subscribe', { channel: 'a', join_leave: 'x' }, 'subscribe.join_leave must be a boolean'],
    ['subscribe', { channel: 'a', delta: 1 }, 'subscribe.delta must be a string'],
    ['subscribe', { channel: 'a', flag: '2' }, 'subscribe.flag must be an integer'],
    ['subscribe', { channel: 'a', type: 0.5 }, 'subscribe.type must be an integer'],
    ['subscribe', { channel: 'a', phase: '2' }, 'subscribe.phase must be an integer'],
    ['subscribe', { channel: 'a', cursor: 3 }, 'subscribe.cursor must be a string'],
    ['subscribe', { channel: 'a', tf: 'x' }, 'subscribe.tf must be an object'],
    ['publish', { channel: 'a', type: '1' }, 'publish.type must be an integer'],
    ['publish', { channel: 'a', key: 1 }, 'publish.key must be a string'],
    ['publish', { channel: 'a', removed: 1 }, 'publish.removed must be a boolean'],
    ['unsubscribe', { channel: [] }, 'unsubscribe.channel must be a string'],
    ['publish', { channel: 1, data: 1 }, 'publish.channel must be a string'],
    ['presence', { channel: {} }, 'presence.channel must be a string'],
    ['presence_stats', { channel: false }, 'presence_stats.channel must be a string'],
    ['history', { channel: 'a', limit: '10' }, 'history.limit must be an integer'],
    ['history', { channel: 'a', since: [] }, 'history.since must be an object'],
    ['history', { channel: 'a', since: { offset: -1 } }, 'history.since.offset must be a non-negative integer'],
    ['history', { channel: 'a', since: { epoch: 7 } }, 'history.since.epoch must be a string'],
    ['history', { channel: 'a', reverse: 'true' }, 'history.reverse must be a boolean'],
    ['rpc', { method: 5 }, 'rpc.method must be a string'],
    ['refresh', { token: 5 }, 'refresh.token must be a string'],
    ['sub_refresh', { channel: 'a', token: 5 }, 'sub_refresh.token must be a string'],
  ];
  for (const [method, p, message] of cases) refused(() => parseCommand(method, p), 107, `bad request: ${message}`);
});

test('commands missing what they need are refused with 107 before anything runs', () => {
  refused(() => parseCommand('unsubscribe', {}), 107, 'bad request: channel must be a string');
  refused(() => parseCommand('unsubscribe', { channel: null }), 107, 'bad request: channel must be a string');
  refused(() => parseCommand('refresh', {}), 107, 'bad request: refresh needs a token');
  refused(() => parseCommand('refresh', { token: '' }), 107, 'bad request: refresh needs a token');
  refused(() => parseCommand('sub_refresh', { channel: 'a' }), 107, 'bad request: sub_refresh needs channel and token');
  refused(() => parseCommand('sub_refresh', { token: 't' }), 107, 'bad request: sub_refresh needs a channel');
  refused(
    () => parseCommand('sub_refresh', { channel: 'a', type: 3 }),
    107,
    'bad request: sub_refresh.type must be 0 (refresh), 1 (track) or 2 (untrack)',
  );
  refused(
    () => parseCommand('sub_refresh', { channel: 'a', type: 1 }),
    107,
    'bad request: sub_refresh type 1 (track) needs track batches',
  );
  refused(
    () => parseCommand('sub_refresh', { channel: 'a', type: 2, untrack: [1] }),
    107,
    'bad request: sub_refresh.untrack[0] must be a non-empty string',
  );
  refused(
    () => parseCommand('sub_refresh', { channel: 'a b', token: 't' }),
    107,
    'bad request: channel must not contain control characters or whitespace',
  );
  refused(
    () => parseCommand('sub_refresh', { channel: 'a*', token: 't' }),
    107,
    'bad request: channel must not contain "*"',
  );
});

test('the problems a handler finds later have their own 107 errors', () => {
  const errors = [tokenNotString(), publishWithoutData(), unknownDeltaType()].map((e) => ({
    code: e.code,
    message: e.message,
  }));
  assert.deepEqual(errors, [
    { code: 107, message: 'bad request: token must be a string' },
    { code: 107, message: 'bad request: publish needs data' },
    { code: 107, message: 'bad request: unknown delta type (only "fossil" exists)' },
  ]);
});

test('connect params: token, name, version, headers and the subs recovery positions, with defaults', () => {
  assert.deepEqual(params('connect', {}), {
    token: '',
    data: undefined,
    subs: new Map(),
    name: undefined,
    version: undefined,
    headers: undefined,
  });
  const headers = { cookie: 'a=b' };
  const p = params('connect', {
    token: 't',
    data: { d: 1 },
    name: 'js',
    version: '5',
    headers,
    subs: { 'a:1': { recover: true, offset: 4, epoch: 'e' }, b: {}, __proto__: { offset: 1 } },
  });
  assert.equal(p.token, 't');
  assert.deepEqual(p.data, { d: 1 });
  assert.equal(p.name, 'js');
  assert.equal(p.version, '5');
  assert.equal(p.headers, headers);
  assert.deepEqual(p.subs.get('a:1'), { recover: true, offset: 4, epoch: 'e' });
  assert.deepEqual(p.subs.get('b'), { recover: false, offset: 0, epoch: '' });
  // null counts as absent, except a null token, kept so connect can refuse it once the connection's state is checked.
  assert.deepEqual(params('connect', { token: null, name: null, subs: null, headers: null }), {
    token: null,
    data: undefined,
    subs: new Map(),
    name: undefined,
    version: undefined,
    headers: undefined,
  });
});

test('a __proto__ key in connect subs is an ordinary channel name, not a prototype', () => {
  const subs = JSON.parse('{"__proto__":{"recover":true,"offset":2}}') as Record<string, unknown>;
  const p = params('connect', { subs });
  assert.deepEqual([...p.subs.keys()], ['__proto__']);
  assert.deepEqual(p.subs.get('__proto__'), { recover: true, offset: 2, epoch: '' });
});

test('subscribe params: recovery position, options, flag, delta, type and map steps, with defaults', () => {
  assert.deepEqual(params('subscribe', {}), {
    channel: undefined,
    token: '',
    type: undefined,
    recover: false,
    offset: 0,
    epoch: '',
    joinLeave: false,
    recoverable: false,
    positioned: false,
    flag: 0,
    delta: 'none',
    data: undefined,
    phase: 0,
    cursor: '',
    limit: 0,
    tf: undefined,
  });
  assert.deepEqual(
    params('subscribe', {
      channel: 'chat:a',
      token: 'tk',
      type: 0,
      recover: true,
      offset: 9,
      epoch: 'ep',
      join_leave: true,
      recoverable: true,
      positioned: true,
      flag: 2,
      delta: 'fossil',
      data: [1],
      phase: 2,
      cursor: 'k9',
      limit: 50,
      tf: { key: 'team', cmp: 'eq', val: 'eng' },
    }),
    {
      channel: 'chat:a',
      token: 'tk',
      type: 0,
      recover: true,
      offset: 9,
      epoch: 'ep',
      joinLeave: true,
      recoverable: true,
      positioned: true,
      flag: 2,
      delta: 'fossil',
      data: [1],
      phase: 2,
      cursor: 'k9',
      limit: 50,
      tf: { key: 'team', cmp: 'eq', val: 'eng' },
    },
  );
  assert.equal(params('subscribe', { delta: '' }).delta, 'none');
  assert.equal(params('subscribe', { delta: 'xdelta' }).delta, 'unknown');
  assert.equal(params('subscribe', { delta: null }).delta, 'unknown');
  assert.equal(params('subscribe', { type: 3 }).type, 3);
  assert.equal(params('subscribe', { type: null }).type, null);
  assert.equal(params('subscribe', { token: null }).token, null);
  assert.equal(params('subscribe', { channel: null }).channel, undefined);
});

test('publish, history, rpc, send, refresh and sub_refresh params', () => {
  const stream = { type: 0, key: '', removed: false };
  assert.deepEqual(params('publish', { channel: 'c', data: null }), { channel: 'c', data: null, ...stream });
  assert.deepEqual(params('publish', { channel: 'c' }), { channel: 'c', data: undefined, ...stream });
  assert.deepEqual(params('publish', { channel: 'c', type: 1, key: 'k', removed: true }), {
    channel: 'c',
    data: undefined,
    type: 1,
    key: 'k',
    removed: true,
  });
  assert.deepEqual(params('history', { channel: 'c' }), { channel: 'c', limit: 0, since: undefined, reverse: false });
  assert.deepEqual(params('history', { channel: 'c', limit: -1, since: { offset: 3, epoch: 'e' }, reverse: true }), {
    channel: 'c',
    limit: -1,
    since: { offset: 3, epoch: 'e' },
    reverse: true,
  });
  assert.deepEqual(params('history', { channel: 'c', since: {} }).since, { offset: 0, epoch: '' });
  assert.deepEqual(params('history', { channel: 'c', since: null }).since, undefined);
  assert.deepEqual(params('rpc', {}), { method: '', data: undefined });
  assert.deepEqual(params('rpc', { method: 'm', data: { x: 1 } }), { method: 'm', data: { x: 1 } });
  assert.deepEqual(params('send', { data: 'hi' }), { data: 'hi' });
  assert.deepEqual(params('refresh', { token: 't' }), { token: 't' });
  assert.deepEqual(params('sub_refresh', { channel: 'c', token: 't' }), { type: 0, channel: 'c', token: 't' });
  assert.deepEqual(
    params('sub_refresh', {
      channel: 'c',
      type: 1,
      track: [{ signature: 's', items: [{ key: 'a' }, { key: 'b', version: 3 }] }],
      untrack: ['z'],
    }),
    {
      type: 1,
      channel: 'c',
      track: [
        {
          signature: 's',
          items: [
            { key: 'a', version: 0 },
            { key: 'b', version: 3 },
          ],
        },
      ],
      untrack: ['z'],
    },
  );
  assert.deepEqual(params('unsubscribe', { channel: 'anything at all' }), { channel: 'anything at all' });
  assert.deepEqual(params('presence', { channel: 'c' }), { channel: 'c' });
  assert.deepEqual(params('ping', { ignored: 1 }), {});
});

// ---- server API --------------------------------------------------------------------------------------------------

const limits: ApiParseLimits = { maxJsonDepth: 4, maxBatchCommands: 2, maxBroadcastChannels: 2 };

function api<M extends ApiMethod>(method: M, p: unknown): ApiParams[M] {
  const c = parseApiCommand(method, p, limits);
  assert.equal(c.method, method);
  return c.params as ApiParams[M];
}

test('each server API field of the wrong type or value is refused with 107 naming the field', () => {
  const cases: [string, unknown, string][] = [
    ['publish', [], 'body must be a JSON object'],
    ['publish', 'x', 'body must be a JSON object'],
    ['publish', { data: 1 }, 'invalid channel: channel must be a string'],
    [
      'publish',
      { channel: 'a b', data: 1 },
      'invalid channel: channel must not contain control characters or whitespace',
    ],
    ['publish', { channel: 'c' }, '"data" is required'],
    ['publish', { channel: 'c', data: 1, tags: [] }, '"tags" must be an object of strings'],
    ['publish', { channel: 'c', data: 1, tags: { k: 1 } }, 'tag "k" must be a string'],
    ['publish', { channel: 'c', data: 1, idempotency_key: 5 }, '"idempotency_key" must be a string'],
    ['broadcast', { channels: [], data: 1 }, '"channels" must be a non-empty array'],
    ['broadcast', { channels: 'c', data: 1 }, '"channels" must be a non-empty array'],
    [
      'broadcast',
      { channels: ['a', 'b', 'c'], data: 1 },
      'at most 2 channels per broadcast (HERALD_API_MAX_BROADCAST); got 3: split it',
    ],
    ['broadcast', { channels: ['a'] }, '"data" is required'],
    ['subscribe', { channel: 'c' }, '"user" must be a non-empty string'],
    ['subscribe', { user: '', channel: 'c' }, '"user" must be a non-empty string'],
    ['subscribe', { user: 'u', channel: 'c', client: 1 }, '"client" must be a string'],
    ['unsubscribe', { user: 'u' }, 'invalid channel: channel must be a string'],
    ['disconnect', {}, '"user" must be a non-empty string'],
    ['disconnect', { user: 'u', disconnect: { code: 2999 } }, '"code" must be an integer 3000-4999'],
    ['disconnect', { user: 'u', code: 5000 }, '"code" must be an integer 3000-4999'],
    ['disconnect', { user: 'u', code: '4000' }, '"code" must be an integer 3000-4999'],
    ['presence', {}, 'invalid channel: channel must be a string'],
    ['presence_stats', { channel: '' }, 'invalid channel: channel must not be empty'],
    ['history', { channel: 'c', limit: 1.5 }, '"limit" must be an integer'],
    ['history', { channel: 'c', since: 5 }, 'body must be a JSON object'],
    ['history', { channel: 'c', since: {} }, '"since.offset" must be a non-negative integer'],
    ['history', { channel: 'c', since: { offset: -1 } }, '"since.offset" must be a non-negative integer'],
    ['history', { channel: 'c', since: { offset: 1, epoch: 2 } }, '"since.epoch" must be a string'],
    ['history_remove', { channel: 'c?' }, 'invalid channel: channel must not contain "?"'],
    ['channels', { pattern: 5 }, '"pattern" must be a string'],
    [
      'channels',
      { pattern: 'a'.repeat(MAX_CHANNEL_PATTERN_LENGTH + 1) },
      `"pattern" is longer than ${MAX_CHANNEL_PATTERN_LENGTH} characters (runs of "*" counted as one): no channel name (at most 255 characters) can match it`,
    ],
    ['batch', { commands: {} }, '"commands" must be an array'],
    ['batch', { commands: [{}, {}, {}] }, 'at most 2 commands per batch (HERALD_API_MAX_BATCH); got 3: split it'],
  ];
  for (const [method, body, message] of cases)
    refused(() => parseApiCommand(method, body, limits), 107, `bad request: ${message}`);
  // Data nested deeper than HERALD_MAX_JSON_DEPTH: the depth check's own message.
  const e = refusal(() => parseApiCommand('publish', { channel: 'c', data: [[[[[1]]]]] }, limits));
  assert.equal(e.code, 107);
  assert.match(e.message, /HERALD_MAX_JSON_DEPTH/);
});

test('an unknown API method is 104, after the body is checked to be an object', () => {
  refused(() => parseApiCommand('nosuch', {}, limits), 104, 'method not found: "nosuch"');
  refused(() => parseApiCommand('nosuch', 3, limits), 107, 'bad request: body must be a JSON object');
  refused(() => parseApiCommand('x'.repeat(100), {}, limits), 104, `method not found: "${'x'.repeat(40)}"`);
});

test('the first wrong field of an API body is the one named', () => {
  refused(
    () => parseApiCommand('publish', { channel: 1 }, limits),
    107,
    'bad request: invalid channel: channel must be a string',
  );
  refused(
    () => parseApiCommand('subscribe', { channel: 1, client: 1 }, limits),
    107,
    'bad request: "user" must be a non-empty string',
  );
});

test('server API params: publish, broadcast, user channel, disconnect, history, channels and batch', () => {
  assert.deepEqual(api('publish', { channel: 'c', data: { x: 1 }, tags: { a: 'b' }, idempotency_key: 'k' }), {
    channel: 'c',
    data: { x: 1 },
    tags: { a: 'b' },
    idempotencyKey: 'k',
  });
  assert.deepEqual(api('publish', { channel: 'c', data: null, tags: null, idempotency_key: '' }), {
    channel: 'c',
    data: null,
    tags: undefined,
    idempotencyKey: undefined,
  });
  const b = api('broadcast', { channels: ['a', 'b c'], data: 1 });
  assert.equal(b.channels[0], 'a');
  const bad = b.channels[1];
  assert.ok(bad instanceof HeraldError);
  assert.equal(bad.code, 107);
  assert.equal(bad.message, 'bad request: invalid channel: channel must not contain control characters or whitespace');
  assert.deepEqual(api('subscribe', { user: 'u', channel: 'c' }), { user: 'u', channel: 'c', client: undefined });
  assert.deepEqual(api('unsubscribe', { user: 'u', channel: 'c', client: 'x' }), {
    user: 'u',
    channel: 'c',
    client: 'x',
  });
  assert.deepEqual(api('disconnect', { user: 'u' }), {
    user: 'u',
    code: undefined,
    reason: undefined,
    client: undefined,
  });
  assert.deepEqual(api('disconnect', { user: 'u', client: 'c', disconnect: { code: 4000, reason: 'bye' } }), {
    user: 'u',
    code: 4000,
    reason: 'bye',
    client: 'c',
  });
  assert.deepEqual(api('disconnect', { user: 'u', code: 3000, reason: 5 }), {
    user: 'u',
    code: 3000,
    reason: undefined,
    client: undefined,
  });
  assert.deepEqual(api('history', { channel: 'c' }), { channel: 'c', limit: 0, since: undefined, reverse: false });
  assert.deepEqual(api('history', { channel: 'c', limit: -1, since: { offset: 2 }, reverse: true }), {
    channel: 'c',
    limit: -1,
    since: { offset: 2, epoch: '' },
    reverse: true,
  });
  assert.deepEqual(api('channels', {}), { pattern: undefined });
  assert.deepEqual(api('channels', { pattern: 'a**b***' }), { pattern: 'a*b*' });
  assert.deepEqual(api('batch', { commands: [1] }), { commands: [1], parallel: false });
  assert.deepEqual(api('batch', { commands: [], parallel: true }), { commands: [], parallel: true });
  assert.deepEqual(api('info', {}), {});
  assert.deepEqual(api('refresh', {}), {});
});

test('a batch item is one method other than batch; its params are parsed when it runs', () => {
  assert.deepEqual(parseBatchItem({ publish: { channel: 'c' } }), { method: 'publish', params: { channel: 'c' } });
  for (const item of [{}, { batch: {} }, { nosuch: {} }, { publish: {}, info: {} }])
    refused(() => parseBatchItem(item), 107, 'bad request: each command is {"<method>": {...}}');
  refused(() => parseBatchItem(5), 107, 'bad request: body must be a JSON object');
});
