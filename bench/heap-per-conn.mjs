#!/usr/bin/env node
// Where a target's memory per idle connection goes: starts the target (herald or ws-raw) with the inspector, takes a
// heap snapshot before and after N idle subscribed connections (the scale scenario's load client), and prints the
// growth per connection by constructor (self size, objects). Usage: node bench/heap-per-conn.mjs [herald|ws-raw] [N]
// [--by-retainer]: internal arrays, strings, numbers, plain objects and arrays split by what holds them.
import { fileURLToPath } from 'node:url';
import { startClient } from './lib/client-handle.mjs';
import { heapByConstructor } from './lib/inspect.mjs';
import { freePort, sleep, spawnNode, stopChild, waitPort } from './lib/proc.mjs';
import { BENCH_SECRET } from './lib/jwt.mjs';
import { configPath } from './scenarios/scale.mjs';
import { heraldMain, repoRoot } from './targets/index.mjs';

const byRetainer = process.argv.includes('--by-retainer');
const [target = 'herald', nArg = '5000'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const n = Number(nArg);
const port = await freePort();
const inspectPort = await freePort();
const herald = target === 'herald';
const env = herald
  ? {
      WS_PORT: String(port),
      HERALD_HOST: '127.0.0.1',
      HERALD_TOKEN_SECRET: BENCH_SECRET,
      HERALD_API_KEY: 'k',
      HERALD_LOG_LEVEL: 'warn',
      HERALD_CONFIG: configPath,
    }
  : { BENCH_SECRET };
const script = herald ? heraldMain : fileURLToPath(new URL('./targets/ws-raw-server.mjs', import.meta.url));
const child = spawnNode([`--inspect=127.0.0.1:${inspectPort}`, script, ...(herald ? ['serve'] : [String(port)])], {
  env: { ...env, NODE_ENV: 'production' },
  cwd: repoRoot,
  nofile: n + 1024,
});
const client = await startClient({ script: fileURLToPath(new URL('./client/scale-client.mjs', import.meta.url)) });
try {
  await waitPort(port, 30_000);
  await sleep(1000);
  const a = await heapByConstructor(inspectPort, undefined, { byRetainer });
  const url = herald ? `ws://127.0.0.1:${port}/connection/websocket` : `ws://127.0.0.1:${port}/`;
  const prefix = herald ? 'bench:heap-' : 'heap-';
  const r = await client.call(
    'connect',
    { protocol: herald ? 'herald' : 'raw', url, n, prefix, channels: Math.ceil(n / 100), addrs: ['127.0.0.201'] },
    600_000,
  );
  if (r.failed) throw new Error(`${r.failed} failed: ${r.firstError}`);
  await sleep(2000);
  const b = await heapByConstructor(inspectPort, undefined, { byRetainer });
  const rows = [...b.entries()]
    .map(([k, v]) => {
      const o = a.get(k) ?? { size: 0, count: 0 };
      return [k, (v.size - o.size) / n, (v.count - o.count) / n];
    })
    .filter(([, s]) => Math.abs(s) >= 16)
    .sort((x, y) => y[1] - x[1]);
  const total = rows.reduce((s, [, x]) => s + x, 0);
  console.log(`${target}, ${n} connections: heap growth by constructor, bytes and objects per connection`);
  for (const [k, s, c] of rows.slice(0, byRetainer ? 80 : 40))
    console.log(`${s.toFixed(0).padStart(7)} B ${c.toFixed(2).padStart(6)}  ${k}`);
  console.log(`${total.toFixed(0).padStart(7)} B total (rows of 16 B or more)`);
} finally {
  await client.call('closeAll').catch(() => {});
  await client.stop();
  await stopChild(child);
}
