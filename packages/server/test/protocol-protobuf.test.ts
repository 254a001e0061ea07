// Every reply and push Herald sends, transcoded to protobuf (protocol/protobuf/replies.ts) and read back by protobufjs
// (the library the SDK's protobuf build bundles) with the messages of client.proto (centrifugal/protocol a578daf7):
// the same message as the JSON text, field for field, with `bytes` fields holding the JSON text of their value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { protobufPubPush, protobufReply } from '../src/protocol/protobuf/replies.js';
import {
  EMPTY_RESULT,
  PING_FRAME,
  encodeConnectResult,
  encodeDisconnectPush,
  encodeError,
  encodeHistoryResult,
  encodeJoinPush,
  encodeLeavePush,
  encodeMessagePush,
  encodePresenceResultWithin,
  encodePresenceStatsResult,
  encodePubPush,
  encodePublicationListWithin,
  encodeRefreshResult,
  encodeReply,
  encodeRpcResult,
  encodeSubRefreshResult,
  encodeSubscribePush,
  encodeSubscribeResult,
  encodeUnsubscribePush,
} from '../src/protocol/replies.js';
import { fossilPublicationData } from '../src/protocol/fossil-delta.js';
import type { Publication } from '../src/engine/types.js';

const root = protobuf.parse(
  `syntax = "proto3";
message Error { uint32 code = 1; string message = 2; bool temporary = 3; }
message ClientInfo { string user = 1; string client = 2; bytes conn_info = 3; bytes chan_info = 4; }
message Publication { bytes data = 4; ClientInfo info = 5; uint64 offset = 6; map<string, string> tags = 7; bool delta = 8; }
message Join { ClientInfo info = 1; }
message Leave { ClientInfo info = 1; }
message Unsubscribe { uint32 code = 2; string reason = 3; }
message Subscribe { bool recoverable = 1; string epoch = 4; uint64 offset = 5; bool positioned = 6; bytes data = 7; }
message Message { bytes data = 1; }
message Disconnect { uint32 code = 1; string reason = 2; bool reconnect = 3; }
message Push { string channel = 2; Publication pub = 4; Join join = 5; Leave leave = 6; Unsubscribe unsubscribe = 7;
  Message message = 8; Subscribe subscribe = 9; Disconnect disconnect = 11; }
message SubscribeResult { bool expires = 1; uint32 ttl = 2; bool recoverable = 3; string epoch = 6;
  repeated Publication publications = 7; bool recovered = 8; uint64 offset = 9; bool positioned = 10; bytes data = 11;
  bool was_recovering = 12; bool delta = 13; }
message ConnectResult { string client = 1; string version = 2; bool expires = 3; uint32 ttl = 4; bytes data = 5;
  map<string, SubscribeResult> subs = 6; uint32 ping = 7; bool pong = 8; string session = 9; string node = 10; }
message RefreshResult { string client = 1; string version = 2; bool expires = 3; uint32 ttl = 4; }
message SubRefreshResult { bool expires = 1; uint32 ttl = 2; }
message PresenceResult { map<string, ClientInfo> presence = 1; }
message PresenceStatsResult { uint32 num_clients = 1; uint32 num_users = 2; }
message HistoryResult { repeated Publication publications = 1; string epoch = 2; uint64 offset = 3; }
message RPCResult { bytes data = 1; }
message Empty {}
message Reply { uint32 id = 1; Error error = 2; Push push = 4; ConnectResult connect = 5; SubscribeResult subscribe = 6;
  Empty unsubscribe = 7; Empty publish = 8; PresenceResult presence = 9; PresenceStatsResult presence_stats = 10;
  HistoryResult history = 11; Empty ping = 12; RPCResult rpc = 13; RefreshResult refresh = 14;
  SubRefreshResult sub_refresh = 15; }
`,
  { keepCase: true },
).root;
const Reply = root.lookupType('Reply');
const BYTES = new Set(['data', 'conn_info', 'chan_info']);

/** What protobufjs reads, with bytes as UTF-8 text. */
function read(bytes: Uint8Array): unknown {
  const walk = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const r = protobuf.Reader.create(bytes);
  const msg = Reply.decodeDelimited(r);
  assert.equal(r.pos, bytes.length, 'one whole length-delimited Reply');
  return walk(Reply.toObject(msg, { longs: Number }));
}

/** The JSON message as protobuf carries it: bytes fields as their JSON text, default values absent. */
function expected(json: string, fossil = false): unknown {
  const walk = (v: unknown, key: string, delta: boolean): unknown => {
    if (BYTES.has(key)) return delta && typeof v === 'string' ? v : JSON.stringify(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, '', delta));
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const d = delta || o.delta === true;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) {
        if (x === false || x === 0 || x === '' || (Array.isArray(x) && x.length === 0)) continue;
        out[k] = walk(x, k, d);
      }
      return out;
    }
    return v;
  };
  return walk(JSON.parse(json), '', fossil);
}

const info = { user: 'alice', client: 'c-1', connInfo: '{"name":"Alice 😀"}', chanInfo: '{"role":"admin"}' };
const pubs: Publication[] = [
  { data: JSON.stringify({ text: 'hi', n: 1.5, u: 'é\n' }), offset: 7, info, tags: { kind: 'chat', '': 'empty key' } },
  { data: '"just a string"', offset: 8 },
  { data: '[1,[2,[3]],{"a":null}]', offset: 0 },
];

