// The `scale` scenario (issue #17, target 3): N idle authenticated subscribed connections on one node (default
// 100,000; --scale-n), from several load client processes, each connection bound to one of several loopback source
// addresses (127.0.0.2, …) so one address's ephemeral port range is no limit. Server RSS growth per connection, as in
// `idle`. For `herald-redis` it then restarts the node under the connections: a publisher keeps publishing
// (acknowledged publications, one sequence per channel) while the node is stopped and started again on the same
// port; every client reconnects with the SDK's backoff and resubscribes with `recover: true` and the offset and
// epoch it last saw, and checks that it got every acknowledged publication of its channel exactly once.
// Not in the default scenario set (it takes minutes): `npm run bench -- --only scale`.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClient } from '../lib/client-handle.mjs';
import { memoryAfterGc } from '../lib/inspect.mjs';
import { BENCH_SECRET } from '../lib/jwt.mjs';
import { cpuUs, fdLimit, freePort, rssKb, sleep, spawnNode, stopChild, waitPort } from '../lib/proc.mjs';
import { startRedis } from '../lib/redis.mjs';
import { heraldMain, repoRoot } from '../targets/index.mjs';

const scaleClient = fileURLToPath(new URL('../client/scale-client.mjs', import.meta.url));
const wsRawServer = fileURLToPath(new URL('../targets/ws-raw-server.mjs', import.meta.url));
const r2 = (x) => Math.round(x * 100) / 100;
const log = (...a) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] scale:`, ...a);

/**
 * `benchr`: history and forced recovery (1,000 publications for 300 s: at the default 100 publications/s over N/100
 * channels, a client away for up to min(300 s, N/100 × 10 s) still recovers); `bench`: no history, as the other scenarios. */
export const configPath = join(os.tmpdir(), `herald-bench-scale-${process.pid}.json`);
writeFileSync(
  configPath,
  JSON.stringify({
    channel: {
      namespaces: [
        { name: 'bench', allow_subscribe_for_client: true, allow_publish_for_client: true },
        {
          name: 'benchr',
          allow_subscribe_for_client: true,
          history_size: 1000,
          history_ttl: '300s',
          force_recovery: true,
        },
      ],
    },
  }),
);

const TARGETS = {
  herald: { kind: 'herald', protocol: 'herald', prefix: 'bench:scale-' },
  'ws-raw': { kind: 'ws-raw', protocol: 'raw', prefix: 'scale-' },
  'herald-redis': { kind: 'herald', protocol: 'herald', prefix: 'benchr:scale-', redis: true, storm: true },
};

function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HERALD_') && !['REDIS_URL', 'WS_PORT', 'PORT', 'NODE_OPTIONS'].includes(k)) env[k] = v;
  return env;
}

let runCounter = 0;
let addrCounter = 0;
/** 2 … 254, then 2 again. */
const nextAddr = () => 2 + (addrCounter++ % 253);

/** TcpExt counters of the network namespace (accept queue overflows and drops), from /proc/net/netstat. */
function tcpExt() {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
  const keys = lines[i].split(' ');
  const vals = lines[i + 1].split(' ').map(Number);
  return Object.fromEntries(keys.map((k, j) => [k, vals[j]]));
}

/** One node of a target on a fixed port, restartable on the same port (Redis engine: the same prefix). */
async function startNode(def, { nofile, redisUrl }) {
  const port = await freePort();
  // The inspector, for the heap after GC (bench/lib/inspect.mjs); the same for every target.
  const inspectPort = await freePort();
  const env = { ...cleanEnv(), BENCH_SECRET, NODE_ENV: 'production' };
  let args;
  let path = '/';
  if (def.kind === 'herald') {
    Object.assign(env, {
      WS_PORT: String(port),
      HERALD_HOST: '127.0.0.1',
      HERALD_TOKEN_SECRET: BENCH_SECRET,
      HERALD_API_KEY: 'bench-api-key',
      HERALD_LOG_LEVEL: 'warn',
      HERALD_CONFIG: configPath,
      HERALD_NAME: `bench-scale-${process.pid}-${++runCounter}`,
    });
    if (def.redis)
      Object.assign(env, {
        HERALD_ENGINE: 'redis',
        REDIS_URL: redisUrl,
        HERALD_REDIS_PREFIX: `bench-scale-${process.pid}-${runCounter}`,
      });
    args = [`--inspect=127.0.0.1:${inspectPort}`, heraldMain, 'serve'];
    path = '/connection/websocket';
  } else {
    args = [`--inspect=127.0.0.1:${inspectPort}`, wsRawServer, String(port)];
  }
  const node = {
    port,
    inspectPort,
    url: `ws://127.0.0.1:${port}${path}`,
    base: `http://127.0.0.1:${port}`,
    child: undefined,
    stderr: '',
    async start() {
      const child = spawnNode(args, { env, cwd: repoRoot, label: def.kind, nofile });
      node.child = child;
      const exited = new Promise((_, reject) =>
        child.once('exit', (code) => reject(new Error(`${def.kind} exited with ${code}: ${child.stderrText()}`))),
      );
      await Promise.race([waitPort(port, 30_000), exited]);
      exited.catch(() => {});
    },
    get pid() {
      return node.child.pid;
    },
    /** Stops the process with `signal` (SIGKILL: a crash; SIGTERM: Herald's graceful shutdown, bounded). */
    async stop(signal = 'SIGTERM') {
      const c = node.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      node.stderr += c.stderrText();
      if (signal === 'SIGKILL') {
        const done = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await done;
      } else await stopChild(c, 15_000);
    },
  };
  await node.start();
  return node;
}

