// Faults that need no Redis: the outbox's Postgres down at start and lost mid-run (a throwaway cluster of our own,
// stopped and started under a running node), and SIGTERM under load. Herald runs as `herald serve` child processes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { throwawayOutboxDatabase } from '../outbox/nodes.js';
import { API_KEY, mintToken, startHerald, stopAll, waitFor, type HeraldProcess } from './support/herald-process.js';
import { rawUpgrade } from './support/raw-ws.js';

const cleanups: (() => unknown)[] = [];
after(async () => {
  await stopAll();
  for (const c of cleanups.reverse())
    await Promise.resolve()
      .then(c)
      .catch((err) => console.error('cleanup failed:', err));
});

/** A JSON-protocol client on `ws` that records publications per channel and its close code. */
async function subscriber(port: number, user: string, channels: string[]) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
  const got = new Map<string, unknown[]>(channels.map((c) => [c, []]));
  const ids = new Set<number>();
  const state = { closeCode: undefined as number | undefined };
  ws.on('message', (d) => {
    for (const l of d.toString().split('\n')) {
      if (!l) continue;
      const m = JSON.parse(l);
      if (m.id) ids.add(m.id);
      if (m.push?.pub) got.get(m.push.channel)?.push(m.push.pub.data);
    }
  });
  ws.on('close', (code) => (state.closeCode = code));
  ws.on('error', () => {});
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const cmds = [
    { id: 1, connect: { token: await mintToken(user) } },
    ...channels.map((channel, i) => ({ id: i + 2, subscribe: { channel } })),
  ];
  ws.send(cmds.map((c) => JSON.stringify(c)).join('\n'));
  await waitFor(() => ids.size === cmds.length, `${user} subscribed`);
  return { ws, got, state };
}

async function readyBody(h: HeraldProcess): Promise<{ status: number; outbox?: string }> {
  // The reasons behind a 503 are shown only with the API key (without it, only the names of the failed checks).
  const r = await fetch(`http://127.0.0.1:${h.port}/ready`, { headers: { 'x-api-key': API_KEY } }).catch(
    () => undefined,
  );
  if (!r) return { status: 0 };
  const body = (await r.json()) as { checks?: Record<string, string> };
  return { status: r.status, outbox: body.checks?.outbox };
}

