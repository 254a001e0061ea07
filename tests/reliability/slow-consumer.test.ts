// A client that stops reading must cost the server at most its send-buffer cap: it is closed with 3008 while the
// others keep receiving everything, in order, and the Herald process's memory stays bounded. Herald runs as
// `herald serve` in a child process so its resident memory is measured on its own.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { mintToken, startHerald, stopAll, waitFor, within, type HeraldProcess } from './support/herald-process.js';
import { rawUpgrade, type RawSocket } from './support/raw-ws.js';

after(stopAll);

/** A subscriber that reads everything: the publications' `i` per channel, and when each arrived. */
async function fastSubscriber(port: number, channels: string[], user: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
  const got = new Map<string, number[]>(channels.map((c) => [c, []]));
  const arrivedAt = new Map<string, number>();
  let closeCode: number | undefined;
  const replies = new Set<number>();
  ws.on('message', (data) => {
    const now = performance.now();
    for (const line of data.toString().split('\n')) {
      if (!line) continue;
      const m = JSON.parse(line);
      if (m.id) replies.add(m.id);
      const pub = m.push?.pub;
      if (pub) {
        got.get(m.push.channel)!.push(pub.data.i);
        arrivedAt.set(`${m.push.channel}/${pub.data.i}`, now);
      }
    }
  });
  ws.on('close', (code) => (closeCode = code));
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const cmds = [
    { id: 1, connect: { token: await mintToken(user) } },
    ...channels.map((channel, k) => ({ id: k + 2, subscribe: { channel } })),
  ];
  ws.send(cmds.map((c) => JSON.stringify(c)).join('\n'));
  await waitFor(() => replies.size === cmds.length, `${user} connected and subscribed`);
  return { ws, got, arrivedAt, closeCode: () => closeCode };
}

/** A client that upgrades, connects, subscribes, and then never reads a byte. */
async function stalledSubscriber(port: number, channel: string, user: string): Promise<RawSocket> {
  const raw = await rawUpgrade(port, { read: false });
  assert.equal(raw.status, 101);
  raw.send({ id: 1, connect: { token: await mintToken(user) } }, { id: 2, subscribe: { channel } });
  return raw;
}

function metric(m: Map<string, number>, key: string): number {
  return m.get(key) ?? 0;
}

// `npm run soak` sets HERALD_SOAK_SLOW_MIB (MiB per channel, default 20) higher: the bound below does not grow with it.
const MIB_PER_CHANNEL = Number(process.env.HERALD_SOAK_SLOW_MIB ?? 20);
if (!Number.isInteger(MIB_PER_CHANNEL) || MIB_PER_CHANNEL < 20)
  throw new Error(`HERALD_SOAK_SLOW_MIB must be an integer >= 20, got ${process.env.HERALD_SOAK_SLOW_MIB}`);

