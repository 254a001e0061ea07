// docs/security.md, "Frames and messages", for the protobuf encoding: what a peer can send in binary frames on a
// `centrifuge-protobuf` WebSocket. A frame that is not protobuf (a truncated or over-long varint, a length past the
// frame, a group, a command without a method) closes the connection with 3501 and never throws out of Herald;
// unknown fields are skipped; payloads that are not JSON are a bad request (107) for their command only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import WebSocket from 'ws';
import type { Centrifuge } from 'centrifuge';
import { decodeProtobufFrame } from '../../src/protocol/protobuf/commands.js';
import { protobufPubPush, protobufReply } from '../../src/protocol/protobuf/replies.js';
import { decodeFrame } from '../../src/protocol/codec.js';
import { encodePubPush } from '../../src/protocol/replies.js';
import { Disconnect } from '../../src/protocol/codes.js';
import { api, mintToken, newClient, startHerald, waitFor, type TestServer } from '../support/herald.js';
import { securityChannels } from './common.js';
import { watchEscapes } from './escapes.js';

// An encoder written here from the protobuf encoding guide, independent of Herald's.
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const uint = (no: number, v: number) => [...varint(no * 8), ...varint(v)];
const len = (no: number, body: ArrayLike<number>) => [
  ...varint(no * 8 + 2),
  ...varint(body.length),
  ...Array.from(body),
];
const str = (no: number, s: string) => len(no, Buffer.from(s, 'utf8'));
const frameOf = (...commands: number[][]) => Buffer.from(commands.flatMap((c) => [...varint(c.length), ...c]));

/** Reply, Push and Publication as the SDK's library (protobufjs) reads them: the oracle for what Herald writes. */
const root = protobuf.parse(`syntax = "proto3";
message ClientInfo { string user = 1; string client = 2; bytes conn_info = 3; bytes chan_info = 4; }
message Publication { bytes data = 4; ClientInfo info = 5; uint64 offset = 6; map<string, string> tags = 7; bool delta = 8; }
message Push { string channel = 2; Publication pub = 4; }
message Reply { uint32 id = 1; Push push = 4; }
`).root;
const Reply = root.lookupType('Reply');

