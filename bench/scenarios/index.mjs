// The scenarios. Each trial starts its target fresh, drives it from a fresh load client, and returns metrics.
import { startClient } from '../lib/client-handle.mjs';
import { redisSample } from '../lib/redis.mjs';
import { cpuUs, cpuUsMany, fdHardLimit, rssKb, sleep } from '../lib/proc.mjs';
import { startTarget, TARGETS } from '../targets/index.mjs';

const SOURCE_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const r2 = (x) => Math.round(x * 100) / 100;
const r3 = (x) => Math.round(x * 1000) / 1000;

async function withTarget(name, opts, fn) {
  const target = await startTarget(name, opts);
  let client;
  try {
    client = await startClient();
    return await fn(target, client);
  } catch (err) {
    const stderr = target.stderr().trim();
    if (stderr) err.message += `\n--- ${name} stderr ---\n${stderr.slice(-1500)}`;
    throw err;
  } finally {
    await target.stop();
    if (client) await client.stop();
  }
}

function check(res, what) {
  if (res.failed > 0)
    throw new Error(`${what}: ${res.failed} of ${res.failed + res.opened} connections failed (${res.firstError})`);
  return res;
}

/** Saturation window: returns deliveries/s, server CPU µs per delivery, client CPU %. */
async function saturate(target, client, { channel, subscribers, ms, window = 8, redis }) {
  await client.call('satStart', { channel, subscribers, window });
  await sleep(Math.min(1000, ms / 3)); // warm up
  const m0 = await client.call('mark');
  const s0 = cpuUsMany(target.pids);
  const r0 = redis && redisSample(redis);
  await sleep(ms);
  const m1 = await client.call('mark');
  const s1 = cpuUsMany(target.pids);
  const r1 = redis && redisSample(redis);
  const stop = await client.call('satStop');
  const deliveries = m1.delivered - m0.delivered;
  const pubs = m1.sent - m0.sent;
  const wall = m1.t - m0.t;
  if (deliveries <= 0) throw new Error('no deliveries during saturation');
  return {
    deliveries_per_s: Math.round((deliveries / wall) * 1000),
    cpu_us_per_delivery: r3((s1 - s0) / deliveries),
    server_cpu_pct: r2((s1 - s0) / 10 / wall),
    client_cpu_pct: r2((m1.cpuUs - m0.cpuUs) / 10 / wall),
    pubs_per_s: Math.round((pubs / wall) * 1000),
    cpu_us_per_pub: r2((s1 - s0) / pubs),
    lost_resets: stop.lostResets,
    // With `redis`: Redis's CPU time and its publish-path commands per publication over the same window.
    ...(redis && {
      redis_us_per_pub: r2((r1.cpuUs - r0.cpuUs) / pubs),
      redis_cmd_us_per_pub: r2((r1.cmdUs - r0.cmdUs) / pubs),
      redis_calls_per_pub: r2((r1.calls - r0.calls) / pubs),
    }),
  };
}

/**
 * Connect storm: N connections with auth + subscribe, as fast as they are accepted. `connectClients` load client
 * processes (default 1; on two cores more clients only take CPU from the server) each open their share at once; the
 * rate is N over the longest client's window (each window starts after its tokens are signed).
 */
async function connectStorm(name, cfg) {
  return withTarget(name, {}, async (t, c) => {
    const extra = [];
    try {
      for (let k = 1; k < cfg.connectClients; k++) extra.push(await startClient());
      const clients = [c, ...extra];
      await sleep(300);
      const share = Math.ceil(cfg.connectN / clients.length);
      const s0 = cpuUsMany(t.pids);
      const b0 = cpuUsMany(t.backendPids);
      const rs = await Promise.all(
        clients.map((cl, k) =>
          cl.call('connect', {
            protocol: t.protocol,
            urls: t.urls,
            n: share,
            channel: `${t.channelPrefix}storm`,
            concurrency: Math.ceil(200 / clients.length),
            userPrefix: `c${k}-`,
          }),
        ),
      );
      const ms = Math.max(...rs.map((r) => r.ms));
      const s1 = cpuUsMany(t.pids);
      const b1 = cpuUsMany(t.backendPids);
      const opened = rs.reduce((a, r) => a + check(r, 'connect').opened, 0);
      const out = {
        conns_per_s: Math.round((opened / ms) * 1000),
        cpu_us_per_conn: Math.round((s1 - s0) / opened),
        client_cpu_pct: r2(rs.reduce((a, r) => a + (r.clientCpuPct * r.ms) / ms, 0)),
        load_clients: clients.length,
      };
      if (t.backendPids.length > 0) out.backend_cpu_us_per_conn = Math.round((b1 - b0) / opened);
      return out;
    } finally {
      for (const cl of extra) {
        await cl.call('closeAll').catch(() => {});
        await cl.stop();
      }
    }
  });
}

