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

const hostileKey = fc.constantFrom('id', '__proto__', 'constructor', 'prototype', 'toString', ...COMMAND_METHODS, 'subscribe ', 'Subscribe', '');
const leaf = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null), fc.constant(-1), fc.constant(2 ** 32), fc.constant(1.5));
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.oneof(hostileKey, fc.string({ maxLength: 6 })), tie('v'), { maxKeys: 4 })),
})).v;
/** Command-shaped JSON text: an object whose keys are mostly methods and ids, with values of every type. */
const commandText = fc.oneof(
  fc.dictionary(hostileKey, value, { maxKeys: 4 }).map((o) => JSON.stringify(o)),
  fc.tuple(fc.constantFrom(...COMMAND_METHODS), fc.nat({ max: 2 ** 33 }), value).map(([m, id, p]) => `{"id":${id},"${m}":${JSON.stringify(p)}}`),
  fc.tuple(fc.constantFrom(...COMMAND_METHODS), fc.dictionary(fc.constantFrom('channel', 'token', 'recover', 'offset', 'epoch', 'data', 'limit', 'since', 'method', '__proto__'), value, { maxKeys: 4 })).map(([m, p]) => `{"id":1,"${m}":${JSON.stringify(p)}}`),
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

test('property: the params type check never throws, and what it passes has every known field of the right type', () => {
  const expect: Record<string, (v: unknown) => boolean> = {
    channel: (v) => typeof v === 'string', token: (v) => typeof v === 'string', epoch: (v) => typeof v === 'string', method: (v) => typeof v === 'string',
    recover: (v) => typeof v === 'boolean', reverse: (v) => typeof v === 'boolean',
  };
  fc.assert(
    fc.property(fc.constantFrom(...COMMAND_METHODS), fc.dictionary(fc.constantFrom('channel', 'token', 'recover', 'offset', 'epoch', 'limit', 'method', 'reverse', 'since', 'subs', 'data'), value, { maxKeys: 5 }), (method, params) => {
      const problem = paramsProblem(method, params);
      if (problem !== undefined) return assert.match(problem, /^bad request: /);
      const fieldsOf: Record<string, string[]> = {
        subscribe: ['channel', 'token', 'recover', 'epoch'], unsubscribe: ['channel'], publish: ['channel'], presence: ['channel'], presence_stats: ['channel'],
        history: ['channel', 'reverse'], rpc: ['method'], refresh: ['token'], sub_refresh: ['channel', 'token'], connect: ['token'], ping: [], send: [],
      };
      for (const f of fieldsOf[method] ?? []) {
        const v = params[f];
        if (v !== undefined && v !== null) assert.ok(expect[f]!(v), `${method}.${f} = ${JSON.stringify(v)} passed`);
      }
      if ((method === 'subscribe' || method === 'history') && params.offset !== undefined && params.offset !== null && method === 'subscribe') {
        assert.ok(Number.isSafeInteger(params.offset) && (params.offset as number) >= 0);
      }
    }),
    { numRuns: 3000 },
  );
});