const cases: [string, string][] = [
  ['ping', PING_FRAME],
  ['error with temporary', encodeError(3, { code: 100, message: 'internal server error', temporary: true })],
  ['error without id', encodeError(0, { code: 107, message: 'bad request: "x"' })],
  [
    'connect with server-side subs',
    encodeReply(
      1,
      'connect',
      encodeConnectResult({
        client: 'c-1',
        version: '0.1.0',
        pingSec: 25,
        expireAt: 2_000_000_100,
        nowSec: 2_000_000_000,
        data: '{"welcome":true}',
        emulation: { session: 's-1', node: 'n-1' },
        subs: [
          [
            'news',
            encodeSubscribeResult({
              expireAt: 0,
              nowSec: 0,
              recoverable: true,
              delta: false,
              position: { offset: 8, epoch: 'ep' },
              recovery: { recovered: true, publications: encodePublicationListWithin(pubs, 1e6) },
            }),
          ],
          ['plain', '{}'],
        ],
      }),
    ),
  ],
  ['refresh', encodeReply(2, 'refresh', encodeRefreshResult({ client: 'c', version: 'v', expireAt: 0, nowSec: 0 }))],
  ['sub_refresh', encodeReply(4, 'sub_refresh', encodeSubRefreshResult(1_000_030, 1_000_000))],
  ['unsubscribe', encodeReply(5, 'unsubscribe', EMPTY_RESULT)],
  ['publish', encodeReply(6, 'publish', EMPTY_RESULT)],
  ['ping reply', encodeReply(7, 'ping', EMPTY_RESULT)],
  ['presence', encodeReply(8, 'presence', encodePresenceResultWithin(new Map([['c-1', info]]), 1e6, 0)!.json)],
  ['presence_stats', encodeReply(9, 'presence_stats', encodePresenceStatsResult({ numClients: 3, numUsers: 2 }))],
  [
    'history',
    encodeReply(10, 'history', encodeHistoryResult(encodePublicationListWithin(pubs, 1e6)!, { offset: 8, epoch: 'e' })),
  ],
  ['rpc', encodeReply(11, 'rpc', encodeRpcResult('{"sum":3}'))],
  [
    'subscribe with data, position and a recovery that failed',
    encodeReply(
      12,
      'subscribe',
      encodeSubscribeResult({
        expireAt: 2_000_000_100,
        nowSec: 2_000_000_000,
        recoverable: true,
        delta: false,
        position: { offset: 0, epoch: 'ep' },
        recovery: { recovered: false },
        data: '{"hello":1}',
      }),
    ),
  ],
  [
    'subscribe with fossil delta and recovered patches',
    encodeReply(
      13,
      'subscribe',
      encodeSubscribeResult({
        expireAt: 0,
        nowSec: 0,
        recoverable: true,
        delta: true,
        position: { offset: 8, epoch: 'ep' },
        recovery: { recovered: true, publications: encodePublicationListWithin(pubs, 1e6, true) },
      }),
    ),
  ],
  ['pub push', encodePubPush('"chat"', pubs[0]!)],
  ['join push', encodeJoinPush('"chat"', info)],
  ['leave push', encodeLeavePush('"chat"', { user: '', client: 'c-2' })],
  ['unsubscribe push', encodeUnsubscribePush('chat', 2500, 'insufficient state')],
  [
    'subscribe push',
    encodeSubscribePush(
      'chat',
      encodeSubscribeResult({
        expireAt: 0,
        nowSec: 0,
        recoverable: true,
        delta: false,
        position: { offset: 4, epoch: 'e' },
        data: '{"x":1}',
      }),
    ),
  ],
  ['message push', encodeMessagePush('{"m":[1,2]}')],
  ['disconnect push', encodeDisconnectPush({ code: 3501, reason: 'bad request' })],
];

for (const [name, json] of cases) {
  test(`the ${name} reply reads in protobuf as the same message with payloads as their JSON bytes`, () => {
    assert.deepEqual(read(protobufReply(json)), expected(json));
  });
}

test('the ping is an empty Reply: the single byte 0', () => {
  assert.deepEqual([...protobufReply(PING_FRAME)], [0]);
});

test('a publication push built from the publication reads as the transcoded one, fossil payloads and patches unquoted', () => {
  for (const pub of pubs) {
    assert.deepEqual(read(protobufPubPush('chat', pub)), read(protobufReply(encodePubPush('"chat"', pub))));
  }
  const prev = pubs[0]!;
  const next = { ...prev, data: JSON.stringify({ text: 'hi there', n: 1.5, u: 'é\n' }), offset: 8 };
  for (const base of [undefined, prev.data]) {
    const fossil = fossilPublicationData(base, next.data);
    const json = encodePubPush('"chat"', next, fossil);
    const direct = protobufPubPush('chat', next, { data: JSON.parse(fossil.data) as string, delta: fossil.delta });
    assert.deepEqual(read(direct), read(protobufReply(json, true)));
    assert.deepEqual(read(direct), expected(json, true));
  }
});

test('payload bytes are the stored JSON text exactly, escapes and number forms as they were', () => {
  const pub = { data: '{"u":"\\u00e9","n":1e3,"s":[ 1 ]}', offset: 1 };
  for (const bytes of [protobufPubPush('c', pub), protobufReply(encodePubPush('"c"', pub))]) {
    assert.equal((read(bytes) as { push: { pub: { data: string } } }).push.pub.data, pub.data);
  }
});
