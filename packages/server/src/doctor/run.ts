/**
 * `herald doctor`: walks the path a browser takes (TCP, plain GET, upgrade, connect, round trip) and stops at the
 * first failing step. Each step observes (I/O here) and then calls its pure interpret function (the other modules).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { interpretConnect, mintToken, readToken, verifiesWith, type TokenFacts } from './connect.js';
import { parseTarget, pathOnly, type Finding, type Target } from './finding.js';
import { exchange, plainGetRequest, tlsHandshakes, type HttpResponse, type WireTarget } from './http-wire.js';
import { rewriteDestinationFor } from './next-manifest.js';
import { interpretPlainGet, type HeraldBehind } from './plain-get.js';
import { interpretRoundTrip, type PublishResult, type SubscribeResult } from './round-trip.js';
import { candidatePorts, findHeraldNearby, interpretTcp, resolveHost, tcpConnect, type ConnectAttempt } from './tcp.js';
import { isHeraldBody, nextjsEvidence, serverName } from './servers.js';
import { interpretUpgrade, upgradeRequest } from './upgrade.js';
import { newKey } from './ws-frames.js';
import { ProtocolSocket } from './ws-session.js';

export interface DoctorOptions {
  url: string;
  /** A connection token to test (what the app's token route returns). */
  token?: string;
  /** Mint a connection token for this user with `secret`. */
  user?: string;
  /** The page's origin. @default the first HERALD_ALLOWED_ORIGINS entry, else the URL's own origin */
  origin?: string;
  apiKey?: string;
  /**
   * Base URL of Herald's HTTP API. @default when Herald answers the URL itself or through a proxy, the URL's origin;
   * through Next.js, Herald's own address (the rewrite's destination in `appDir`'s routes manifest, else a Herald on
   * the ports looked at nearby), and with neither the API is not tried (a warning says what to pass).
   */
  apiUrl?: string;
  /** The Next.js app's directory, where `.next/routes-manifest.json` holds its rewrites (the CLI passes its cwd). */
  appDir?: string;
  /** @default `herald-doctor-<random>` */
  channel?: string;
  /** Bound of each network wait. @default 5000 */
  timeoutMs?: number;
  /** The local token secret (HERALD_TOKEN_SECRET, NEXTAUTH_SECRET, or the config file) and where it came from. */
  secret?: string;
  secretSource?: string;
  audience?: string;
  issuer?: string;
  /** WS_PORT of this environment: the first port tried when looking for Herald elsewhere. */
  envPort?: string;
  /** Ports to look for Herald on instead of the usual ones (`candidatePorts`); [] turns the search off. */
  scanPorts?: number[];
  /** HERALD_ALLOWED_ORIGINS of this environment. */
  allowedOrigins?: string;
}

export interface DoctorReport {
  ok: boolean;
  url: string;
  origin: string | undefined;
  steps: Finding[];
  /** The failing step's finding, when one failed. */
  failed?: Finding;
}

function originOf(t: Target): string {
  const u = new URL(t.httpUrl);
  return u.origin;
}

/** The Origin the probes send: --origin, else the first allowed origin, else the URL's own (a same-origin page). */
export function pageOrigin(opts: Pick<DoctorOptions, 'url' | 'origin' | 'allowedOrigins'>): string {
  if (opts.origin) return opts.origin;
  const first = (opts.allowedOrigins ?? '')
    .split(',')
    .map((s) => s.trim())
    .find((s) => s !== '' && s !== '*');
  return first ?? originOf(parseTarget(opts.url));
}

