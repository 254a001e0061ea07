// Heap after a full GC, measured the same way for every target: the target runs with `--inspect=127.0.0.1:<port>`
// and the orchestrator, over the inspector protocol, asks for a garbage collection (HeapProfiler.collectGarbage)
// and then reads process.memoryUsage() in the target (Runtime.evaluate). Nothing in the target's code changes.
import WebSocket from 'ws';

/** { rss, heapUsed, heapTotal, external, arrayBuffers } in KB, after two full GCs; bounded by `timeoutMs`. */
export async function memoryAfterGc(inspectPort, timeoutMs = 60_000) {
  const list = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json();
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${inspectPort}`);
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map();
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString());
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`inspector: ${JSON.stringify(m.error)}`));
    else p.resolve(m.result);
  });
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`inspector ${method} timed out`)), timeoutMs);
      pending.set(++id, {
        resolve: (v) => (clearTimeout(t), resolve(v)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const r = await call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    const m = JSON.parse(r.result.value);
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.round(v / 1024)]));
  } finally {
    ws.close();
  }
}

/**
 * A heap snapshot of the target summarized by constructor: Map name -> { size (self bytes), count }. With
 * `byRetainer`, the anonymous kinds (internal arrays, strings, numbers, plain objects and arrays) are split by what holds
 * them: `(array) <- Session.subs` names the first strong retainer's constructor and the edge's name.
 */
export async function heapByConstructor(inspectPort, timeoutMs = 120_000, { byRetainer = false } = {}) {
  const list = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json();
  const ws = new WebSocket(list[0].webSocketDebuggerUrl, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const chunks = [];
  const done = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('heap snapshot timed out')), timeoutMs);
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(m.params.chunk);
      else if (m.id === 2) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
  ws.send(JSON.stringify({ id: 2, method: 'HeapProfiler.takeHeapSnapshot', params: { reportProgress: false } }));
  await done;
  ws.close();
  const snap = JSON.parse(chunks.join(''));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((k) => f.indexOf(k));
  const out = new Map();
  const nodes = snap.nodes;
  const label = (i) => {
    const type = types[nodes[i + iType]];
    const name = type === 'object' || type === 'closure' ? snap.strings[nodes[i + iName]] : `(${type})`;
    return type === 'closure' ? `closure ${name}` : name;
  };
  /** node index -> the first strong retainer's "label.edge". */
  const retainer = new Map();
  if (byRetainer) {
    const ef = snap.snapshot.meta.edge_fields;
    const etypes = snap.snapshot.meta.edge_types[0];
    const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((k) => ef.indexOf(k));
    let e = 0;
    for (let i = 0; i < nodes.length; i += f.length) {
      const n = nodes[i + iEdges];
      for (let k = 0; k < n; k++, e += ef.length) {
        const et = etypes[snap.edges[e + eType]];
        if (et === 'weak' || et === 'shortcut') continue;
        const to = snap.edges[e + eTo];
        if (retainer.has(to)) continue;
        const nm =
          et === 'element' || et === 'hidden' ? `[${snap.edges[e + eName]}]` : snap.strings[snap.edges[e + eName]];
        retainer.set(to, `${label(i)}.${nm}`);
      }
    }
  }
  const anonymous = new Set([
    '(array)',
    '(string)',
    '(number)',
    '(hidden)',
    '(concatenated string)',
    'Object',
    'Array',
  ]);
  for (let i = 0; i < nodes.length; i += f.length) {
    let key = label(i);
    if (byRetainer && anonymous.has(key)) key = `${key} <- ${retainer.get(i) ?? '?'}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += nodes[i + iSize];
    e.count++;
    out.set(key, e);
  }
  return out;
}
