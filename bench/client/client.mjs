// The load client: one process, driven over IPC by run.mjs. It holds subscriber connections and one publisher
// connection per target and reports counts, latencies and its own CPU use (to show it is not the bottleneck).
import { performance } from 'node:perf_hooks';
import { signToken } from '../lib/jwt.mjs';
import { cpuUs } from '../lib/proc.mjs';
import { latencySummary } from '../lib/stats.mjs';
import { open, protocols } from './protocols.mjs';

const st = { delivered: 0, closed: 0, sample: null, after: null };
let subs = [];
let publisher = null; // { ws, proto, id, pool }: pool holds `count` connections, used in turn (default one)
const PAD = 'x'.repeat(60);

/** ~100-byte JSON payload carrying the publish time (ms, performance.now of this process). */
function payload(seq) {
  return `{"t":${performance.now().toFixed(3)},"s":${seq},"p":"${PAD}"}`;
}

function publish(channel, seq) {
  const ws = publisher.pool.length === 1 ? publisher.ws : publisher.pool[publisher.id % publisher.pool.length];
  publisher.proto.publish(ws, ++publisher.id, channel, payload(seq));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens n connections with at most `concurrency` handshakes in flight. With `ownChannelPrefix`, connection i
 * subscribes to `<prefix><first + i>` (`first` continues a previous batch). With `localAddresses`, connection i
 * binds to `localAddresses[i % length]` as its source address (loopback aliases: each has its own ~28k ports).
 */
async function connectMany({
  protocol,
  urls,
  n,
  channel,
  ownChannelPrefix,
  first = 0,
  localAddresses,
  concurrency = 200,
  userPrefix = 'u',
}) {
  const tokens = Array.from({ length: n }, (_, i) => signToken(`${userPrefix}${first + i}`));
  const cpu0 = cpuUs(process.pid);
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let firstError;
  const opened = [];
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const ch = ownChannelPrefix !== undefined ? `${ownChannelPrefix}${first + i}` : channel;
      try {
        const local = localAddresses?.[i % localAddresses.length];
        opened.push(await open(protocol, urls[i % urls.length], tokens[i], ch, st, local));
      } catch (err) {
        failed++;
        firstError ??= String(err?.message ?? err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const ms = performance.now() - t0;
  subs.push(...opened);
  return { opened: opened.length, failed, firstError, ms, clientCpuPct: (cpuUs(process.pid) - cpu0) / 10 / ms };
}

let sat = null;

function startSaturation({ channel, subscribers, window = 8 }) {
  const s = {
    channel,
    subscribers,
    window,
    sent: 0,
    base: st.delivered,
    running: true,
    lastProgress: performance.now(),
    seen: st.delivered,
  };
  sat = s;
  const pump = () => {
    if (!s.running) return;
    let o = s.sent * s.subscribers - (st.delivered - s.base);
    while (o < s.window * s.subscribers) {
      publish(channel, ++s.sent);
      o += s.subscribers;
    }
  };
  st.after = pump;
  // Re-check after every batch of deliveries; a watchdog restarts the loop if deliveries were lost.
  s.timer = setInterval(() => {
    if (st.delivered !== s.seen) {
      s.seen = st.delivered;
      s.lastProgress = performance.now();
    } else if (performance.now() - s.lastProgress > 250) {
      s.base = st.delivered - s.sent * s.subscribers; // forget what was lost
      s.lostResets = (s.lostResets ?? 0) + 1;
      s.lastProgress = performance.now();
    }
    pump();
  }, 2);
  pump();
}

/** Open-loop fixed rate: `rate` publications per second for `ms`; latency of every delivery. */
async function fixedRate({ channel, rate, ms, expectPerPub }) {
  const lat = [];
  st.sample = (t) => lat.push(performance.now() - t);
  const base = st.delivered;
  const cpu0 = cpuUs(process.pid);
  const t0 = performance.now();
  const total = Math.round((rate * ms) / 1000);
  for (let k = 0; k < total; k++) {
    const due = t0 + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    publish(channel, k);
  }
  const deadline = performance.now() + 3000;
  while (st.delivered - base < total * expectPerPub && performance.now() < deadline) await sleep(10);
  const elapsed = performance.now() - t0;
  st.sample = null;
  return {
    sent: total,
    received: st.delivered - base,
    ...latencySummary(lat),
    clientCpuPct: (cpuUs(process.pid) - cpu0) / 10 / elapsed,
  };
}

/** Closed-loop rounds: one publication to each of `n` channels, wait for all n deliveries, repeat for `ms`. */
async function rounds({ prefix, n, ms }) {
  const lat = [];
  st.sample = (t) => lat.push(performance.now() - t);
  const cpu0 = cpuUs(process.pid);
  const t0 = performance.now();
  let done = 0;
  let stalled = 0;
  while (performance.now() - t0 < ms) {
    const base = st.delivered;
    for (let i = 0; i < n; i++) publish(`${prefix}${i}`, done);
    // A round of n publications may take a while on a busy machine: 5 s plus 1 ms per publication (25 s at 20k).
    const deadline = performance.now() + 5000 + n;
    await new Promise((resolve) => {
      const check = () => {
        if (st.delivered - base >= n) return resolve();
        if (performance.now() > deadline) {
          stalled++;
          return resolve();
        }
        setImmediate(check);
      };
      check();
    });
    done++;
  }
  const elapsed = performance.now() - t0;
  st.sample = null;
  return {
    rounds: done,
    stalled,
    ms: elapsed,
    ...latencySummary(lat),
    clientCpuPct: (cpuUs(process.pid) - cpu0) / 10 / elapsed,
  };
}

const ops = {
  async connect(a) {
    return connectMany(a);
  },
  async publisher({ protocol, url, count = 1 }) {
    const pool = [];
    for (let k = 0; k < count; k++)
      pool.push(await open(protocol, url, signToken(`publisher${k || ''}`), undefined, st));
    publisher = { ws: pool[0], pool, proto: protocols[protocol], id: 0 };
    return {};
  },
  async fixed(a) {
    return fixedRate(a);
  },
  async rounds(a) {
    return rounds(a);
  },
  async satStart(a) {
    startSaturation(a);
    return {};
  },
  async mark() {
    return { delivered: st.delivered, sent: sat?.sent ?? 0, cpuUs: cpuUs(process.pid), t: performance.now() };
  },
  async satStop() {
    st.after = null;
    if (sat) {
      sat.running = false;
      clearInterval(sat.timer);
    }
    const r = { lostResets: sat?.lostResets ?? 0 };
    sat = null;
    await sleep(200);
    return r;
  },
  async closeAll() {
    for (const ws of subs) ws.terminate();
    for (const ws of publisher?.pool ?? []) ws.terminate();
    subs = [];
    publisher = null;
    return { closedByServer: st.closed };
  },
};

process.on('message', async ({ id, op, args }) => {
  try {
    const result = await ops[op](args ?? {});
    process.send({ id, ok: true, result });
  } catch (err) {
    process.send({ id, ok: false, error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