test(
  `clients that stop reading while ${MIB_PER_CHANNEL} MB flows through each of their channels are closed with 3008; the others get every publication in order and Herald's memory stays bounded`,
  { timeout: 60_000 + MIB_PER_CHANNEL * 1500 },
  async (t) => {
    const channelCount = 16;
    const pubCount = MIB_PER_CHANNEL * 64;
    const payload = 'x'.repeat(16 * 1024); // 64 x 16 KiB per MiB: by default 20 MiB per channel, 320 MiB fanned out to the stalled clients
    const herald: HeraldProcess = await startHerald({
      env: { HERALD_MAX_SEND_BUFFER: String(1024 * 1024), HERALD_COMMAND_RATE: '0' },
    });
    const channels = Array.from({ length: channelCount }, (_, c) => `firehose${c}`);

    const stalled: RawSocket[] = [];
    for (const [c, channel] of channels.entries())
      stalled.push(await stalledSubscriber(herald.port, channel, `stalled${c}`));
    // Two readers per channel: each reads half the channels, so every channel has a stalled and a reading subscriber.
    const readers = [
      await fastSubscriber(
        herald.port,
        channels.filter((_, c) => c % 2 === 0),
        'reader-even',
      ),
      await fastSubscriber(
        herald.port,
        channels.filter((_, c) => c % 2 === 1),
        'reader-odd',
      ),
      await fastSubscriber(herald.port, channels, 'reader-all'),
    ];
    const expectedSubs = channelCount + (channelCount / 2) * 2 + channelCount;
    await waitFor(
      async () => metric(await herald.metrics(), 'herald_subscriptions') === expectedSubs,
      `${expectedSubs} subscriptions on the server`,
    );

    // Let the process settle before the baseline.
    await new Promise((r) => setTimeout(r, 300));
    const baseline = herald.rss();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, herald.rss())), 25);
    const healthStatuses: number[] = [];
    const prober = setInterval(() => void herald.status('/health', 10_000).then((s) => healthStatuses.push(s)), 250);

    const sentAt: number[] = [];
    try {
      for (let i = 0; i < pubCount; i++) {
        sentAt.push(performance.now());
        const r = await herald.api('broadcast', { channels, data: { i, payload } });
        assert.equal(r.status, 200, JSON.stringify(r.json).slice(0, 300));
        assert.ok(
          r.json.result?.responses?.every((x: any) => x.result),
          `broadcast ${i} accepted on every channel`,
        );
      }
      const lastSent = performance.now();
      for (const reader of readers) {
        await waitFor(
          () => [...reader.got.values()].every((list) => list.length >= pubCount),
          'every reader got every publication',
          30_000,
        );
      }
      const deliveredBy = performance.now();

      for (const reader of readers) {
        for (const [channel, list] of reader.got)
          assert.deepEqual(
            list,
            Array.from({ length: pubCount }, (_, i) => i),
            `${channel}: all ${pubCount} publications once, in order`,
          );
        assert.equal(reader.closeCode(), undefined, 'a reader was never disconnected');
      }
      await waitFor(
        async () => metric(await herald.metrics(), 'herald_disconnects_total{code="3008"}') === channelCount,
        `all ${channelCount} stalled clients closed with 3008`,
        20_000,
      );
      await waitFor(
        async () => metric(await herald.metrics(), 'herald_connections') === readers.length,
        'only the readers stay connected',
      );
      // The server ended the stalled sockets: reading what the kernel still holds reaches their end.
      for (const s of stalled) s.socket.on('data', () => {}).resume();
      await within(Promise.all(stalled.map((s) => s.closed)), 10_000, 'every stalled socket ended by the server');
      clearInterval(sampler);
      clearInterval(prober);
      peak = Math.max(peak, herald.rss());

      // "On time": the latest publication of all arrived within a bound no healthy server comes close to.
      let worst = 0;
      for (const reader of readers) {
        for (const [key, at] of reader.arrivedAt) worst = Math.max(worst, at - sentAt[Number(key.split('/')[1])]!);
      }
      assert.ok(
        worst < 10_000,
        `every publication reached the readers within 10 s of its publish (worst ${Math.round(worst)} ms)`,
      );
      assert.ok(
        healthStatuses.length > 0 && healthStatuses.every((s) => s === 200),
        `/health answered 200 throughout (${healthStatuses.join(',')})`,
      );

      // Unbounded queues would keep what the stalled clients did not take: about 16 x (20 MiB - what the kernel holds),
      // over 250 MiB. Capped at 1 MiB each they cost at most ~32 MiB before they are closed. On top of that, RSS holds
      // frames already written and not yet collected: V8 collects dead Buffers once enough external memory piles up
      // (Node 24's V8 lets ~64 MiB accumulate, Node 20's about half), whatever the volume. Hence 20 MiB per channel
      // and a 100 MiB bound: it holds for a capped server on both, and a server that queued for the stalled clients
      // is far past it.
      const growth = peak - baseline;
      assert.ok(
        growth < 100 * 1024 * 1024,
        `Herald's RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB (bounded by 100 MiB)`,
      );
      assert.equal(herald.child.exitCode, null, 'the process stays up');
      t.diagnostic(
        `RSS baseline ${(baseline / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB (+${(growth / 2 ** 20).toFixed(1)} MiB); ` +
          `${pubCount} x ${channelCount} publications sent in ${Math.round(lastSent - sentAt[0]!)} ms, all delivered ${Math.round(deliveredBy - lastSent)} ms after the last; worst latency ${Math.round(worst)} ms`,
      );
    } finally {
      clearInterval(sampler);
      clearInterval(prober);
      for (const r of readers) r.ws.terminate();
      for (const s of stalled) s.socket.destroy();
    }
  },
);
