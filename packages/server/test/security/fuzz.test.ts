import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { COMMAND_METHODS, decodeFrame } from '../../src/protocol/codec.js';
import { paramsProblem } from '../../src/protocol/params.js';

/**
 * docs/security.md, "Frames and messages": property tests of the command decoder against an independent model.
 * (packages/server/test/codec.test.ts checks that arbitrary text never throws; this file checks what is accepted.)
 */
const methodSet = new Set<string>(COMMAND_METHODS);

/** The model: what a well-formed command line is, written from the protocol description, not from the decoder. */
function modelAccepts(line: string): { id: number; method: string } | 'pong' | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 0) return 'pong';
  const id = Object.hasOwn(o, 'id') ? o.id : 0;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) return undefined;
  const methods = keys.filter((k) => k !== 'id');
  if (methods.length !== 1 || !methodSet.has(methods[0]!)) return undefined;
  const p = o[methods[0]!];
  if (p !== undefined && (typeof p !== 'object' || p === null || Array.isArray(p))) return undefined;
  return { id, method: methods[0]! };
}

const hostileKey = fc.constantFrom(
  'id',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  ...COMMAND_METHODS,
  'subscribe ',
  'Subscribe',
  '',
);
const leaf = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(-1),
  fc.constant(2 ** 32),
  fc.constant(1.5),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(hostileKey, fc.string({ maxLength: 6 })), tie('v'), { maxKeys: 4 }),
  ),
})).v;
/** Command-shaped JSON text: an object whose keys are mostly methods and ids, with values of every type. */
const commandText = fc.oneof(
  fc.dictionary(hostileKey, value, { maxKeys: 4 }).map((o) => JSON.stringify(o)),
  fc
    .tuple(fc.constantFrom(...COMMAND_METHODS), fc.nat({ max: 2 ** 33 }), value)
    .map(([m, id, p]) => `{"id":${id},"${m}":${JSON.stringify(p)}}`),
  fc
    .tuple(
      fc.constantFrom(...COMMAND_METHODS),
      fc.dictionary(
        fc.constantFrom(
          'channel',
          'token',
          'recover',
          'offset',
          'epoch',
          'data',
          'limit',
          'since',
          'method',
          '__proto__',
        ),
        value,
        { maxKeys: 4 },
      ),
    )
    .map(([m, p]) => `{"id":1,"${m}":${JSON.stringify(p)}}`),
  fc.string({ maxLength: 60 }),
);

test('property: the decoder accepts a command line exactly when the independent model does, with the same id and method', () => {
  fc.assert(
    fc.property(commandText, (line) => {
      const decoded = decodeFrame(line);
      if (line.trim() === '') return assert.equal(decoded.length, 0);
      // A line without newlines decodes to at most one entry (JSON.stringify never emits a raw newline).
      if (line.includes('\n')) return;
      assert.equal(decoded.length, 1);
      const d = decoded[0]!;
      const m = modelAccepts(line.trim());
      if (m === 'pong') return assert.equal(d.kind, 'pong');
      if (m === undefined) {
        assert.equal(d.kind, 'invalid', `accepted what the model refuses: ${line}`);
        if (d.kind === 'invalid') assert.ok(d.code === 104 || d.code === 107, `code ${d.code}`);
        return;
      }
      assert.equal(d.kind, 'command', `refused what the model accepts: ${line}`);
      if (d.kind === 'command') {
        assert.equal(d.id, m.id);
        assert.equal(d.method, m.method);
        assert.ok(typeof d.params === 'object' && d.params !== null && !Array.isArray(d.params));
      }
    }),
    { numRuns: 3000 },
  );
});

test('property: frames of many lines decode line by line, in order, and never throw', () => {
  fc.assert(
    fc.property(fc.array(commandText, { maxLength: 8 }), (lines) => {
      const safe = lines.map((l) => l.replace(/\n/g, ' '));
      const decoded = decodeFrame(safe.join('\n'));
      assert.equal(decoded.length, safe.filter((l) => l.trim() !== '').length);
    }),
    { numRuns: 1000 },
  );
});

