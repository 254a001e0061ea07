import { createHerald } from './dist/index.js';
import WebSocket from 'ws';
import { writeHeapSnapshot } from 'node:v8';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
const SECRET = 'walk-secret';
const herald = createHerald({ logger: false, env: { HERALD_TOKEN_SECRET: SECRET, HERALD_API_KEY: 'k' },
  fileConfig: { channel: { namespaces: [{ name: 'bench', allow_subscribe_for_client: true }] } } });
const addr = await herald.listen(0, '127.0.0.1');
const token = await new SignJWT({ sub: 'u12345' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
const ws = new WebSocket(`ws://127.0.0.1:${addr.port}/connection/websocket`);
ws.on('close', (c, r) => console.log('close', c, r.toString()));
await new Promise((r) => ws.on('open', r));
ws.send(JSON.stringify({ id: 1, connect: { token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: 'bench:heap-1' } }));
ws.on('message', (d) => console.log('msg', d.toString().slice(0, 200)));
await new Promise((r) => setTimeout(r, 500));
globalThis.gc?.();
const file = writeHeapSnapshot('/tmp/tools/walk.heapsnapshot');
const snap = JSON.parse(readFileSync(file, 'utf8'));
const m = snap.snapshot.meta;
const NF = m.node_fields.length, EF = m.edge_fields.length;
const nt = m.node_types[0], et = m.edge_types[0];
const nodes = snap.nodes, edges = snap.edges, strings = snap.strings;
const firstEdge = new Int32Array(nodes.length / NF + 1);
for (let i = 0, e = 0; i < nodes.length / NF; i++) { firstEdge[i] = e; e += nodes[i * NF + 4] * EF; }
firstEdge[nodes.length / NF] = edges.length;
const name = (i) => strings[nodes[i * NF + 1]];
const type = (i) => nt[nodes[i * NF]];
const size = (i) => nodes[i * NF + 3];
function* out(i) {
  for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
    const t = et[edges[e]]; const nm = edges[e + 1]; const to = edges[e + 2] / NF;
    yield [t, t === 'element' || t === 'hidden' ? nm : strings[nm], to];
  }
}
const target = process.argv[2] ?? 'Session';
const idx = [];
for (let i = 0; i < nodes.length / NF; i++) if (type(i) === 'object' && name(i) === target) idx.push(i);
console.log(target, 'count', idx.length);
const seen = new Set();
function walk(i, depth, label) {
  const pad = '  '.repeat(depth);
  console.log(`${pad}${label} -> ${type(i)} ${JSON.stringify(name(i)).slice(0, 50)} self=${size(i)}`);
  if (depth >= Number(process.argv[3] ?? 2) || seen.has(i)) return;
  seen.add(i);
  for (const [t, nm, to] of out(i)) {
    if (t === 'weak' || nm === 'map' || nm === '__proto__') continue;
    if (['node', 'transport'].includes(nm) && depth === 0 && target === 'Session') { console.log(`${pad}  .${nm} (skipped)`); continue; }
    walk(to, depth + 1, `${t}:${nm}`);
  }
}
for (const i of idx.slice(0, 1)) walk(i, 0, 'root');
ws.close(); await herald.close(); process.exit(0);
