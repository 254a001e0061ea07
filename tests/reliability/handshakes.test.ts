// 10,000 sockets that never become sessions: silent TCP connections, upgrade requests whose headers trickle in and
// never end, and upgrades that never send `connect`. Herald (a `herald serve` child) must end every one of them on
// its timeouts, keep answering /health, serve a real client meanwhile, and give its file descriptors back.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import WebSocket from 'ws';
import { mintToken, startHerald, stopAll, waitFor, within } from './support/herald-process.js';

after(stopAll);

const flood = join(import.meta.dirname, 'support', 'idle-flood.ts');

/** One connect + subscribe + publish + receive on a real WebSocket; resolves with the round trip in ms. */
async function roundTrip(port: number, api: (m: string, b: unknown) => Promise<{ status: number }>): Promise<number> {
  const started = performance.now();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
  try {
    const lines: any[] = [];
    ws.on('message', (d) => {
      for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l));
    });
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    ws.send(
      JSON.stringify({ id: 1, connect: { token: await mintToken('live') } }) +
        '\n' +
        JSON.stringify({ id: 2, subscribe: { channel: 'live' } }),
    );
    await waitFor(() => lines.some((m) => m.id === 2), 'the live client subscribed', 15_000);
    assert.equal((await api('publish', { channel: 'live', data: { n: 1 } })).status, 200);
    await waitFor(() => lines.some((m) => m.push?.pub?.data?.n === 1), 'the live client got its publication', 15_000);
    return performance.now() - started;
  } finally {
    ws.terminate();
  }
}

test(
  '10,000 idle sockets and slow handshakes are all ended by the handshake and connect timeouts while /health keeps answering and a real client is served',
  { timeout: 120_000 },
  async (t) => {
    // The defaults (HERALD_HANDSHAKE_TIMEOUT and HERALD_CONNECT_TIMEOUT, 10 s): on an idle machine all 10,000 sockets
    // are open at once before the first is ended; a loaded one opens them more slowly (the overlap is reported).
    const timeoutMs = 10_000;
    const herald = await startHerald({ fdLimit: 65536 });
    const fdsBefore = herald.fds();
    const counts = { silent: 4000, trickle: 3000, upgraded: 3000 };
    const total = counts.silent + counts.trickle + counts.upgraded;
    const child = spawn(
      'bash',
      [
        '-c',
        'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        process.execPath,
        '--import',
        'tsx',
        flood,
        String(herald.port),
        String(counts.silent),
        String(counts.trickle),
        String(counts.upgraded),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const events: any[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => events.push(JSON.parse(l)));

    const health: { status: number; ms: number }[] = [];
    let probing = true;
    let peakFds = 0;
    const probe = (async () => {
      while (probing) {
        peakFds = Math.max(peakFds, herald.fds());
        const started = performance.now();
        const status = await herald.status('/health', 10_000);
        health.push({ status, ms: performance.now() - started });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const opened = await waitFor(
        () => events.find((e) => e.opened),
        `${total} sockets opened (${stderr.slice(-500)})`,
        45_000,
      );
      assert.equal(opened.openFailures, 0, 'every socket was accepted');
      const live = await roundTrip(herald.port, herald.api);
      const done = await waitFor(
        () => events.find((e) => e.done),
        `the server ended every socket (${stderr.slice(-500)})`,
        60_000,
      );
      probing = false;
      await probe;

      const s = done.done;
      for (const kind of ['silent', 'trickle', 'upgraded'] as const)
        assert.equal(s[kind].stillOpen, 0, `no ${kind} socket left open: ${JSON.stringify(s[kind])}`);
      const why = (kind: 'silent' | 'trickle' | 'upgraded') => `${kind}: ${JSON.stringify(s[kind])}`;
      assert.deepEqual(
        s.silent.statuses,
        { 408: counts.silent },
        `silent sockets are answered 408 and closed (${why('silent')})`,
      );
      assert.deepEqual(
        s.trickle.statuses,
        { 408: counts.trickle },
        `sockets trickling headers are answered 408 and closed (${why('trickle')})`,
      );
      assert.deepEqual(
        s.upgraded.statuses,
        { 101: counts.upgraded },
        `every upgrade is answered 101 (${why('upgraded')})`,
      );
      assert.deepEqual(
        s.upgraded.closeCodes,
        { 3502: counts.upgraded },
        'upgraded sockets that never send connect are closed with 3502',
      );
      // No socket ends long before its timeout (the client sees its connect a little after the server's accept on a busy
      // machine, hence half), and none outlives it by more than a generous margin (timeouts are checked every second).
      for (const kind of ['silent', 'trickle', 'upgraded'] as const) {
        assert.ok(
          s[kind].minLifetimeMs >= timeoutMs / 2,
          `${kind}: none ended before its timeout (${s[kind].minLifetimeMs} ms)`,
        );
        assert.ok(
          s[kind].maxLifetimeMs < timeoutMs + 15_000,
          `${kind}: all ended within 15 s of their timeout (${s[kind].maxLifetimeMs} ms)`,
        );
      }
      assert.ok(
        health.length > 0 && health.every((h) => h.status === 200),
        `/health answered 200 every time (${health.filter((h) => h.status !== 200).length} failures of ${health.length})`,
      );
      await waitFor(
        () => herald.fds() <= fdsBefore + 10,
        `Herald's file descriptors back near ${fdsBefore} (now ${herald.fds()})`,
        15_000,
      );
      assert.equal(herald.child.exitCode, null, 'the process stays up');
      const worstHealth = Math.max(...health.map((h) => h.ms));
      t.diagnostic(
        `${total} sockets opened in ${Math.round(opened.at)} ms; Herald fds ${fdsBefore} -> ${peakFds} at most (sockets open at once) -> ${herald.fds()}; ` +
          `lifetimes ms silent ${s.silent.minLifetimeMs}-${s.silent.maxLifetimeMs}, trickle ${s.trickle.minLifetimeMs}-${s.trickle.maxLifetimeMs}, ` +
          `upgraded ${s.upgraded.minLifetimeMs}-${s.upgraded.maxLifetimeMs}; /health ${health.length} probes, worst ${Math.round(worstHealth)} ms; ` +
          `live client round trip during the flood ${Math.round(live)} ms; RSS ${(herald.rss() / 2 ** 20).toFixed(0)} MiB`,
      );
    } finally {
      probing = false;
      child.kill('SIGKILL');
    }
  },
);

test('an upgrade on a path that is not a WebSocket path is answered 404 and closed instead of left open', async () => {
  const herald = await startHerald();
  const { rawUpgrade } = await import('./support/raw-ws.js');
  const raw = await rawUpgrade(herald.port, { path: '/not-a-websocket-path' });
  assert.equal(raw.status, 404);
  await within(raw.closed, 5000, 'the server closes the socket');
});