test(
  'Postgres down at start and lost mid-run: /ready answers 503 while it is down, clients are still served, and the outbox resumes with every row published once, in order',
  { timeout: 90_000 },
  async (t) => {
    const db = await throwawayOutboxDatabase(cleanups);
    const { cluster, url, app } = db;
    const insert = (from: number, to: number) => db.insert(from, to, 'row');
    const pending = async () => Number((await app.query('SELECT count(*) AS n FROM herald_outbox')).rows[0].n);

    cluster.stop();
    const herald = await startHerald({
      env: {
        HERALD_DATABASE_URL: url,
        HERALD_OUTBOX_POLL_MS: '200',
        HERALD_OUTBOX_BATCH_SIZE: '10',
        HERALD_LOG_LEVEL: 'warn',
      },
      waitFor: 'health',
    });
    const down1 = await waitFor(async () => {
      const r = await readyBody(herald);
      return r.status === 503 && /not reachable/.test(r.outbox ?? '') ? r : false;
    }, '/ready 503 naming the unreachable outbox database at start');
    assert.equal(await herald.status('/health'), 200, '/health stays 200: the process is alive');
    const sub = await subscriber(herald.port, 'watcher', ['row0', 'row1', 'side']);

    cluster.start();
    await waitFor(async () => (await readyBody(herald)).status === 200, '/ready 200 once Postgres is up', 20_000);
    await insert(0, 100);
    const count = () => sub.got.get('row0')!.length + sub.got.get('row1')!.length;
    await waitFor(() => count() === 100, 'the first 100 rows delivered', 20_000);
    // Stop only once their deletes committed: a stop between publish and commit re-delivers (at least once, by design).
    await waitFor(async () => (await pending()) === 0, 'the first 100 rows deleted');

    const lostAt = performance.now();
    cluster.stop('immediate');
    const down2 = await waitFor(
      async () => {
        const r = await readyBody(herald);
        return r.status === 503 && /not reachable/.test(r.outbox ?? '') ? r : false;
      },
      '/ready 503 while Postgres is down mid-run',
      15_000,
    );
    const noticedMs = performance.now() - lostAt;
    assert.equal(await herald.status('/health'), 200);
    // The node keeps serving its clients while the database is away.
    assert.equal((await herald.api('publish', { channel: 'side', data: { during: 'outage' } })).status, 200);
    await waitFor(() => sub.got.get('side')!.length === 1, 'a publication during the outage delivered');
    assert.equal((await readyBody(herald)).status, 503, 'still 503 while Postgres stays down');

    const restartAt = performance.now();
    cluster.start();
    await insert(100, 200);
    await waitFor(async () => (await readyBody(herald)).status === 200, '/ready 200 again after the restart', 20_000);
    const readyAgainMs = performance.now() - restartAt;
    await waitFor(() => count() === 200, 'rows inserted after the restart delivered', 20_000);
    await waitFor(async () => (await pending()) === 0, 'outbox drained');

    for (const [ch, parity] of [
      ['row0', 0],
      ['row1', 1],
    ] as const) {
      const ns = sub.got.get(ch)!.map((d) => (d as { n: number }).n);
      const want = Array.from({ length: 100 }, (_, i) => i * 2 + parity);
      assert.deepEqual(ns, want, `${ch}: every row once, in id order`);
    }
    assert.equal(sub.state.closeCode, undefined, 'the subscriber was never disconnected');
    assert.equal(herald.child.exitCode, null);
    t.diagnostic(
      `at start: "${down1.outbox}"; mid-run 503 after ${Math.round(noticedMs)} ms ("${down2.outbox}"); /ready 200 again ${Math.round(readyAgainMs)} ms after restart`,
    );
  },
);