/**
 * The model of field types, written from client.proto (ConnectRequest, SubscribeRequest, HistoryRequest with its
 * StreamPosition `since`, ...), not from params.ts: uint64 fields are non-negative safe integers, int32/int64 fields
 * safe integers, maps objects; null counts as absent. Only the fields the generator below produces are listed.
 */
type ModelType = 'string' | 'boolean' | 'uint' | 'int' | 'object';
const modelFields: Record<string, Record<string, ModelType>> = {
  connect: { token: 'string', subs: 'object', name: 'string', version: 'string', headers: 'object' },
  // `limit`: the page size of a map subscribe's state and stream steps (SubscribeRequest.limit, int32).
  subscribe: { channel: 'string', token: 'string', recover: 'boolean', epoch: 'string', offset: 'uint', limit: 'int' },
  unsubscribe: { channel: 'string' },
  publish: { channel: 'string' },
  presence: { channel: 'string' },
  presence_stats: { channel: 'string' },
  history: { channel: 'string', limit: 'int', since: 'object', reverse: 'boolean' },
  rpc: { method: 'string' },
  refresh: { token: 'string' },
  sub_refresh: { channel: 'string', token: 'string' },
  ping: {},
  send: {},
};
const positionFields: Record<string, ModelType> = { offset: 'uint', epoch: 'string' };
const connectSubFields: Record<string, ModelType> = { recover: 'boolean', epoch: 'string', offset: 'uint' };

function modelFits(v: unknown, type: ModelType): boolean {
  if (type === 'string' || type === 'boolean') return typeof v === type;
  if (type === 'object') return typeof v === 'object' && v !== null && !Array.isArray(v);
  return (
    typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER && (type === 'int' || v >= 0)
  );
}

/** The paths ("history.since.offset") of every ill-typed field the model sees; empty when the params are well-typed. */
function modelProblems(method: string, params: Record<string, unknown>): string[] {
  const bad: string[] = [];
  const check = (obj: Record<string, unknown>, fields: Record<string, ModelType>, where: string) => {
    for (const [k, type] of Object.entries(fields)) {
      const v = Object.hasOwn(obj, k) ? obj[k] : undefined;
      if (v !== undefined && v !== null && !modelFits(v, type)) bad.push(`${where}${k}`);
    }
  };
  check(params, modelFields[method] ?? {}, `${method}.`);
  if (bad.length > 0) return bad;
  const since = params.since;
  if (method === 'history' && since !== undefined && since !== null)
    check(since as Record<string, unknown>, positionFields, 'history.since.');
  const subs = params.subs;
  if (method === 'connect' && subs !== undefined && subs !== null) {
    for (const sub of Object.values(subs as Record<string, unknown>)) {
      if (!modelFits(sub, 'object')) bad.push('connect.subs entries');
      else check(sub as Record<string, unknown>, connectSubFields, 'connect.subs.');
    }
  }
  const headers = params.headers;
  if (method === 'connect' && headers !== undefined && headers !== null) {
    if (Object.values(headers as Record<string, unknown>).some((h) => typeof h !== 'string'))
      bad.push('connect.headers values');
  }
  return bad;
}