/** Runs the steps; `onStep` sees each finding as soon as it is made (for streaming output). */
export async function runDoctor(opts: DoctorOptions, onStep: (f: Finding) => void = () => {}): Promise<DoctorReport> {
  const t = parseTarget(opts.url);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const origin = pageOrigin(opts);
  const steps: Finding[] = [];
  const report: DoctorReport = { ok: false, url: t.wsUrl, origin, steps };
  const record = (f: Finding): boolean => {
    steps.push(f);
    onStep(f);
    if (f.status === 'fail') report.failed = f;
    return f.status !== 'fail';
  };
  const scanPaths = [...new Set([t.path.split('?')[0] ?? '/ws', '/ws'])];

  // 1. Resolve and connect.
  const resolved = await resolveHost(t.host);
  const attempts: ConnectAttempt[] = [];
  for (const address of resolved.addresses) {
    const a = await tcpConnect(address, t.port, Math.min(timeoutMs, 3000));
    attempts.push(a);
    if (a.ok) break;
  }
  let heraldNearby: { url: string; version: string } | undefined;
  const connected = attempts.find((a) => a.ok);
  const scanAddress = connected?.address ?? resolved.addresses.find((a) => !a.includes(':')) ?? resolved.addresses[0];
  const lookNearby = async () => {
    if (heraldNearby || !scanAddress) return heraldNearby;
    const ports = opts.scanPorts ?? candidatePorts(t.port, opts.envPort);
    if (ports.length === 0) return undefined;
    heraldNearby = await findHeraldNearby(t, scanAddress, ports, scanPaths, timeoutMs);
    return heraldNearby;
  };
  if (!connected && !resolved.error && attempts.every((a) => a.code === 'ECONNREFUSED')) await lookNearby();
  const tcpObs = {
    addresses: resolved.addresses,
    attempts,
    ...(resolved.error ? { resolveError: resolved.error } : {}),
    ...(heraldNearby ? { heraldNearby } : {}),
  };
  if (!record(interpretTcp(t, tcpObs)) || !connected) return report;

  const wire: WireTarget = { host: t.host, address: connected.address, port: t.port, secure: t.secure };

  // 2. Plain GET.
  let get = await exchange(wire, plainGetRequest(t.host, t.port, t.defaultPort, t.path, origin), { timeoutMs });
  // `next dev` compiles a page on its first request, which can outlast the timeout: ask once more before calling it a hang.
  let asked = 1;
  if (get.kind === 'no_answer') {
    get = await exchange(wire, plainGetRequest(t.host, t.port, t.defaultPort, t.path, origin), { timeoutMs });
    asked = 2;
  }
  let tlsAnswered: boolean | undefined;
  if (!t.secure && (get.kind === 'closed' || get.kind === 'not_http'))
    tlsAnswered = (await tlsHandshakes(wire, Math.min(timeoutMs, 2000))).ok;
  const heraldAnswered = get.kind === 'response' && get.response.headers['x-herald-version'] !== undefined;
  if (!heraldAnswered && get.kind !== 'tls_error') await lookNearby();
  // Herald answered: directly, or through Next.js / a proxy in front of it (whose other paths are not Herald's).
  let behind: HeraldBehind | undefined;
  if (heraldAnswered && get.kind === 'response') {
    behind = await whatIsInFront(wire, t, get.response, origin, timeoutMs);
    // Only Next.js needs Herald's own address: its origin is the app. A proxy such as nginx may route /api to Herald
    // (the URL's origin is then tried, as before), and a port search could find another Herald than the one behind it.
    if (behind?.kind === 'nextjs') {
      const rewrite = opts.appDir ? rewriteDestinationFor(opts.appDir, pathOnly(t.path)) : undefined;
      const own = rewrite ? await heraldAt(rewrite.destination, t, timeoutMs) : undefined;
      if (rewrite && own) behind.herald = { ...own, from: `the rewrite of ${rewrite.source} in ${rewrite.manifest}` };
      else if (await lookNearby()) behind.herald = { ...heraldNearby!, from: 'found on a nearby port' };
    }
  }
  const getFinding = interpretPlainGet(t, {
    outcome: get,
    timeoutMs,
    asked,
    pageOrigin: opts.origin,
    ...(tlsAnswered !== undefined ? { tlsAnswered } : {}),
    ...(heraldNearby ? { heraldNearby } : {}),
    ...(behind ? { behind } : {}),
  });
  if (!record(getFinding)) return report;

  // 3. Upgrade.
  const key = newKey();
  const up = await exchange(wire, upgradeRequest(t, key, origin), { timeoutMs, keepUpgraded: true });
  const upFinding = interpretUpgrade(t, {
    outcome: up,
    key,
    origin,
    timeoutMs,
    ...(opts.allowedOrigins !== undefined ? { allowedOriginsEnv: opts.allowedOrigins } : {}),
  });
  if (!record(upFinding) || up.kind !== 'response' || !up.socket) {
    if (up.kind === 'response') up.socket?.destroy();
    return report;
  }
  const ws = new ProtocolSocket(up.socket, up.rest);
  try {
    // 4. Connect.
    const facts: TokenFacts = { source: 'none' };
    let token = opts.token;
    if (token) facts.source = 'token';
    else if (opts.user !== undefined && opts.secret) {
      token = await mintToken(opts.user, opts.secret, { audience: opts.audience, issuer: opts.issuer });
      facts.source = 'minted';
    }
    if (token) {
      Object.assign(facts, readToken(token));
      if (opts.secret) {
        facts.localSignature = (await verifiesWith(token, opts.secret)) ? 'ok' : 'bad';
        facts.secretSource = opts.secretSource ?? 'the local secret';
      } else facts.localSignature = 'no_secret';
    }
    const started = performance.now();
    ws.send({ id: 1, connect: { ...(token ? { token } : {}), name: 'herald-doctor' } });
    const ev = await ws.reply(1, timeoutMs);
    const connectFinding = interpretConnect({
      token: facts,
      event: ev,
      timeoutMs,
      ms: Math.round(performance.now() - started),
    });
    if (!record(connectFinding)) return report;
    const user = typeof facts.claims?.sub === 'string' ? facts.claims.sub : opts.user;

    // 5. Round trip.
    const channel = opts.channel ?? `herald-doctor-${randomBytes(4).toString('hex')}`;
    const subscribe = await subscribeStep(
      ws,
      channel,
      timeoutMs,
      opts.secret && user !== undefined
        ? { user, secret: opts.secret, audience: opts.audience, issuer: opts.issuer }
        : undefined,
    );
    let publish: PublishResult | undefined;
    if (subscribe.ok) {
      // Herald's own address: given, else found behind Next.js, else the URL's (Herald itself, or a proxy in front).
      // Through Next.js with no address found, the URL's origin is the app, whose own /api routes must not be POSTed to.
      const found = opts.apiUrl === undefined ? behind?.herald : undefined;
      const base = opts.apiUrl ?? found?.url ?? (behind?.kind === 'nextjs' ? undefined : t.httpUrl);
      const apiBase = base?.replace(/^ws/, 'http').replace(/^(https?:\/\/[^/]+)(?:\/[^]*)?$/, '$1');
      publish =
        apiBase === undefined && opts.apiKey
          ? {
              via: 'api',
              ok: false,
              addressUnknown: {
                path: pathOnly(t.path),
                scanned: opts.scanPorts ?? candidatePorts(t.port, opts.envPort),
                manifestLooked: opts.appDir !== undefined,
              },
            }
          : await publishStep(ws, channel, timeoutMs, opts.apiKey, apiBase ?? t.httpUrl);
      // The API was looked for at the URL's own origin, which a rewrite of /ws alone does not route to Herald:
      // that is a question of where the API is, not a broken path for browsers.
      if (
        opts.apiUrl === undefined &&
        publish.via === 'api' &&
        !publish.ok &&
        ('unreachable' in publish || ('herald' in publish && !publish.herald))
      ) {
        publish.guessed = true;
      }
      // A Herald found by the doctor that never delivers may be another Herald than the one behind Next.js.
      if (found && publish.via === 'api' && !publish.ok && 'notDelivered' in publish) publish.foundAt = found.from;
    }
    record(interpretRoundTrip({ channel, subscribe, ...(publish ? { publish } : {}) }));
  } finally {
    ws.close();
  }
  report.ok = report.failed === undefined;
  return report;
}

