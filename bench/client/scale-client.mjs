// The load client of the `scale` scenario (bench/scenarios/scale.mjs): one process of several, driven over IPC like
// client.mjs. It holds its share of N idle subscribed connections, each bound to one of several loopback source
// addresses (127.0.0.2, …: each address has its own ephemeral port range). For Herald it also plays the SDK's part in
// a restart: every connection that the server closes reconnects with the SDK's backoff (centrifuge-js: 500 ms +
// random up to min(20 s, 500 ms × 2^attempt)) and resubscribes with `recover: true` and the offset and epoch of the
// last publication it saw; each publication's payload carries the publisher's per-channel sequence number, so the
// client checks that it got every one exactly once. One client may also be the publisher (HTTP API, acknowledged
// publications only are counted as sent).
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { signToken } from '../lib/jwt.mjs';
import { cpuUs } from '../lib/proc.mjs';
import { LeanWebSocket } from './lean-ws.mjs';
import { open } from './protocols.mjs';

const OPEN_TIMEOUT_MS = 30_000;
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const st = { delivered: 0, closed: 0, sample: null, after: null };

/** Herald connections: { ws, ch (index), channel, token, addr, epoch, offset, lastSeq, up, attempt, downAt } */
const conns = [];
let raw = [];
const c = {
  reconnecting: false,
  url: '',
  dupes: 0,
  gaps: [], // [channelIndex, fromSeq, toSeq] of sequence numbers skipped by some connection (checked against acks)
  gapCount: 0,
  announcedGap: 0,
  outOfOrder: 0,
  recoveredTrue: 0,
  recoveredFalse: 0,
  recoveredPubs: 0,
  refused: 0, // TCP connection refused (the node is down)
  errors: 0, // anything else: upgrade refused, a Herald error or disconnect, a timeout
  firstError: undefined,
  attempts: 0,
  closedByServer: 0,
  up: 0,
  lastUpAt: 0,
  connectErrorsAtUp: 0,
};

/** Failed connection attempts by kind (the message without numbers, at most 200 characters). */
const errorKinds = new Map();
/** Closes of subscribed connections by code and reason (the restart's, and any after it). */
const closeKinds = new Map();

function noteError(err) {
  const msg = String(err?.message ?? err);
  if (/ECONNREFUSED/.test(msg)) c.refused++;
  else {
    c.errors++;
    c.firstError ??= msg;
  }
  const kind = msg
    .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '…')
    .replace(/\d+/g, 'N')
    .slice(0, 200);
  if (errorKinds.size < 50 || errorKinds.has(kind)) errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
}

/** A publication for connection `k` (payload `{"c":<channel index>,"s":<seq>,…}`, `offset` from Herald). */
function onPub(k, pub, src = 'push') {
  const s = pub.data?.s;
  if (pub.offset !== undefined) k.offset = pub.offset;
  if (typeof s !== 'number') return;
  st.delivered++;
  if (s <= k.lastSeq) {
    if (s === k.lastSeq) c.dupes++;
    else c.outOfOrder++;
    c.firstOutOfOrder ??= {
      channel: k.ch,
      seq: s,
      last: k.lastSeq,
      offset: pub.offset,
      src,
      msSinceSubscribed: Math.round(performance.now() - (k.upAt ?? 0)),
    };
    return;
  }
  if (s > k.lastSeq + 1) {
    if (k.announced) {
      // Herald said `recovered: false` (the outage outlasted the history): the client knows to reload; not silent.
      c.announcedGap += s - k.lastSeq - 1;
    } else {
      c.gapCount += s - k.lastSeq - 1;
      if (c.gaps.length < 100_000) c.gaps.push([k.ch, k.lastSeq + 1, s - 1]);
    }
  }
  k.announced = false;
  k.lastSeq = s;
}

function hello(k) {
  const connect = `{"id":1,"connect":{"token":${JSON.stringify(k.token)},"name":"bench"}}`;
  const sub =
    k.epoch !== undefined
      ? { channel: k.channel, recover: true, offset: k.offset, epoch: k.epoch }
      : { channel: k.channel };
  return `${connect}\n{"id":2,"subscribe":${JSON.stringify(sub)}}`;
}