export const scenarios = {
  /**
   * 2. Fan-out: 1,000 subscribers on one channel; (a) fixed open-loop rate (10/s), latency and CPU/delivery; (a')
   * the same at 40/s; (b) saturation, CPU/delivery. `herald-protobuf` is the same server with the load client
   * speaking the protobuf encoding; `ws-preframed` frames each publication once for all sockets.
   */
  fanout: {
    targets: ['herald', 'herald-protobuf', 'ws-raw', 'ws-preframed', 'socketio'],
    async run(name, cfg) {
      return withTarget(name, {}, async (t, c) => {
        const subscribers = 1000;
        const channel = `${t.channelPrefix}fan`;
        check(await c.call('connect', { protocol: t.protocol, urls: t.urls, n: subscribers, channel }), 'fanout');
        await c.call('publisher', { protocol: t.protocol, url: t.urls[0] });
        await c.call('fixed', { channel, rate: cfg.fixedRate, ms: 500, expectPerPub: subscribers }); // warm-up
        const s0 = cpuUsMany(t.pids);
        const f = await c.call('fixed', { channel, rate: cfg.fixedRate, ms: cfg.fixedMs, expectPerPub: subscribers });
        const s1 = cpuUsMany(t.pids);
        if (f.received < f.sent * subscribers)
          throw new Error(`fixed rate: ${f.received} of ${f.sent * subscribers} deliveries arrived`);
        // The same at the second fixed rate (40/s = 40,000 deliveries/s), over the same window.
        const rate2 = cfg.fixedRate2;
        const s2 = cpuUsMany(t.pids);
        const g = await c.call('fixed', { channel, rate: rate2, ms: cfg.fixedMs, expectPerPub: subscribers });
        const s3 = cpuUsMany(t.pids);
        if (g.received < g.sent * subscribers)
          throw new Error(`fixed rate ${rate2}/s: ${g.received} of ${g.sent * subscribers} deliveries arrived`);
        const sat = await saturate(t, c, { channel, subscribers, ms: cfg.satMs });
        return {
          p50_ms: r3(f.p50),
          p99_ms: r3(f.p99),
          max_ms: r3(f.max),
          fixed_cpu_us_per_delivery: r3((s1 - s0) / f.received),
          fixed_client_cpu_pct: r2(f.clientCpuPct),
          p50_ms_40: r3(g.p50),
          p99_ms_40: r3(g.p99),
          fixed40_cpu_us_per_delivery: r3((s3 - s2) / g.received),
          fixed40_client_cpu_pct: r2(g.clientCpuPct),
          ...sat,
        };
      });
    },
  },

  /**
   * 1. Idle memory: N authenticated, subscribed, idle connections; server RSS growth per connection, and the growth
   * of the V8 heap used after a forced full GC (the heap probe, preloaded alike into every target) per connection.
   */
  idle: {
    targets: ['herald', 'ws-raw', 'socketio'],
    async run(name, cfg) {
      return withTarget(name, { heapProbe: true }, async (t, c) => {
        await sleep(500);
        const [heap0] = await t.heapAfterGc();
        const base = rssKb(t.pids[0]);
        const out = { rss_base_kb: base, heap_base_kb: r2(heap0.heapUsed / 1024) };
        let have = 0;
        for (const n of cfg.idleCounts) {
          const r = check(
            await c.call('connect', {
              protocol: t.protocol,
              urls: t.urls,
              n: n - have,
              channel: `${t.channelPrefix}idle`,
              userPrefix: `u${have}-`,
            }),
            'idle',
          );
          have = n;
          await sleep(cfg.settleMs);
          const rss = rssKb(t.pids[0]);
          out[n === 10000 ? 'rss_kb_per_conn' : `rss_kb_per_conn_${n / 1000}k`] = r2((rss - base) / n);
          out[`rss_kb_${n / 1000}k`] = rss;
          // After the RSS reading: the forced GC must not change what RSS shows.
          const [heap] = await t.heapAfterGc();
          out[n === 10000 ? 'heap_kb_per_conn' : `heap_kb_per_conn_${n / 1000}k`] = r2(
            (heap.heapUsed - heap0.heapUsed) / 1024 / n,
          );
          // `external` (Buffers and other memory outside the V8 heap that V8 knows of; includes arrayBuffers).
          out[`external_kb_per_conn_${n / 1000}k`] = r2((heap.external - heap0.external) / 1024 / n);
          out.client_cpu_pct = r2(r.clientCpuPct);
        }
        return out;
      });
    },
  },

  /**
   * 4. Connect storm: N connections with JWT auth + subscribe, as fast as they are accepted. `connectClients` load
   * client processes (default 1; on two cores more clients only take CPU from the server) each open their share at
   * once; the rate is N over the longest client's window (each window starts after its tokens are signed).
   */
  connect: {
    targets: ['herald', 'ws-raw', 'socketio'],
    run: (name, cfg) => connectStorm(name, cfg),
  },

  /**
   * 6. Connect storm through the connect proxy: the same storm without tokens, each connection authenticated by a
   * call to the app's connect proxy (a minimal Node HTTP backend in its own process), beside the JWT path. The
   * target's CPU per connection is Herald's; the backend's is reported apart.
   */
  'connect-proxy': {
    targets: ['herald', 'herald-connect-proxy'],
    run: (name, cfg) => connectStorm(name, cfg),
  },

  /**
   * 3. Many channels: N clients each on its own channel, one publication per channel per round; N = 2,000, then
   * 18,000 more connections for N = 20,000 (same processes). `herald-redis` is one Herald node on the Redis engine.
   */
  channels: {
    targets: ['herald', 'herald-redis', 'ws-raw', 'socketio'],
    async run(name, cfg) {
      return withTarget(name, {}, async (t, c) => {
        const prefix = `${t.channelPrefix}own-`;
        await c.call('publisher', { protocol: t.protocol, url: t.urls[0] });
        const out = {};
        let have = 0;
        for (const nominal of cfg.channelCounts) {
          // One process can hold no more sockets than its hard fd limit (the harness raises the soft limit to it):
          // the count is capped 200 below it, and the count used is reported (`channels_n_<nominal>`).
          const n = Math.min(nominal, fdHardLimit() - 200);
          check(
            await c.call(
              'connect',
              {
                protocol: t.protocol,
                urls: t.urls,
                n: n - have,
                ownChannelPrefix: prefix,
                first: have,
                // Beyond 2,000: source addresses 127.0.0.2–5, so the count never depends on how many of the
                // ~28k ephemeral ports of 127.0.0.1 other processes of the machine hold (every target alike).
                localAddresses: have > 0 ? SOURCE_ADDRESSES : undefined,
              },
              300_000,
            ),
            'channels',
          );
          have = n;
          await sleep(200);
          await c.call('rounds', { prefix, n, ms: 300 }); // warm-up
          const s0 = cpuUsMany(t.pids);
          const r = await c.call('rounds', { prefix, n, ms: cfg.roundsMs });
          const s1 = cpuUsMany(t.pids);
          if (r.stalled > 0) throw new Error(`${r.stalled} rounds lost deliveries at N=${n}`);
          const deliveries = r.rounds * n;
          // The 2,000-channel figures keep their historical names; other counts get a suffix.
          const sfx = nominal === 2000 ? '' : `_${nominal / 1000}k`;
          Object.assign(out, {
            [`channels_n${sfx || '_2k'}`]: n,
            [`rounds_per_s${sfx}`]: r2((r.rounds / r.ms) * 1000),
            [`deliveries_per_s${sfx}`]: Math.round((deliveries / r.ms) * 1000),
            [`cpu_us_per_delivery${sfx}`]: r3((s1 - s0) / deliveries),
            [`p50_ms${sfx}`]: r3(r.p50),
            [`p99_ms${sfx}`]: r3(r.p99),
            [`client_cpu_pct${sfx}`]: r2(r.clientCpuPct),
          });
        }
        return out;
      });
    },
  },

  /** 5. Multi-node: 2 nodes on Redis, subscribers split across them, publisher on node 1. */
  multinode: {
    targets: ['herald-redis', 'socketio-redis'],
    async run(name, cfg) {
      const redis = cfg.redis;
      return withTarget(name, { nodes: 2 }, async (t, c) => {
        const channel = `${t.channelPrefix}multi`;
        await c.call('publisher', { protocol: t.protocol, url: t.urls[0] });
        // Redis work per publication at the same publication rate with 100 and with 1,000 subscribers.
        const redisWork = async (subscribers) => {
          await c.call('fixed', { channel, rate: cfg.redisRate, ms: 300, expectPerPub: subscribers });
          const a = redisSample(redis);
          const f = await c.call('fixed', { channel, rate: cfg.redisRate, ms: cfg.redisMs, expectPerPub: subscribers });
          const b = redisSample(redis);
          return {
            cpu: r2((b.cpuUs - a.cpuUs) / f.sent),
            cmd: r2((b.cmdUs - a.cmdUs) / f.sent),
            calls: r2((b.calls - a.calls) / f.sent),
          };
        };
        check(
          await c.call('connect', { protocol: t.protocol, urls: t.urls, n: 100, channel, userPrefix: 'a' }),
          'multinode',
        );
        await sleep(200);
        const small = await redisWork(100);
        check(
          await c.call('connect', { protocol: t.protocol, urls: t.urls, n: 900, channel, userPrefix: 'b' }),
          'multinode',
        );
        await sleep(200);
        const big = await redisWork(1000);
        const f = await c.call('fixed', { channel, rate: cfg.fixedRate, ms: cfg.fixedMs, expectPerPub: 1000 });
        if (f.received < f.sent * 1000)
          throw new Error(`fixed rate: ${f.received} of ${f.sent * 1000} deliveries arrived`);
        const sat = await saturate(t, c, { channel, subscribers: 1000, ms: cfg.satMs });
        return {
          p50_ms: r3(f.p50),
          p99_ms: r3(f.p99),
          max_ms: r3(f.max),
          ...sat,
          redis_cmd_us_per_pub: big.cmd,
          redis_cmd_us_per_pub_100subs: small.cmd,
          redis_calls_per_pub: big.calls,
          redis_calls_per_pub_100subs: small.calls,
          redis_us_per_pub: big.cpu,
          redis_us_per_pub_100subs: small.cpu,
        };
      });
    },
  },

  /**
   * 7. Redis engine with history: the publish path's cost when every publication is also stored. 100 subscribers on
   * one channel, split evenly over 2 nodes on Redis (`herald` on the memory engine: 1 node), 8 publisher connections
   * on node 1 keeping 64 publications' deliveries outstanding (saturation with a window of 64). Server CPU (both nodes) per
   * publication and per delivery, publications/s, deliveries per server CPU second, and Redis's own work.
   */
  'redis-history': {
    targets: ['herald-redis-history', 'herald-redis', 'herald', 'socketio-redis'],
    async run(name, cfg) {
      const redis = cfg.redis;
      const subscribers = 100;
      const nodes = name === 'herald' ? 1 : 2;
      return withTarget(name, { nodes }, async (t, c) => {
        const channel = `${t.channelPrefix}hist`;
        check(
          await c.call('connect', { protocol: t.protocol, urls: t.urls, n: subscribers, channel }),
          'redis-history',
        );
        // 8 publisher connections on node 1, used in turn: Herald runs a connection's commands in order (a publish
        // on Redis waits for its round trip before the next command of that connection), so one connection would
        // keep one publication in flight whatever the window; 8 × 8 keeps 64 in flight for every target.
        await c.call('publisher', { protocol: t.protocol, url: t.urls[0], count: 8 });
        await sleep(200);
        await c.call('fixed', { channel, rate: 50, ms: 300, expectPerPub: subscribers }); // warm-up
        const sat = await saturate(t, c, {
          channel,
          subscribers,
          ms: cfg.satMs,
          window: 64,
          redis: TARGETS[name].redis ? redis : undefined,
        });
        const out = {
          pubs_per_s: sat.pubs_per_s,
          deliveries_per_s: sat.deliveries_per_s,
          cpu_us_per_pub: sat.cpu_us_per_pub,
          cpu_us_per_delivery: sat.cpu_us_per_delivery,
          deliveries_per_cpu_s: Math.round(1e6 / sat.cpu_us_per_delivery),
          server_cpu_pct: sat.server_cpu_pct,
          client_cpu_pct: sat.client_cpu_pct,
          nodes,
          lost_resets: sat.lost_resets,
        };
        if (sat.redis_us_per_pub !== undefined) {
          out.redis_us_per_pub = sat.redis_us_per_pub;
          out.redis_cmd_us_per_pub = sat.redis_cmd_us_per_pub;
          out.redis_calls_per_pub = sat.redis_calls_per_pub;
          // Herald's or the adapter's server CPU plus Redis's, per delivery: the whole deployment's cost.
          out.deliveries_per_cpu_s_with_redis = Math.round(
            1e6 / (sat.cpu_us_per_delivery + sat.redis_us_per_pub / subscribers),
          );
        }
        return out;
      });
    },
  },
};
