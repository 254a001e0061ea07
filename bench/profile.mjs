#!/usr/bin/env node
// Profiles a Herald server under one bench workload: node --cpu-prof on the server, the bench's load client.
// Usage: node bench/profile.mjs connect|fanout|channels|fixed [outDir] [--client]
//   -> prints the top self-time functions, writes a .cpuprofile; with --client it profiles the load client instead
//      (to check that the client is not the bottleneck).
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startClient } from './lib/client-handle.mjs';
import { sleep } from './lib/proc.mjs';
import { startTarget } from './targets/index.mjs';

const args = process.argv.slice(2).filter((a) => a !== '--client');
const profileClient = process.argv.includes('--client');
const what = args[0] ?? 'connect';
const dir = args[1] ?? `/tmp/herald-prof-${Date.now()}`;
mkdirSync(dir, { recursive: true });
const t = await startTarget('herald', profileClient ? {} : { cpuProf: dir });
const c = await startClient(profileClient ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] } : {});
try {
  if (what === 'connect') {
    await c.call('connect', { protocol: t.protocol, urls: t.urls, n: 5000, channel: 'bench:storm' });
  } else if (what === 'fixed') {
    await c.call('connect', { protocol: t.protocol, urls: t.urls, n: 1000, channel: 'bench:fan' });
    await c.call('publisher', { protocol: t.protocol, url: t.urls[0] });
    console.log(
      JSON.stringify(await c.call('fixed', { channel: 'bench:fan', rate: 10, ms: 8000, expectPerPub: 1000 })),
    );
  } else if (what === 'channels') {
    await c.call('connect', { protocol: t.protocol, urls: t.urls, n: 2000, ownChannelPrefix: 'bench:own' });
    await c.call('publisher', { protocol: t.protocol, url: t.urls[0] });
    await c.call('rounds', { prefix: 'bench:own', n: 2000, ms: 5000 });
  } else {
    await c.call('connect', { protocol: t.protocol, urls: t.urls, n: 1000, channel: 'bench:fan' });
    await c.call('publisher', { protocol: t.protocol, url: t.urls[0] });
    await c.call('satStart', { channel: 'bench:fan', subscribers: 1000 });
    await sleep(5000);
    await c.call('satStop');
  }
} finally {
  await c.call('closeAll').catch(() => {});
  await c.stop();
  await t.stop();
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no profile written in ${dir}`);
const prof = JSON.parse(readFileSync(join(dir, file), 'utf8'));
const self = new Map();
const dt = new Map();
prof.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
let total = 0;
for (const n of prof.nodes) {
  const us = dt.get(n.id) ?? 0;
  total += us;
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules|packages)\//, '$1/')}:${cf.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + us);
}
console.log(`profile: ${join(dir, file)} (${(total / 1e6).toFixed(2)} s sampled)`);
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30))
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