/** One Herald connection attempt for `k`; resolves true once subscribed (recovered or not), false on failure. */
function heraldOpen(k) {
  return new Promise((resolve) => {
    let done = false;
    c.attempts++;
    const finish = (ok, err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) {
        noteError(err);
        k.ws.terminate();
      }
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false, new Error('handshake timeout')), OPEN_TIMEOUT_MS);
    const onText = (text) => {
      if (text === '{}') {
        k.ws.send('{}');
        return;
      }
      for (const line of text.split('\n')) {
        if (!line) continue;
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        if (m.push?.pub) {
          onPub(k, m.push.pub);
        } else if (m.error || m.disconnect) {
          if (!done) finish(false, new Error(`herald refused: ${line.slice(0, 200)}`));
        } else if (m.id === 2 && m.subscribe) {
          const r = m.subscribe;
          const wasRecovering = k.epoch !== undefined;
          if (wasRecovering) {
            if (r.recovered) c.recoveredTrue++;
            else {
              c.recoveredFalse++;
              k.announced = true;
            }
          }
          for (const pub of r.publications ?? []) {
            c.recoveredPubs++;
            onPub(k, pub, 'recovery');
          }
          if (r.epoch !== undefined) k.epoch = r.epoch;
          if (r.offset !== undefined) k.offset = r.offset;
          k.up = true;
          k.upAt = performance.now();
          k.attempt = 0;
          c.up++;
          c.lastUpAt = performance.now();
          finish(true);
        }
      }
    };
    k.ws = new LeanWebSocket(
      c.url,
      {
        onOpen: () => k.ws.send(hello(k)),
        onMessage: onText,
        onClose: (code, reason) => {
          if (!done) return finish(false, new Error(`closed during the handshake: ${code} ${reason}`));
          if (k.up) {
            const kind = `${code} ${reason}`.slice(0, 60);
            closeKinds.set(kind, (closeKinds.get(kind) ?? 0) + 1);
            k.up = false;
            c.up--;
            c.closedByServer++;
            if (c.reconnecting) scheduleReconnect(k);
          }
        },
        onError: (err) => finish(false, err),
      },
      undefined,
      k.addr,
    );
  });
}

/** centrifuge-js's backoff: min + random(0, min(max, min × 2^step)), capped at max. */
function delay(step) {
  return Math.min(MAX_DELAY_MS, MIN_DELAY_MS + Math.random() * Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** step));
}

function scheduleReconnect(k) {
  setTimeout(async () => {
    if (!c.reconnecting || k.up) return;
    const ok = await heraldOpen(k);
    if (!ok) {
      k.attempt++;
      scheduleReconnect(k);
    }
  }, delay(k.attempt));
}