/** Sum of a field over clients' status. */
async function statusAll(clients) {
  const ss = await Promise.all(clients.map((cl) => cl.call('status')));
  return { up: ss.reduce((a, s) => a + s.up, 0), delivered: ss.reduce((a, s) => a + s.delivered, 0) };
}

async function run(name, cfg) {
  const def = TARGETS[name];
  const requested = cfg.scaleN ?? 100_000;
  const nofile = requested + 1024;
  let redis;
  let node;
  const clients = [];
  try {
    // The orchestrator's Redis when it started one (cfg.redis), else a private one for this trial; a key prefix per run.
    let redisUrl = cfg.redis ? `redis://127.0.0.1:${cfg.redis.port}` : undefined;
    if (def.redis && !redisUrl) {
      redis = await startRedis();
      if (!redis) throw new Error('no redis-server binary and no Redis at BENCH_REDIS_URL / 127.0.0.1:6379');
      redisUrl = redis.url;
    }
    node = await startNode(def, { nofile, redisUrl });
    // The fd limit the processes got: `ulimit -n` can only go up to the hard limit without CAP_SYS_RESOURCE. When the
    // server cannot hold N sockets, N is lowered to what it can (and the result says so).
    const serverFds = fdLimit(node.pid);
    let n = requested;
    if (serverFds < requested + 200) {
      n = Math.floor((serverFds - 200) / 100) * 100;
      log(`the server's fd limit is ${serverFds} (hard limit): N lowered from ${requested} to ${n}`);
    }
    const first = await startClient({ script: scaleClient, nofile });
    clients.push(first);
    await first.call('status'); // node runs (bash has exec'd it with its limit)
    const clientFds = fdLimit(first.pid);
    const perClient = Math.max(1000, clientFds - 200);
    const nClients = Math.max(cfg.scaleClients ?? 2, Math.ceil(n / perClient));
    for (let k = 1; k < nClients; k++) clients.push(await startClient({ script: scaleClient, nofile }));
    // Source addresses: ~28k ephemeral ports each (net.ipv4.ip_local_port_range 32768–60999), but bind() to port 0
    // scans the range for a free port, and in a crowded range (the previous trial's ports linger 60 s in TIME_WAIT)
    // it took 1.4 ms of kernel time per call, serializing the client. So: 5,000 connections per address, and every
    // trial takes addresses the previous trials did not use (127.0.0.2 … 127.0.0.254, then round again).
    const nAddrs = Math.max(2, Math.ceil(n / 5000));
    const addrs = Array.from({ length: nAddrs }, () => `127.0.0.${nextAddr()}`);
    const channels = Math.max(1, Math.ceil(n / 100));
    await sleep(1000);
    const gc0 = await memoryAfterGc(node.inspectPort);
    const base = rssKb(node.pid);
    const out = {
      n,
      n_requested: requested,
      server_fd_limit: serverFds,
      client_fd_limit: clientFds,
      load_clients: nClients,
      source_addrs: nAddrs,
      channels,
      rss_base_kb: base,
    };
    log(`${name}: ${n} connections, ${nClients} clients, ${nAddrs} source addresses, ${channels} channels`);

    const share = Math.ceil(n / nClients);
    const s0 = cpuUs(node.pid);
    const t0 = Date.now();
    const rs = await Promise.all(
      clients.map((cl, k) =>
        cl.call(
          'connect',
          {
            protocol: def.protocol,
            url: node.url,
            n: Math.min(share, n - k * share),
            first: k * share,
            prefix: def.prefix,
            channels,
            addrs,
            concurrency: Math.ceil(200 / nClients),
          },
          600_000,
        ),
      ),
    );
    const connectMs = Date.now() - t0;
    const failed = rs.reduce((a, r) => a + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} of ${n} connections failed (${rs.find((r) => r.failed)?.firstError})`);
    out.conns_per_s = Math.round((n / connectMs) * 1000);
    out.cpu_us_per_conn = Math.round((cpuUs(node.pid) - s0) / n);
    await sleep(cfg.scaleSettleMs ?? 5000);
    const rss = rssKb(node.pid);
    out.rss_kb = rss;
    out.rss_kb_per_conn = r2((rss - base) / n);
    const gc1 = await memoryAfterGc(node.inspectPort);
    out.heap_kb_per_conn = r2((gc1.heapUsed - gc0.heapUsed) / n);
    out.rss_gc_kb_per_conn = r2((gc1.rss - gc0.rss) / n);
    out.external_kb_per_conn = r2((gc1.external - gc0.external) / n);
    out.heap_used_kb = gc1.heapUsed;
    log(
      `${name}: ${n} connected in ${connectMs} ms; RSS ${rss} KB, ${out.rss_kb_per_conn} KB/conn; ` +
        `after GC: heap ${out.heap_kb_per_conn} KB/conn, RSS ${out.rss_gc_kb_per_conn} KB/conn`,
    );

    if (def.storm) Object.assign(out, await storm(node, clients, { n, channels, prefix: def.prefix, cfg }));
    return out;
  } catch (err) {
    const stderr = node ? (node.stderr + (node.child?.stderrText() ?? '')).trim() : '';
    if (stderr) err.message += `\n--- ${name} stderr ---\n${stderr.slice(-1500)}`;
    throw err;
  } finally {
    await node?.stop('SIGKILL');
    for (const cl of clients) {
      await cl.call('closeAll').catch(() => {});
      await cl.stop();
    }
    await redis?.stop();
  }
}

/**
 * The restart: publish (acknowledged, `rate`/s round-robin over the channels), stop the node (`signal`), start it on
 * the same port, wait (bounded) until every connection is back and subscribed, publish a little more, then check.
 */
async function storm(node, clients, { n, channels, prefix, cfg }) {
  const rate = cfg.scaleRate ?? 100;
  const signal = cfg.scaleSignal ?? 'SIGTERM';
  // The publisher in its own process, so that the reconnecting clients do not slow it down.
  const pubClient = await startClient({ script: scaleClient });
  try {
    return await stormWith(node, clients, pubClient, { n, channels, prefix, rate, signal, cfg });
  } finally {
    await pubClient.stop();
  }
}

async function stormWith(node, clients, pubClient, { n, channels, prefix, rate, signal, cfg }) {
  await pubClient.call('pubStart', { base: node.base, apiKey: 'bench-api-key', prefix, channels, rate });
  await sleep(3000);
  await Promise.all(clients.map((cl) => cl.call('arm')));
  const x0 = tcpExt();
  const tStop = Date.now();
  await node.stop(signal);
  const tDown = Date.now();
  await node.start();
  const tUp = Date.now();
  log(`node stopped (${signal}) in ${tDown - tStop} ms, listening again after ${tUp - tStop} ms`);
  const deadline = Date.now() + (cfg.scaleStormMaxMs ?? 300_000);
  let st = await statusAll(clients);
  let lastLog = Date.now();
  // Every ~5 s: seconds since the stop, connections back, server CPU % since the previous point.
  const timeline = [];
  let cpu0 = cpuUs(node.pid);
  while (st.up < n && Date.now() < deadline) {
    await sleep(250);
    st = await statusAll(clients);
    if (Date.now() - lastLog > 5000) {
      const cpu = cpuUs(node.pid);
      timeline.push([
        Math.round((Date.now() - tStop) / 1000),
        st.up,
        Math.round((cpu - cpu0) / 10 / (Date.now() - lastLog)),
      ]);
      cpu0 = cpu;
      log(`storm: ${st.up} of ${n} back after ${Math.round((Date.now() - tStop) / 1000)} s`);
      lastLog = Date.now();
    }
  }
  const tAll = Date.now();
  const x1 = tcpExt();
  const stormRss = rssKb(node.pid);
  await sleep(3000); // publications after everyone is back
  const p = await pubClient.call('pubStop', {}, 60_000);
  await sleep(3000); // deliveries drain
  const vs = await Promise.all(clients.map((cl) => cl.call('verify', { last: p.last, unacked: p.unacked }, 120_000)));
  const sum = (k) => vs.reduce((a, v) => a + v[k], 0);
  const out = {
    storm_s: r2((tAll - tStop) / 1000),
    storm_after_listen_s: r2((tAll - tUp) / 1000),
    restart_s: r2((tUp - tStop) / 1000),
    stop_s: r2((tDown - tStop) / 1000),
    storm_back: st.up,
    storm_complete: st.up >= n ? 1 : 0,
    refused_connects: sum('refused'),
    failed_connects: sum('errors'),
    connect_attempts: sum('attempts'),
    lost_pubs: sum('lost'),
    lost_conns: sum('lostConns'),
    dupe_pubs: sum('dupes'),
    out_of_order_pubs: sum('outOfOrder'),
    recovered_true: sum('recoveredTrue'),
    recovered_false: sum('recoveredFalse'),
    unrecovered_gap_pubs: sum('announcedGap'),
    not_back_conns: sum('notBackConns'),
    not_back_missing_pubs: sum('notBack'),
    recovered_pubs: sum('recoveredPubs'),
    pubs_acked: p.acked,
    pubs_unacked: p.unacked.length,
    pubs_refused: p.refused,
    unacked_missed: sum('unackedMissed'),
    deliveries: sum('delivered'),
    rss_kb_after_storm: stormRss,
    listen_overflows: x1.ListenOverflows - x0.ListenOverflows,
    listen_drops: x1.ListenDrops - x0.ListenDrops,
    timeline: JSON.stringify(timeline),
  };
  // What the stopped node said (Herald logs at warn: a missed shutdown deadline shows here).
  const stopLog = node.stderr
    .split('\n')
    .filter((l) => l.trim() && !/Debugger|inspector/.test(l))
    .join('\n');
  if (stopLog) out.stop_log = stopLog.slice(-600);
  const kinds = {};
  for (const v of vs) for (const [k, x] of Object.entries(v.errorKinds ?? {})) kinds[k] = (kinds[k] ?? 0) + x;
  out.connect_errors = JSON.stringify(kinds);
  const closes = {};
  for (const v of vs) for (const [k, x] of Object.entries(v.closeKinds ?? {})) closes[k] = (closes[k] ?? 0) + x;
  out.closes = JSON.stringify(closes);
  out.pub_failures = JSON.stringify(p.failures ?? {});
  const fe = vs.find((v) => v.firstError)?.firstError;
  if (fe) out.first_error = fe;
  const oo = vs.find((v) => v.firstOutOfOrder)?.firstOutOfOrder;
  if (oo) out.first_out_of_order = JSON.stringify(oo);
  const fl = vs.find((v) => v.firstLost)?.firstLost;
  if (fl) out.first_lost = JSON.stringify(fl);
  log(`storm: ${JSON.stringify(out)}`);
  return out;
}

/**
 * Issue #17, target 3, for the report's targets table: RSS per connection ≤ 1.1× ws-raw's at the same N, and a
 * restart every client came back from with no lost or duplicated acknowledged publication (worst repeat).
 */
function check(scen) {
  const m = (t, k) => scen?.[t]?.[k];
  const n = m('herald', 'n')?.median ?? m('herald-redis', 'n')?.median;
  const a = m('herald', 'rss_kb_per_conn')?.median;
  const b = m('ws-raw', 'rss_kb_per_conn')?.median;
  const r = Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : undefined;
  const parts = [
    {
      label: 'herald RSS/conn',
      against: 'ws-raw',
      op: '<=',
      factor: 1.1,
      ratio: r === undefined ? null : +r.toFixed(3),
      holds: r === undefined ? null : r <= 1.1,
    },
  ];
  const lost = m('herald-redis', 'lost_pubs')?.max;
  const dupes = m('herald-redis', 'dupe_pubs')?.max;
  const complete = m('herald-redis', 'storm_complete')?.min;
  const bad = Number.isFinite(lost) && Number.isFinite(dupes) ? lost + dupes : undefined;
  parts.push({
    against: 'lost + duplicated acknowledged publications in the restart, worst repeat',
    op: '',
    factor: '',
    ratio: bad ?? null,
    holds: bad === undefined ? null : bad === 0 && complete === 1,
  });
  if (complete !== undefined && complete !== 1)
    parts.push({ against: 'a restart did not bring every client back', op: '', factor: '', ratio: 0, holds: false });
  const asked = m('herald', 'n_requested')?.median ?? m('herald-redis', 'n_requested')?.median;
  const at =
    n === undefined || n >= 100_000
      ? ''
      : ` (measured at N = ${n}${asked !== undefined && n < asked ? `, not ${asked}: the fd limit` : ''})`;
  return {
    text: `#17 (3): 100k idle connections: RSS per connection ≤ 1.1× ws-raw; a restart loses nothing${at}`,
    metric: 'rss_kb_per_conn',
    parts,
  };
}

export const scale = {
  targets: ['herald', 'ws-raw', 'herald-redis'],
  run,
  check,
};
