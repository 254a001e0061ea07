#!/usr/bin/env node
// Herald's own cost per client publication, without sockets: one HeraldNode (memory engine) in this process, N
// sessions over in-memory transports, each subscribed to its own channel, and a publisher session that sends one
// publish command per frame to each channel in turn (the `channels` scenario's load). The transports build each
// publication's bytes once as the real one does but write nowhere, so what is measured is Herald's
// publish path: decode, checks, engine, hub, encode, reply. Compare with the `channels` scenario's server CPU per
// delivery to see what the socket write (one syscall per delivery) adds.
// Usage: node bench/publish-path.mjs [--n 2000] [--rounds 60] [--namespace bench|benchh] [--engine memory|redis]
//        [--prof DIR]   (redis: BENCH_REDIS_URL or redis://127.0.0.1:6379, a key prefix of its own, removed after)
//   (run `npm run build` first; --prof writes a .cpuprofile of the measured rounds)
import { Session } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { heraldConfig } from './lib/herald-config.mjs';
import { BENCH_SECRET, signToken } from './lib/jwt.mjs';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '60' },
    namespace: { type: 'string', default: 'bench' },
    engine: { type: 'string', default: 'memory' },
    prof: { type: 'string' },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const ns = args.namespace;

const dist = new URL('../packages/server/dist/', import.meta.url);
const { loadConfig } = await import(new URL('config/index.js', dist).href);
const { createMemoryEngine } = await import(new URL('engine/memory/index.js', dist).href);
const { createRedisEngine } = await import(new URL('engine/redis/index.js', dist).href);
const { createLogger } = await import(new URL('logger.js', dist).href);
const { HeraldNode } = await import(new URL('node.js', dist).href);

const { warnings: _w, ...config } = loadConfig({
  env: { HERALD_TOKEN_SECRET: BENCH_SECRET, HERALD_COMMAND_RATE: '1000000' },
  fileConfig: heraldConfig,
});
const prefix = `herald-bench-pp-${process.pid}`;
const engine =
  args.engine === 'redis'
    ? createRedisEngine({ url: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', prefix })
    : createMemoryEngine();
const node = new HeraldNode({ config, engine, log: createLogger('silent', false), tickIntervalMs: 0 });
async function until(cond, what) {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

await node.running;
await until(() => engine.isReady(), 'engine ready');

let delivered = 0;
/** A round waits on this (no polling loop spending the CPU being measured). */
let waiter;
let replies = 0;
class NullTransport {
  remoteAddress = '127.0.0.1';
  send() {
    replies++;
  }
  sendShared(frame) {
    frame.bytes ??= Buffer.from(frame.text); // the frame's bytes, built once per publication as on a socket
    delivered++;
    if (waiter && delivered >= waiter.target) waiter.resolve();
  }
  pause() {}
  resume() {}
  close() {}
}

function open(user, channel) {
  const t = new NullTransport();
  const h = node.openSession(t, { headers: {}, remoteAddress: t.remoteAddress, url: '/connection/websocket' });
  const sub = channel ? `\n{"id":2,"subscribe":{"channel":${JSON.stringify(channel)}}}` : '';
  h.onFrame(`{"id":1,"connect":{"token":${JSON.stringify(signToken(user))}}}${sub}`);
  return h;
}

for (let i = 0; i < N; i++) open(`u${i}`, `${ns}:own${i}`);
const publisher = open('publisher');
await until(() => replies >= 2 * N + 1, 'connects and subscribes');

const data = JSON.stringify({ t: 0, s: 0, p: 'x'.repeat(60) });
const frames = Array.from(
  { length: N },
  (_, i) => `{"id":${i + 1},"publish":{"channel":"${ns}:own${i}","data":${data}}}`,
);
async function round() {
  const target = delivered + N;
  const done = new Promise((resolve) => (waiter = { target, resolve }));
  for (const f of frames) publisher.onFrame(f);
  const timer = setTimeout(() => waiter?.resolve(), 10_000);
  await done;
  clearTimeout(timer);
  waiter = undefined;
  if (delivered < target) throw new Error(`timed out: ${target - delivered} deliveries missing`);
}

for (let r = 0; r < 5; r++) await round(); // warm-up
let inspector;
if (args.prof) {
  inspector = new Session();
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.start');
}
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let r = 0; r < ROUNDS; r++) await round();
const c1 = process.cpuUsage(c0);
const wall = performance.now() - t0;
if (inspector) {
  const { profile } = await inspector.post('Profiler.stop');
  mkdirSync(args.prof, { recursive: true });
  const file = join(args.prof, `publish-path-${Date.now()}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  console.error(`profile: ${file}`);
}
const pubs = ROUNDS * N;
console.log(
  JSON.stringify({
    namespace: ns,
    engine: args.engine,
    channels: N,
    publications: pubs,
    cpu_us_per_publication: Math.round(((c1.user + c1.system) / pubs) * 100) / 100,
    wall_us_per_publication: Math.round(((wall * 1000) / pubs) * 100) / 100,
  }),
);
await node.close();
if (args.engine === 'redis') {
  // The run's keys (streams of benchh channels, meta): removed with a SCAN over the prefix.
  const { Redis } = await import('ioredis');
  const r = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await r.del(...keys);
  } while (cursor !== '0');
  await r.quit();
}
