import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeFrame } from '../src/protocol/codec.js';
import { encodePubPush, encodePublication } from '../src/protocol/replies.js';

test('a frame of newline-separated commands decodes in order, skipping blank lines', () => {
  const cmds = decodeFrame('{"id":1,"connect":{}}\n\n{"id":2,"subscribe":{"channel":"a"}}\n{}');
  assert.deepEqual(
    cmds.map((c) => c.kind),
    ['command', 'command', 'pong'],
  );
  assert.equal(cmds[1]!.kind === 'command' && cmds[1]!.method, 'subscribe');
});

test('malformed lines become invalid entries with a code, never exceptions', () => {
  const [a, b, c, d] = decodeFrame('{oops\n[1]\n{"id":3,"nope":{}}\n{"id":-1,"connect":{}}');
  assert.equal(a!.kind === 'invalid' && a!.code, 107);
  assert.equal(b!.kind === 'invalid' && b!.code, 107);
  assert.equal(c!.kind === 'invalid' && c!.code, 104);
  assert.equal(d!.kind === 'invalid' && d!.code, 107);
});

test('the decoder never throws on arbitrary input', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 500 }), (s) => {
      decodeFrame(s);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      for (const c of decodeFrame(JSON.stringify(v))) {
        if (c.kind === 'command') assert.equal(typeof c.params, 'object');
      }
    }),
    { numRuns: 2000 },
  );
});

test('a publication push embeds the payload JSON as is', () => {
  const text = encodePubPush('"news"', {
    offset: 7,
    data: '{"a":[1,2]}',
    info: { user: 'u', client: 'c', connInfo: '{"n":1}' },
    tags: { t: 'x' },
  });
  assert.deepEqual(JSON.parse(text), {
    push: {
      channel: 'news',
      pub: { data: { a: [1, 2] }, offset: 7, info: { user: 'u', client: 'c', conn_info: { n: 1 } }, tags: { t: 'x' } },
    },
  });
  assert.deepEqual(JSON.parse(encodePublication({ offset: 0, data: '1' })), { data: 1 });
});