test(
  'SIGTERM under load: every client is closed with 3001, upgrades during the drain get 503, and the process exits 0 well before the deadline',
  { timeout: 60_000 },
  async (t) => {
    const deadlineMs = 10_000;
    const herald = await startHerald({ env: { HERALD_SHUTDOWN_TIMEOUT: `${deadlineMs}ms`, HERALD_COMMAND_RATE: '0' } });
    const clients: Awaited<ReturnType<typeof subscriber>>[] = [];
    for (let i = 0; i < 200; i += 20) {
      clients.push(
        ...(await Promise.all(Array.from({ length: 20 }, (_, k) => subscriber(herald.port, `user${i + k}`, ['load'])))),
      );
    }
    // One more client holds the drain open until the test lets it go: it stops reading after connecting, so it cannot
    // answer the server's close frame, and the drain waits for it. While it is held the process is provably still up
    // and draining, which is when the upgrades below are sent.
    const holder = await rawUpgrade(herald.port, { read: false });
    holder.send({ id: 1, connect: { token: await mintToken('holder') } });
    await waitFor(
      async () => (await herald.metrics()).get('herald_connections') === clients.length + 1,
      'every client and the holder connected',
    );
    // Load: four publishers in a loop until the process is gone.
    let publishing = true;
    let acked = 0;
    const publishers = Array.from({ length: 4 }, async () => {
      while (publishing) {
        const r = await herald.api('publish', { channel: 'load', data: { x: 'y'.repeat(200) } }).catch(() => undefined);
        if (r?.status === 200) acked++;
        else if (!r) await new Promise((res) => setTimeout(res, 5));
      }
    });
    await waitFor(
      () => acked >= 200 && clients.every((c) => c.got.get('load')!.length > 0),
      'publications flowing to every client',
    );

    const sentAt = performance.now();
    herald.child.kill('SIGTERM');
    // The drain log line is written after the signal was handled, in the same turn that stops accepting: every
    // upgrade sent after it is one the draining process answers.
    await waitFor(() => herald.logs.some((l) => /^draining/.test(String(l.msg ?? ''))), 'the drain log line');
    const duringDrain: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await rawUpgrade(herald.port);
      r.socket.destroy();
      duringDrain.push(r.status);
    }
    assert.equal(herald.child.exitCode, null, 'the process was still draining during every upgrade attempt');
    assert.deepEqual(duringDrain, [503, 503, 503, 503, 503], 'each upgrade during the drain is answered 503');
    const polite = clients.filter((c) => c.state.closeCode !== undefined).length;
    // Let the holder go: its connection ends, and the drain completes.
    holder.socket.destroy();
    const code = await herald.exited;
    const exitMs = performance.now() - sentAt;
    publishing = false;
    await Promise.all(publishers);

    assert.equal(code, 0, `exit code 0 (stderr: ${herald.stderr().slice(-1000)})`);
    assert.ok(exitMs < deadlineMs, `exited within the ${deadlineMs} ms drain deadline (${Math.round(exitMs)} ms)`);
    await waitFor(() => clients.every((c) => c.state.closeCode !== undefined), 'every client saw its close');
    const codes = new Map<number, number>();
    for (const c of clients) codes.set(c.state.closeCode!, (codes.get(c.state.closeCode!) ?? 0) + 1);
    assert.deepEqual([...codes], [[3001, clients.length]], 'every client closed with 3001');
    assert.ok(
      !herald.logs.some((l) => /deadline passed/.test(l.msg ?? '')),
      'the drain finished without the hard deadline',
    );
    t.diagnostic(
      `${clients.length} clients (${polite} closed while the holder held the drain), ${acked} publications acked under load; 5 upgrades during the drain: 503; exit 0 after ${Math.round(exitMs)} ms`,
    );
  },
);

test(
  'SIGTERM with a client that never answers the close: while draining, upgrades get 503 and /ready 503 with /health 200; the client is cut at the deadline and the process exits 0',
  { timeout: 60_000 },
  async (t) => {
    const deadlineMs = 3000;
    const herald = await startHerald({ env: { HERALD_SHUTDOWN_TIMEOUT: `${deadlineMs}ms` } });
    const polite = await subscriber(herald.port, 'polite', ['news']);
    // Upgraded and connected, then never reads again: it cannot answer the server's close frame.
    const stuck = await rawUpgrade(herald.port, { read: false });
    stuck.send({ id: 1, connect: { token: await mintToken('stuck') } });
    await waitFor(async () => (await herald.metrics()).get('herald_connections') === 2, 'both clients connected');

    const sentAt = performance.now();
    herald.child.kill('SIGTERM');
    await waitFor(() => polite.state.closeCode !== undefined, 'the polite client closed');
    assert.equal(polite.state.closeCode, 3001);
    const upgrade = await rawUpgrade(herald.port);
    upgrade.socket.destroy();
    assert.equal(upgrade.status, 503, 'an upgrade during the drain is answered 503');
    assert.equal(await herald.status('/ready'), 503, '/ready says 503 while draining');
    assert.equal(await herald.status('/health'), 200, '/health still answers while draining');
    const code = await herald.exited;
    const exitMs = performance.now() - sentAt;
    assert.equal(code, 0);
    assert.ok(
      exitMs >= deadlineMs - 200,
      `the stuck client was waited for until the deadline (${Math.round(exitMs)} ms)`,
    );
    assert.ok(exitMs < deadlineMs + 2000, `exited before the hard deadline (${Math.round(exitMs)} ms)`);
    t.diagnostic(`drain with a stuck client: exit 0 after ${Math.round(exitMs)} ms (deadline ${deadlineMs} ms)`);
  },
);