describe('the protobuf command decoder', () => {
  test('a publish command decodes to the same command as its JSON form, with unknown fields of every wire type skipped', () => {
    const unknown = [
      ...uint(99, 5),
      ...varint(98 * 8 + 1),
      ...[1, 2, 3, 4, 5, 6, 7, 8],
      ...str(97, 'x'),
      ...varint(96 * 8 + 5),
      ...[1, 2, 3, 4],
    ];
    const publish = [...str(1, 'chat'), ...unknown, ...str(2, '{"text":"hi"}')];
    const decoded = decodeProtobufFrame(frameOf([...uint(1, 7), ...unknown, ...len(7, publish)]));
    assert.deepEqual(decoded, {
      ok: true,
      commands: decodeFrame('{"id":7,"publish":{"channel":"chat","data":{"text":"hi"}}}'),
    });
  });

  test('map keys such as __proto__ in connect subs and headers become own entries and pollute nothing', () => {
    const entry = (key: string, value: number[]) => len(3, [...str(1, key), ...len(2, value)]);
    const header = (key: string, value: string) => len(6, [...str(1, key), ...str(2, value)]);
    const connect = [
      ...entry('__proto__', uint(7, 5)),
      ...entry('constructor', uint(3, 1)),
      ...header('__proto__', 'x'),
    ];
    const decoded = decodeProtobufFrame(frameOf([...uint(1, 1), ...len(4, connect)]));
    assert.ok(decoded.ok);
    const cmd = decoded.commands[0]!;
    assert.equal(cmd.kind, 'command');
    const params = (cmd as { params: { subs: object; headers: object } }).params;
    assert.deepEqual(Object.getOwnPropertyNames(params.subs), ['__proto__', 'constructor']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(params.subs, '__proto__')?.value, { offset: 5 });
    assert.deepEqual(Object.getOwnPropertyDescriptor(params.headers, '__proto__')?.value, 'x');
    assert.equal(({} as Record<string, unknown>).offset, undefined);
    assert.equal(Object.getPrototypeOf(params.subs), Object.prototype);
  });

  test('an empty command is a pong, as the empty JSON object is', () => {
    assert.deepEqual(decodeProtobufFrame(frameOf([])), { ok: true, commands: [{ kind: 'pong' }] });
  });

  const refused: [string, Buffer, string][] = [
    ['a varint cut by the end of the frame', Buffer.from([0x80]), 'bad request: truncated varint'],
    ['a varint of 11 bytes', Buffer.from([...Array(10).fill(0xff), 0x01]), 'bad request: varint longer than 10 bytes'],
    ['a length past the end of the frame', Buffer.from([5, 8, 1]), 'bad request: length past the end of the frame'],
    [
      'a field length past its command',
      frameOf([...uint(1, 1), 0x3a, 50]),
      'bad request: length past the end of the frame',
    ],
    ['a group (wire type 3)', frameOf([...uint(1, 1), 0x1b]), 'bad request: unsupported wire type 3'],
    ['a command with an id and no method', frameOf(uint(1, 3)), 'bad request: command has no method'],
    ['an id past 32 bits', frameOf([...uint(1, 2 ** 33), ...len(11, [])]), 'bad request: id is not a 32-bit integer'],
    [
      'a method field that is not length-delimited',
      frameOf([...uint(1, 1), ...uint(7, 1)]),
      'bad request: field 7 has the wrong wire type',
    ],
    [
      'a channel that is not UTF-8',
      frameOf([...uint(1, 1), ...len(7, len(1, [0xff]))]),
      'bad request: a string field is not UTF-8',
    ],
  ];
  for (const [what, bytes, message] of refused) {
    test(`${what} refuses the whole frame`, () => {
      assert.deepEqual(decodeProtobufFrame(bytes), { ok: false, message });
    });
  }

  test("data that are not UTF-8 JSON make their command a bad request (107) and leave the frame's other commands", () => {
    const decoded = decodeProtobufFrame(
      frameOf(
        [...uint(1, 1), ...len(7, [...str(1, 'a'), ...len(2, [0xff, 0x00])])],
        [...uint(1, 2), ...len(7, [...str(1, 'a'), ...str(2, 'not json')])],
        [...uint(1, 3), ...len(11, [])],
      ),
    );
    assert.ok(decoded.ok);
    assert.deepEqual(
      decoded.commands.map((c) => (c.kind === 'invalid' ? c.code : c.kind)),
      [107, 107, 'command'],
    );
  });

  test('data nested deeper than HERALD_MAX_JSON_DEPTH are a bad request (107)', () => {
    const deep = '['.repeat(70) + ']'.repeat(70);
    const decoded = decodeProtobufFrame(frameOf([...uint(1, 1), ...len(7, str(2, deep))]), 64);
    assert.ok(decoded.ok);
    assert.match(decoded.commands[0]!.kind === 'invalid' ? decoded.commands[0]!.message : '', /HERALD_MAX_JSON_DEPTH/);
  });

  test('random byte frames never throw out of the decoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        decodeProtobufFrame(bytes, 64);
      }),
      { numRuns: 20_000 },
    );
  });

  test('random mutations of valid frames never throw out of the decoder', () => {
    const valid = frameOf(
      [
        ...uint(1, 1),
        ...len(4, [...str(1, 'token'), ...str(2, '{"a":[1,2]}'), ...len(3, [...str(1, 'ch'), ...len(2, uint(7, 5))])]),
      ],
      [...uint(1, 2), ...len(5, [...str(1, 'chat'), ...uint(3, 1), ...uint(7, 12), ...str(12, 'fossil')])],
      [...uint(1, 3), ...len(10, [...str(1, 'chat'), ...uint(7, 10), ...len(8, [...uint(1, 3), ...str(2, 'e')])])],
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(valid.length),
        (edits, cut) => {
          const bytes = Buffer.from(valid.subarray(0, cut + 1));
          for (const [at, v] of edits) if (at < bytes.length) bytes[at] = v;
          decodeProtobufFrame(bytes, 64);
        },
      ),
      { numRuns: 20_000 },
    );
  });
});