/** Opens n connections (at most `concurrency` handshakes in flight), channel i % channels, source addresses round-robin. */
async function connectMany({ protocol, url, n, first = 0, prefix, channels, addrs, concurrency = 200 }) {
  c.url = url;
  const cpu0 = cpuUs(process.pid);
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let firstError;
  const worker = async () => {
    while (next < n) {
      const i = first + next++;
      const ch = i % channels;
      const addr = addrs[i % addrs.length];
      const token = signToken(`s${i}`);
      if (protocol === 'herald') {
        const k = { ch, channel: `${prefix}${ch}`, token, addr, lastSeq: 0, up: false, attempt: 0 };
        if (await heraldOpen(k)) conns.push(k);
        else {
          failed++;
          firstError ??= c.firstError;
        }
      } else {
        try {
          raw.push(await open(protocol, url, token, `${prefix}${ch}`, st, addr));
        } catch (err) {
          failed++;
          firstError ??= String(err?.message ?? err);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const ms = performance.now() - t0;
  return { opened: n - failed, failed, firstError, ms, clientCpuPct: (cpuUs(process.pid) - cpu0) / 10 / ms };
}

// The publisher: HTTP API publishes, at most one in flight per channel (so a channel's order is the publisher's),
// `rate` per second round-robin over the channels. Only publications the API answered with a result count as sent.
const pubFailures = new Map();
const pubFail = (kind) => pubFailures.set(kind, (pubFailures.get(kind) ?? 0) + 1);
const pub = { running: false, seq: [], inflight: [], acked: 0, refused: 0, unacked: [], failedOther: 0, timer: null };

function pubStart({ base, apiKey, prefix, channels, rate }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  Object.assign(pub, { running: true, seq: new Array(channels).fill(0), inflight: new Array(channels).fill(false) });
  pub.maxAcked = new Array(channels).fill(0);
  let ch = 0;
  let due = 0;
  const t0 = performance.now();
  const send = (k) => {
    const s = ++pub.seq[k];
    pub.inflight[k] = true;
    const body = JSON.stringify({ channel: `${prefix}${k}`, data: { c: k, s, p: 'x'.repeat(60) } });
    let sent = false;
    const req = http.request(
      `${base}/api/publish`,
      {
        method: 'POST',
        agent,
        timeout: 10_000,
        headers: { 'Content-Type': 'application/json', 'X-API-Key': apiKey, 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          pub.inflight[k] = false;
          if (res.statusCode === 200 && text.includes('"result"') && !text.includes('"error"')) {
            pub.acked++;
            pub.maxAcked[k] = s;
          } else {
            pub.failedOther++;
            pub.unacked.push([k, s]);
            pubFail(`HTTP ${res.statusCode} ${text.slice(0, 80)}`);
          }
        });
      },
    );
    req.on('socket', (sock) => {
      if (!sock.connecting)
        sent = true; // a kept-alive socket
      else sock.once('connect', () => (sent = true));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      // A request sent and then timed out may still be stored by the node: the channel's next publication waits 30 s
      // more, so that it is not stored before this one (which would reorder the channel's sequence numbers).
      if (sent && /timeout/.test(String(err.message))) setTimeout(() => (pub.inflight[k] = false), 30_000).unref();
      else pub.inflight[k] = false;
      // Refused: never reached the server, not published. Anything else may or may not have been published.
      if (!sent && /ECONNREFUSED/.test(String(err.message))) pub.refused++;
      pub.unacked.push([k, s]);
      pubFail(`${sent ? 'sent' : 'not sent'}: ${String(err.message).replace(/\d+/g, 'N').slice(0, 60)}`);
    });
    req.end(body);
  };
  pub.timer = setInterval(() => {
    const want = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (let tries = 0; due < want && tries < channels; tries++) {
      const k = ch;
      ch = (ch + 1) % channels;
      if (pub.inflight[k]) continue;
      send(k);
      due++;
    }
    if (due < want) due = want; // the node is down or slow: do not build a backlog
  }, 10);
}

const ops = {
  connect: (a) => connectMany(a),
  async status() {
    return {
      up: c.up,
      conns: conns.length,
      raw: raw.length,
      lastUpAt: c.lastUpAt,
      now: performance.now(),
      delivered: st.delivered,
      cpuUs: cpuUs(process.pid),
    };
  },
  /** From now on a closed Herald connection reconnects. */
  async arm() {
    c.reconnecting = true;
    Object.assign(c, { refused: 0, errors: 0, firstError: undefined, attempts: 0 });
    errorKinds.clear();
    for (const k of conns) if (!k.up) scheduleReconnect(k);
    return { now: performance.now() };
  },
  async pubStart(a) {
    pubStart(a);
    return {};
  },
  async pubStop() {
    pub.running = false;
    clearInterval(pub.timer);
    const deadline = performance.now() + 12_000;
    while (pub.inflight.some(Boolean) && performance.now() < deadline) await sleep(20);
    return {
      sent: pub.seq.reduce((a, b) => a + b, 0),
      acked: pub.acked,
      refused: pub.refused,
      failedOther: pub.failedOther,
      unacked: pub.unacked,
      failures: Object.fromEntries(pubFailures),
      last: pub.seq,
    };
  },
  /**
   * Checks every connection against the publisher's record: `last` (per channel, the last seq sent) and `unacked`
   * ([channel, seq] that were never acknowledged: they may or may not arrive). Lost = acknowledged publications some
   * subscriber never got.
   */
  async verify({ last, unacked }) {
    const maybe = new Set(unacked.map(([k, s]) => `${k}:${s}`));
    const ackedIn = (k, from, to) => {
      let n = 0;
      for (let s = from; s <= to; s++) if (!maybe.has(`${k}:${s}`)) n++;
      return n;
    };
    let lost = 0;
    let lostConns = 0;
    let unackedMissed = 0;
    let notBack = 0;
    let firstLost;
    for (const [k, from, to] of c.gaps) {
      const a = ackedIn(k, from, to);
      lost += a;
      unackedMissed += to - from + 1 - a;
      if (a > 0) firstLost ??= { channel: k, from, to };
    }
    for (const k of conns) {
      const tail = ackedIn(k.ch, k.lastSeq + 1, last[k.ch] ?? 0);
      if (tail > 0 && k.announced) c.announcedGap += tail;
      else if (tail > 0 && !k.up)
        notBack += tail; // never came back: missing, not lost by the server
      else if (tail > 0) {
        lost += tail;
        lostConns++;
        firstLost ??= { channel: k.ch, from: k.lastSeq + 1, to: last[k.ch], tail: true };
      }
    }
    return {
      lost,
      lostConns,
      firstLost,
      unackedMissed,
      announcedGap: c.announcedGap,
      notBack,
      notBackConns: conns.filter((k) => !k.up).length,
      firstOutOfOrder: c.firstOutOfOrder,
      dupes: c.dupes,
      outOfOrder: c.outOfOrder,
      gaps: c.gaps.length,
      recoveredTrue: c.recoveredTrue,
      recoveredFalse: c.recoveredFalse,
      recoveredPubs: c.recoveredPubs,
      refused: c.refused,
      errors: c.errors,
      firstError: c.firstError,
      errorKinds: Object.fromEntries(errorKinds),
      closeKinds: Object.fromEntries(closeKinds),
      attempts: c.attempts,
      closedByServer: c.closedByServer,
      delivered: st.delivered,
    };
  },
  async closeAll() {
    c.reconnecting = false;
    for (const k of conns) k.ws?.terminate();
    for (const ws of raw) ws.terminate();
    conns.length = 0;
    raw = [];
    return {};
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