/**
 * Paths Herald never serves that Next.js answers in its own way, asked in order: its image optimizer's 400 for a
 * request without `url` (answered at once, also by a `next dev` that has compiled nothing yet), then its 404 page.
 */
const NEXT_PROBES: ReadonlyArray<{ path: string; evidence: (r: HttpResponse) => string | undefined }> = [
  {
    path: '/_next/image',
    evidence: (r) =>
      r.status === 400 && /^"url" parameter is required/.test(r.body.trim())
        ? `Next.js's image optimizer answered GET /_next/image there (400 "url" parameter is required)`
        : undefined,
  },
  {
    path: '/_next/herald-doctor',
    evidence: (r) => {
      const e = nextjsEvidence(r);
      return e ? `GET /_next/herald-doctor there answered with ${e}` : undefined;
    },
  },
];

/**
 * What answers in front of a Herald that answered the URL: Next.js (its headers on the answer, else its answers for
 * NEXT_PROBES on the same origin: a rewrite passes Herald's answer through with nothing of Next's own), a proxy
 * naming itself in `Server`, or nothing (Herald itself, whose answers carry no Server header).
 */
async function whatIsInFront(
  wire: WireTarget,
  t: Target,
  answer: HttpResponse,
  origin: string,
  timeoutMs: number,
): Promise<HeraldBehind | undefined> {
  const own = nextjsEvidence(answer);
  if (own) return { kind: 'nextjs', evidence: own };
  const server = serverName(answer);
  if (server) return { kind: 'proxy', evidence: `Server: ${server}` };
  for (const probe of NEXT_PROBES) {
    const o = await exchange(wire, plainGetRequest(t.host, t.port, t.defaultPort, probe.path, origin), { timeoutMs });
    if (o.kind === 'response' && isHeraldBody(o.response)) return undefined; // Herald owns the origin's other paths
    const evidence = o.kind === 'response' ? probe.evidence(o.response) : undefined;
    if (evidence) return { kind: 'nextjs', evidence };
  }
  return undefined;
}

/** Herald's marker at `url` (a rewrite destination), tried on its path, the URL's path and /ws: its ws:// URL. */
async function heraldAt(
  url: string,
  t: Target,
  timeoutMs: number,
): Promise<{ url: string; version: string } | undefined> {
  let dest: Target;
  try {
    dest = parseTarget(url);
  } catch {
    return undefined;
  }
  const { addresses } = await resolveHost(dest.host);
  const address = addresses.find((a) => !a.includes(':')) ?? addresses[0];
  if (!address) return undefined;
  const paths = [...new Set([pathOnly(dest.path), pathOnly(t.path), '/ws'].filter((p) => !p.includes(':')))];
  return findHeraldNearby(dest, address, [dest.port], paths, timeoutMs);
}