describe("protobuf replies, read by protobufjs (the SDK's library)", () => {
  const pubArb = fc.record({
    data: fc.json({ maxDepth: 3 }),
    offset: fc.nat(),
    user: fc.string({ maxLength: 10 }),
    tags: fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
  });

  test('a publication push carries the JSON text of any data as its bytes, transcoded or encoded directly', () => {
    fc.assert(
      fc.property(pubArb, fc.string({ maxLength: 20 }), (p, channel) => {
        const pub = {
          data: p.data,
          offset: p.offset,
          info: { user: p.user, client: 'c1', connInfo: '{"n":1}' },
          tags: p.tags,
        };
        for (const bytes of [
          protobufReply(encodePubPush(JSON.stringify(channel), pub)),
          protobufPubPush(channel, pub),
        ]) {
          const reply = Reply.toObject(Reply.decodeDelimited(bytes), { longs: Number, defaults: false }) as any;
          assert.equal(reply.push.channel ?? '', channel);
          assert.equal(Buffer.from(reply.push.pub.data).toString('utf8'), p.data);
          assert.equal(reply.push.pub.offset ?? 0, p.offset);
          assert.equal(reply.push.pub.info.user ?? '', p.user);
          assert.equal(Buffer.from(reply.push.pub.info.connInfo).toString('utf8'), '{"n":1}');
          assert.deepEqual({ ...(reply.push.pub.tags ?? {}) }, { ...p.tags });
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('protobuf WebSocket connections with hostile frames', { timeout: 120_000 }, () => {
  let s: TestServer;
  const escapes = watchEscapes();
  before(async () => {
    s = await startHerald({ engineName: 'memory', config: securityChannels });
  });
  after(async () => {
    await s.close();
  });

  async function open(): Promise<WebSocket> {
    const ws = new WebSocket(s.wsUrl, 'centrifuge-protobuf');
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return ws;
  }
  const closed = (ws: WebSocket) =>
    new Promise<{ code: number; reason: string }>((r) =>
      ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
    );
  const connect = async () => frameOf([...uint(1, 1), ...len(4, str(1, await mintToken({ sub: 'fuzz' })))]);

  const bad: [string, Buffer | string, string][] = [
    ['a truncated varint', Buffer.from([0x80]), 'bad request: truncated varint'],
    ['an 11-byte varint', Buffer.from([...Array(10).fill(0xff), 0x01]), 'bad request: varint longer than 10 bytes'],
    ['a length past the frame', Buffer.from([100, 8, 1]), 'bad request: length past the end of the frame'],
    ['a command with no method', frameOf(uint(1, 9)), 'bad request: command has no method'],
    ['a text frame', '{"id":1,"connect":{}}', 'bad request: text frame on a protobuf connection'],
  ];
  for (const [what, data, reason] of bad) {
    test(`${what}, before or after connect, closes the connection with 3501 and says why`, async () => {
      for (const afterConnect of [false, true]) {
        const ws = await open();
        const done = closed(ws);
        if (afterConnect) {
          const replied = new Promise((r) => ws.once('message', r));
          ws.send(await connect());
          await replied;
        }
        ws.send(data);
        assert.deepEqual(await done, { code: Disconnect.badRequest.code, reason });
      }
    });
  }

  test('random binary frames on protobuf connections, before and after connect, never escape Herald, and an SDK client still works after them', async () => {
    const codes = new Set<number>(Object.values(Disconnect).map((d) => d.code));
    const connectFrame = await connect();
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 200 }), async (afterConnect, bytes) => {
        const ws = await open();
        const done = closed(ws);
        if (afterConnect) {
          const replied = new Promise((r) => ws.once('message', r));
          ws.send(connectFrame);
          await replied;
        }
        ws.send(bytes);
        const timeout = new Promise<'open'>((r) => setTimeout(() => r('open'), 30));
        const outcome = await Promise.race([done, timeout]);
        if (outcome !== 'open')
          assert.ok(codes.has(outcome.code), `close code ${outcome.code} is in the Disconnect table`);
        ws.terminate();
      }),
      { numRuns: 150 },
    );
    escapes.assertNothingEscaped('protobuf frames');
    const c: Centrifuge = newClient(s.wsUrl, { token: await mintToken({ sub: 'after' }) }, 'protobuf');
    c.connect();
    await c.ready(5000);
    const sub = c.newSubscription('after-fuzz');
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(new TextDecoder().decode(ctx.data as Uint8Array)));
    sub.subscribe();
    await sub.ready(5000);
    await api(s, 'publish', { channel: 'after-fuzz', data: { ok: true } });
    await waitFor(() => got.length === 1, 'a publication after the fuzz');
    assert.deepEqual(got, ['{"ok":true}']);
    c.disconnect();
  });
});
