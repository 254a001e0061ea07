// Two Herald nodes on a primary + replica watched by a Sentinel (REDIS_URL=redis+sentinel://…), all of the test's
// own. A failover under a running publisher: the nodes follow the new primary without a restart, publishes during
// the switch are refused (503 / error 100), and with HERALD_REDIS_MIN_REPLICAS=1 no acknowledged publication of the
// old epoch is missing for any subscriber. A subscriber may be told `recovered: false` only during the switch (a
// rewind of publications that were refused, not acknowledged, rotates the epoch), and then miss only what the new
// epoch held before it was told.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscriber, type TrackedSub } from './support/clients.js';
import { Redis } from 'ioredis';
import { newEpochOnly, storeLost } from './support/checker.js';
import { expectNothingLost } from './support/nothing-lost.js';
import { Cluster, type HeraldNode } from './support/nodes.js';
import { startPublisher } from './support/publisher.js';
import { startSentinelSet, type SentinelSet } from './support/sentinel.js';
import { sleep, waitFor } from './support/util.js';

describe('Herald nodes on Redis behind Sentinel', { timeout: 180_000 }, () => {
  let set: SentinelSet;
  let cluster: Cluster;
  let nodes: HeraldNode[];
  const subs: TrackedSub[] = [];
  const prefix = `herald-sentinel-${process.pid}`;

  before(async () => {
    set = await startSentinelSet();
    cluster = new Cluster(set.url, prefix, { HERALD_REDIS_MIN_REPLICAS: '1' });
    nodes = await Promise.all([cluster.start('a'), cluster.start('b')]);
  });
  let two: Cluster | undefined;
  after(async () => {
    for (const s of subs) s.client.disconnect();
    await cluster?.stop();
    await two?.stop();
    await set?.stop();
  });

  /**
   * Reads the replica at `port` every few ms until it is promoted: the last reading taken while it was still a
   * replica gives, per channel, the epoch and top offset it held. Anything at or below that offset is on the new
   * primary; only what lies above may have been acknowledged by the old primary and not replicated.
   */
  function watchReplica(port: number, metaPrefix: string, channels: string[]) {
    const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 20 }).on('error', () => {});
    let last: Map<string, { epoch: string; offset: number }> | undefined;
    let stopped = false;
    const done = (async () => {
      while (!stopped) {
        try {
          const m = r.multi().role();
          for (const ch of channels) m.hmget(`${metaPrefix}.meta.{${ch}}`, 'e', 's');
          const res = (await m.exec()) ?? [];
          const role = res[0]?.[1] as string[] | undefined;
          if (role?.[0] !== 'slave') break;
          last = new Map(
            channels.map((ch, i) => {
              const [e, o] = (res[i + 1]?.[1] ?? []) as (string | null)[];
              return [ch, { epoch: e ?? '', offset: Number(o ?? 0) }];
            }),
          );
        } catch {
          // Sentinel closes normal clients when it promotes the replica: read again (the role tells).
        }
        await sleep(3);
      }
      r.disconnect();
    })();
    return {
      async kept() {
        await done;
        if (!last) throw new Error(`no reading of the replica :${port} before its promotion`);
        return last;
      },
      stop() {
        stopped = true;
      },
    };
  }

  test('a Sentinel failover under load with HERALD_REDIS_MIN_REPLICAS=1: publishes during the switch are refused, the nodes follow the new primary without a restart, and nothing acknowledged is lost', async () => {
    const chans = ['room:sentinel-a', 'room:sentinel-b'];
    for (const [i, ch] of chans.entries()) {
      for (const node of nodes) subs.push(await subscriber(`u${i}-${node.name}`, ch, () => node.wsUrl));
    }
    let k = 0;
    const pub = startPublisher('sentinel', chans, () => nodes[k++ % 2], { intervalMs: 10 });
    await sleep(500);
    const faultAt = Date.now();
    const { from, to } = await set.failover();
    await waitFor(
      async () => (await Promise.all(nodes.map((n) => n.ready()))).every((s) => s === 200),
      'both nodes ready again',
      20_000,
    );
    const acksBefore = pub.stats.acks.length;
    await waitFor(() => pub.stats.acks.length > acksBefore + 20, 'publishes succeed on the new primary', 20_000);
    const resumedAt = Date.now();
    const stats = await pub.stop();
    const rewinds = nodes.reduce((n, node) => n + node.logs.filter((l) => l.code === 'stream_rewound').length, 0);
    await expectNothingLost(`failover :${from} -> :${to}`, stats, subs, {
      faultAt,
      excused: newEpochOnly({
        what: 'told during the switch (until 5 s after publishes succeed again), only of the new epoch',
        from: faultAt,
        until: resumedAt + 5000,
      }),
      // docs/security.md: publishes during the switch answer 503. WAIT answers within half of HERALD_REDIS_TIMEOUT.
      refused: 'some',
      refusedWithin: { from: faultAt, until: resumedAt },
      maxUnanswered: 0,
      note: `rewinds noticed ${rewinds}`,
      onProblems() {
        for (const s of subs)
          console.log(
            `# ${s.user}: ${s.events.map((e) => (e.type === 'pub' ? `${e.offset}:${e.id}` : `[sub ${e.epoch}:${e.offset} rec=${e.recovered} was=${e.wasRecovering}]`)).join(' ')}`,
          );
        for (const n of nodes)
          console.log(`# ${n.name} logs: ${JSON.stringify(n.logs.filter((l) => l.level >= 40).slice(-20))}`);
      },
    });
    // The nodes' connections are on the new primary, and the channels' history lives there.
    const clients = String(await set.command(to, 'CLIENT', 'LIST'));
    assert.equal((clients.match(/name=herald-commands/g) ?? []).length, 2, `both nodes' command connections on :${to}`);
    assert.equal(await set.command(to, 'EXISTS', `${prefix}.stream.{${chans[0]}}`), 1);
    for (const n of nodes) assert.ok(n.alive(), `node ${n.name} stayed up`);
  });

  test('a Sentinel failover under load without HERALD_REDIS_MIN_REPLICAS: publishes during the switch are refused, and a subscriber misses only acknowledged publications the replica did not have when it was promoted', async () => {
    const prefix2 = `${prefix}-async`;
    two = new Cluster(set.url, prefix2);
    const pair = await Promise.all([two.start('c'), two.start('d')]);
    const chans = ['room:async-a', 'room:async-b'];
    for (const [i, ch] of chans.entries()) {
      for (const node of pair) subs.push(await subscriber(`v${i}-${node.name}`, ch, () => node.wsUrl));
    }
    const mine = subs.slice(-4);
    let k = 0;
    const pub = startPublisher('async', chans, () => pair[k++ % 2], { intervalMs: 10 });
    await sleep(500);
    const primary = await set.primaryPort();
    const watch = watchReplica(
      set.ports.find((p) => p !== primary)!,
      prefix2,
      chans,
    );
    const faultAt = Date.now();
    const { from, to } = await set.failover();
    watch.stop();
    const kept = await watch.kept();
    await waitFor(
      async () => (await Promise.all(pair.map((n) => n.ready()))).every((s) => s === 200),
      'both nodes ready again',
      20_000,
    );
    const acksBefore = pub.stats.acks.length;
    await waitFor(() => pub.stats.acks.length > acksBefore + 20, 'publishes succeed on the new primary', 20_000);
    const resumedAt = Date.now();
    const stats = await pub.stop();
    await expectNothingLost(`failover without min replicas :${from} -> :${to}`, stats, mine, {
      faultAt,
      excused: storeLost({
        what: `only offsets above what the replica held at its promotion (${[...kept].map(([ch, p]) => `${ch} ${p.offset}`).join(', ')}), told until 5 s after publishes succeed again`,
        kept,
        from: faultAt,
        until: resumedAt + 5000,
      }),
      refused: 'some',
      refusedWithin: { from: faultAt, until: resumedAt },
      maxUnanswered: 0,
    });
    for (const n of pair) assert.ok(n.alive(), `node ${n.name} stayed up`);
  });
});