async function subscribeStep(
  ws: ProtocolSocket,
  channel: string,
  timeoutMs: number,
  minting: { user: string; secret: string; audience?: string | undefined; issuer?: string | undefined } | undefined,
): Promise<SubscribeResult> {
  const started = performance.now();
  ws.send({ id: 2, subscribe: { channel } });
  const ev = await ws.reply(2, timeoutMs);
  if (ev.type === 'timeout') return { ok: false, timeout: true };
  if (ev.type === 'close') return { ok: false, close: { code: ev.code, reason: ev.reason } };
  const err = ev.value.error as { code: number; message: string } | undefined;
  if (!err) return { ok: true, via: 'client', ms: Math.round(performance.now() - started) };
  if (err.code !== 103 || !minting) return { ok: false, code: err.code, message: err.message, tokenTried: false };
  const token = await mintToken(minting.user, minting.secret, {
    channel,
    audience: minting.audience,
    issuer: minting.issuer,
  });
  const again = performance.now();
  ws.send({ id: 3, subscribe: { channel, token } });
  const ev2 = await ws.reply(3, timeoutMs);
  if (ev2.type === 'timeout') return { ok: false, timeout: true };
  if (ev2.type === 'close') return { ok: false, close: { code: ev2.code, reason: ev2.reason } };
  const err2 = ev2.value.error as { code: number; message: string } | undefined;
  if (!err2) return { ok: true, via: 'token', ms: Math.round(performance.now() - again) };
  return { ok: false, code: err.code, message: err.message, tokenTried: true, tokenMessage: err2.message };
}

async function publishStep(
  ws: ProtocolSocket,
  channel: string,
  timeoutMs: number,
  apiKey: string | undefined,
  apiBase: string,
): Promise<PublishResult> {
  const nonce = randomBytes(6).toString('hex');
  const data = { doctor: nonce };
  const isOurs = (p: Record<string, unknown>) => {
    const pub = p.pub as { data?: { doctor?: unknown } } | undefined;
    return p.channel === channel && pub?.data?.doctor === nonce;
  };
  const started = performance.now();
  let offset: number | undefined;
  let via: 'api' | 'client';
  if (apiKey) {
    via = 'api';
    const res = await postJson(`${apiBase}/api/publish`, { 'x-api-key': apiKey }, { channel, data }, timeoutMs);
    if ('error' in res) return { via: 'api', ok: false, unreachable: res.error, apiUrl: apiBase };
    let parsed: { result?: { offset?: number }; error?: unknown } | undefined;
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    if (res.status !== 200 || !parsed?.result) {
      const herald = /"error"\s*:\s*\{/.test(res.body) && res.contentType.includes('json');
      return { via: 'api', ok: false, status: res.status, body: res.body, apiUrl: apiBase, herald };
    }
    offset = parsed.result.offset;
  } else {
    via = 'client';
    ws.send({ id: 4, publish: { channel, data } });
    let early: number | undefined;
    const ev = await ws.reply(4, timeoutMs, (p, at) => {
      if (isOurs(p)) early = at;
    });
    if (ev.type === 'message' && ev.value.error) {
      const e = ev.value.error as { code: number; message: string };
      return {
        via: 'none',
        reason: `the socket may not publish here (${e.code} ${e.message}); pass --api-key (or HERALD_API_KEY)`,
      };
    }
    if (ev.type !== 'message') return { via: 'none', reason: 'no reply to publish' };
    if (early !== undefined) return { via, ok: true, deliveredMs: Math.round(early - started) };
  }
  const got = await ws.push(isOurs, timeoutMs);
  if (got.type === 'message')
    return { via, ok: true, deliveredMs: Math.round(got.at - started), ...(offset !== undefined ? { offset } : {}) };
  return { via, ok: false, notDelivered: true, waitedMs: timeoutMs, ...(offset !== undefined ? { offset } : {}) };
}

/**
 * POST with node:http rather than fetch: fetch's first call in a process spends tens of milliseconds setting
 * itself up, which would show as delivery latency.
 */
function postJson(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
): Promise<{ status: number; body: string; contentType: string } | { error: string }> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      resolve({ error: `not a URL: ${url}` });
      return;
    }
    const text = JSON.stringify(body);
    const req = (u.protocol === 'https:' ? https : http).request(
      u,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        timeout: timeoutMs,
      },
      (res) => {
        let out = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (out.length < 64_000) out += c;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: out, contentType: String(res.headers['content-type'] ?? '') }),
        );
        res.on('error', (err) => resolve({ error: err.message }));
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end(text);
  });
}
