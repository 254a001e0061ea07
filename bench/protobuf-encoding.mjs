// Encoder choice for the protobuf client protocol (docs/protocol.md, "Encodings"): the hot message is a publication
// push, encoded once per publication per encoding; decoding a publish command is the hot path the other way.
// Compares Herald's transcoder (JSON text -> protobuf in one pass), a direct hand encoder, protobufjs (reflection,
// the library the JS SDK bundles) and @bufbuild/protobuf's BinaryWriter (when installed: npm i --no-save @bufbuild/protobuf).
// Run after `npx tsc -b packages/server`: node bench/protobuf-encoding.mjs
import protobuf from 'protobufjs';
import { protobufPubPush, protobufReply } from '../packages/server/dist/protocol/protobuf/replies.js';
import { decodeProtobufFrame } from '../packages/server/dist/protocol/protobuf/commands.js';
import { encodePubPush } from '../packages/server/dist/protocol/replies.js';

let bufbuild;
try {
  bufbuild = await import(process.env.BUFBUILD_WIRE ?? '@bufbuild/protobuf/wire');
} catch {
  bufbuild = undefined;
}

// The subset of client.proto (centrifugal/protocol a578daf7) these messages need.
const root = protobuf.parse(`syntax = "proto3";
message ClientInfo { string user = 1; string client = 2; bytes conn_info = 3; bytes chan_info = 4; }
message Publication { bytes data = 4; ClientInfo info = 5; uint64 offset = 6; map<string, string> tags = 7; bool delta = 8; }
message Push { string channel = 2; Publication pub = 4; }
message Reply { uint32 id = 1; Push push = 4; }
message PublishRequest { string channel = 1; bytes data = 2; }
message Command { uint32 id = 1; PublishRequest publish = 7; }
`).root;
const Reply = root.lookupType('Reply');
const Command = root.lookupType('Command');

function payload(bytes) {
  const items = [];
  let s = '';
  for (let i = 0; s.length < bytes; i++) {
    items.push({ id: i, text: `message number ${i} with some text`, ok: i % 2 === 0 });
    s = JSON.stringify({ items });
  }
  return s;
}

const direct = protobufPubPush;

function viaBufbuild(channel, pub) {
  const w = new bufbuild.BinaryWriter();
  w.uint32(34).fork();
  w.uint32(18).string(channel);
  w.uint32(34).fork();
  w.uint32(34).bytes(Buffer.from(pub.data));
  w.uint32(42).fork().uint32(10).string(pub.info.user).uint32(18).string(pub.info.client).join();
  w.uint32(48).uint64(pub.offset);
  w.join().join();
  const body = w.finish();
  const out = new bufbuild.BinaryWriter();
  out.bytes(body);
  return out.finish();
}

function viaProtobufjs(channel, pub) {
  const msg = {
    push: {
      channel,
      pub: { data: Buffer.from(pub.data), info: { user: pub.info.user, client: pub.info.client }, offset: pub.offset },
    },
  };
  return Reply.encodeDelimited(msg).finish();
}

function time(name, n, fn) {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${name.padEnd(58)} ${(ns / 1000).toFixed(3)} µs`);
  return ns;
}

for (const size of [100, 2000]) {
  const data = payload(size);
  const channel = 'chat:room-42';
  const pub = { data, offset: 12345, info: { user: 'user-7', client: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' } };
  const json = encodePubPush(JSON.stringify(channel), pub);
  const n = size > 1000 ? 200_000 : 500_000;
  const ref = direct(channel, pub);
  for (const [name, b] of [
    ['transcoder', protobufReply(json)],
    ['protobufjs', viaProtobufjs(channel, pub)],
    ...(bufbuild ? [['bufbuild', viaBufbuild(channel, pub)]] : []),
  ]) {
    // Field order may differ (both are valid protobuf): compare what a decoder reads.
    const read = (x) => JSON.stringify(Reply.toObject(Reply.decodeDelimited(x), { bytes: String, longs: Number }));
    if (read(b) !== read(ref)) throw new Error(`${name} differs from the direct encoder`);
  }
  console.log(`\npublication push, data ${data.length} bytes (${ref.length} bytes of protobuf)`);
  time('JSON text (encodePubPush, what JSON subscribers get)', n, () => encodePubPush(JSON.stringify(channel), pub));
  time('Herald transcoder, from the JSON text', n, () => protobufReply(json));
  time('Herald hand encoder (protobufPubPush), from the publication', n, () => direct(channel, pub));
  time('protobufjs 7 (reflection), from the publication', n, () => viaProtobufjs(channel, pub));
  if (bufbuild) time('@bufbuild/protobuf BinaryWriter, from the publication', n, () => viaBufbuild(channel, pub));

  const cmd = Command.encodeDelimited({ id: 7, publish: { channel, data: Buffer.from(data) } }).finish();
  time('decode publish: Herald decoder (incl. JSON.parse of data)', n, () => decodeProtobufFrame(cmd, 64));
  time('decode publish: protobufjs + JSON.parse of data', n, () => {
    const r = protobuf.Reader.create(cmd);
    const c = Command.decodeDelimited(r);
    return JSON.parse(Buffer.from(c.publish.data).toString('utf8'));
  });
}
