#!/usr/bin/env node
// What HERALD_REDIS_MIN_REPLICAS=1 costs: publishes/s of the Redis engine on a private primary with one replica,
// without and with the shared WAIT, interleaved (0 1 0 1 0 1), same process, same Redis. Not part of `npm run bench`.
//   node bench/min-replicas.mjs [publishes per round, default 20000] [concurrency, default 64]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createRedisEngine } from '../packages/server/dist/engine/redis/index.js';

const perRound = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 64);

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const [p1, p2] = [await freePort(), await freePort()];
// --dir: the replica writes the snapshot it syncs from to disk; keep it out of the working tree.
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-wait-'));
const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--dir', dir];
const children = [
  spawn('redis-server', ['--port', String(p1), ...common], { stdio: 'ignore' }),
  spawn('redis-server', ['--port', String(p2), '--replicaof', '127.0.0.1', String(p1), ...common], { stdio: 'ignore' }),
];
try {
  await sleep(1000);
  const results = { 0: [], 1: [] };
  for (let round = 0; round < 3; round++) {
    for (const minReplicas of [0, 1]) {
      const engine = createRedisEngine({
        url: `redis://127.0.0.1:${p1}`,
        prefix: `bench-wait-${round}-${minReplicas}`,
        minReplicas,
      });
      for (let i = 0; i < 100 && !engine.isReady(); i++) await sleep(50);
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < perRound) {
            const n = next++;
            await engine.broker.publish(
              `ch${n % 100}`,
              { data: `{"n":${n}}` },
              { historySize: 100, historyTtlMs: 60_000 },
            );
          }
        }),
      );
      const secs = (performance.now() - started) / 1000;
      results[minReplicas].push(perRound / secs);
      await engine.close();
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[1];
  const [m0, m1] = [median(results[0]), median(results[1])];
  console.log(`publishes/s, ${perRound} per round, concurrency ${concurrency}, medians of 3 interleaved rounds:`);
  console.log(`  HERALD_REDIS_MIN_REPLICAS=0: ${Math.round(m0)} (${results[0].map(Math.round).join(', ')})`);
  console.log(`  HERALD_REDIS_MIN_REPLICAS=1: ${Math.round(m1)} (${results[1].map(Math.round).join(', ')})`);
  console.log(`  ratio with/without: ${(m1 / m0).toFixed(2)}`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