/** Each field mostly well-typed (so the checks behind it are reached), sometimes of any type. */
const wellOrAny = (typed: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 3, arbitrary: typed }, { weight: 1, arbitrary: value });
const uintish = fc.oneof(
  fc.nat(),
  fc.constant(Number.MAX_SAFE_INTEGER),
  fc.constant(-1),
  fc.constant(1.5),
  fc.constant(2 ** 53),
  fc.string({ maxLength: 3 }),
);
const intish = fc.oneof(fc.integer(), fc.constant(-(2 ** 53)), fc.constant(0.5), fc.constant('10'), fc.boolean());
const position = fc.record({ offset: uintish, epoch: wellOrAny(fc.string({ maxLength: 4 })) }, { requiredKeys: [] });
const fieldValue: Record<string, fc.Arbitrary<unknown>> = {
  channel: wellOrAny(fc.string({ maxLength: 6 })),
  token: wellOrAny(fc.string({ maxLength: 6 })),
  epoch: wellOrAny(fc.string({ maxLength: 4 })),
  method: wellOrAny(fc.string({ maxLength: 6 })),
  name: wellOrAny(fc.string({ maxLength: 6 })),
  version: wellOrAny(fc.string({ maxLength: 6 })),
  recover: wellOrAny(fc.boolean()),
  reverse: wellOrAny(fc.boolean()),
  offset: uintish,
  limit: intish,
  since: wellOrAny(position),
  subs: wellOrAny(
    fc.dictionary(
      fc.string({ maxLength: 4 }),
      wellOrAny(
        fc.record(
          { recover: wellOrAny(fc.boolean()), epoch: wellOrAny(fc.string({ maxLength: 4 })), offset: uintish },
          { requiredKeys: [] },
        ),
      ),
      { maxKeys: 3 },
    ),
  ),
  headers: wellOrAny(
    fc.dictionary(fc.string({ maxLength: 4 }), wellOrAny(fc.string({ maxLength: 4 })), { maxKeys: 3 }),
  ),
  data: value,
};
const paramsArb = fc
  .dictionary(fc.constantFrom(...Object.keys(fieldValue)), fc.constant(null), { maxKeys: 6 })
  .chain((shape) =>
    fc.record(
      Object.fromEntries(Object.keys(shape).map((k) => [k, fieldValue[k]!])) as Record<string, fc.Arbitrary<unknown>>,
    ),
  );

test('property: the params type check never throws and refuses exactly the params the model finds ill-typed (history limit and since, connect subs and headers included)', () => {
  // How often each nested check decided the outcome, so a generator that stops reaching one fails the test.
  const reached = {
    historyLimitBad: 0,
    historySinceOffsetBad: 0,
    historySinceGood: 0,
    connectSubsBad: 0,
    connectSubsGood: 0,
    subscribeOffsetBad: 0,
  };
  fc.assert(
    fc.property(fc.constantFrom(...COMMAND_METHODS), paramsArb, (method, params) => {
      const problem = paramsProblem(method, params);
      const bad = modelProblems(method, params);
      if (bad.length === 0) {
        assert.equal(problem, undefined, `${method} ${JSON.stringify(params)} is well-typed`);
      } else {
        assert.ok(problem !== undefined, `${method} ${JSON.stringify(params)} passed with ${bad.join(', ')} ill-typed`);
        assert.match(problem, /^bad request: /);
        // The message names the field (for subs, the entry's field after the channel in brackets).
        const named = problem
          .replace(/\[".*"\]/, '')
          .replace(/ must be .*$/, '')
          .replace(/^bad request: /, '');
        assert.ok(
          bad.some((b) => named.startsWith(b)),
          `"${problem}" names one of ${bad.join(', ')}`,
        );
      }
      if (method === 'history' && bad.includes('history.limit')) reached.historyLimitBad++;
      if (method === 'history' && bad.includes('history.since.offset')) reached.historySinceOffsetBad++;
      if (
        method === 'history' &&
        bad.length === 0 &&
        typeof params.since === 'object' &&
        params.since !== null &&
        Object.hasOwn(params.since, 'offset')
      )
        reached.historySinceGood++;
      if (method === 'connect' && bad.some((b) => b.startsWith('connect.subs'))) reached.connectSubsBad++;
      if (
        method === 'connect' &&
        bad.length === 0 &&
        typeof params.subs === 'object' &&
        params.subs !== null &&
        Object.keys(params.subs).length > 0
      )
        reached.connectSubsGood++;
      if (method === 'subscribe' && bad.includes('subscribe.offset')) reached.subscribeOffsetBad++;
    }),
    { numRuns: 6000 },
  );
  for (const [branch, n] of Object.entries(reached))
    assert.ok(n > 0, `the generator reached ${branch} (${JSON.stringify(reached)})`);
});
