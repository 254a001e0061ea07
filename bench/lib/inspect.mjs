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
