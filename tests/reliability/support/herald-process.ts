// `herald serve` from the build as a child process, so its memory, file descriptors and exit code are its own.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { freePort, spawnServe } from '../../support/herald-child.js';

export { bin, freePort } from '../../support/herald-child.js';
export const SECRET = 'reliability-secret';
export const API_KEY = 'reliability-api-key';

export async function mintToken(sub: string, ttlSec = 3600): Promise<string> {
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
    .sign(new TextEncoder().encode(SECRET));
}

export interface HeraldProcess {
  port: number;
  pid: number;
  child: ChildProcess;
  logs: Record<string, any>[];
  stderr(): string;
  /** Resident set size of the Herald process, from /proc (bytes). */
  rss(): number;
  /** Open file descriptors of the Herald process. */
  fds(): number;
  /** A sample of /metrics: `name{labels}` -> value. */
  metrics(): Promise<Map<string, number>>;
  status(path: string, timeoutMs?: number): Promise<number>;
  api(method: string, body: unknown): Promise<{ status: number; json: any }>;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Channel namespace options for channels without a namespace. */
  withoutNamespace?: Record<string, unknown>;
  /** Soft file-descriptor limit for the child (raised through `ulimit -n` in a shell that then execs node). */
  fdLimit?: number;
  /** Wait for /ready 200 (default) or only /health 200. */
  waitFor?: 'ready' | 'health';
}

const running = new Set<HeraldProcess>();
const dirs: string[] = [];

export async function startHerald(opts: StartOptions = {}): Promise<HeraldProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'herald-reliability-'));
  dirs.push(dir);
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({ channel: { without_namespace: { allow_subscribe_for_client: true, ...opts.withoutNamespace } } }),
  );
  const {
    child,
    logs,
    stderr: readStderr,
    exited,
  } = spawnServe(
    {
      WS_PORT: String(port),
      HERALD_HOST: '127.0.0.1',
      HERALD_TOKEN_SECRET: SECRET,
      HERALD_API_KEY: API_KEY,
      HERALD_CONFIG: config,
      HERALD_LOG_LEVEL: 'info',
      ...opts.env,
    },
    { fdLimit: opts.fdLimit },
  );
  const base = `http://127.0.0.1:${port}`;
  const p: HeraldProcess = {
    port,
    pid: child.pid!,
    child,
    logs,
    stderr: readStderr,
    rss() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return Number(m?.[1] ?? 0) * 1024;
    },
    fds() {
      return readdirSync(`/proc/${child.pid}/fd`).length;
    },
    async metrics() {
      const text = await (await fetch(`${base}/metrics`)).text();
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        out.set(line.slice(0, i), Number(line.slice(i + 1)));
      }
      return out;
    },
    async status(path, timeoutMs = 5000) {
      const r = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
      if (r) await r.arrayBuffer().catch(() => undefined);
      return r?.status ?? 0;
    },
    async api(method, body) {
      const r = await fetch(`${base}/api/${method}`, {
        method: 'POST',
        headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await r.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: r.status, json };
    },
    exited,
    async kill(signal = 'SIGKILL') {
      running.delete(p);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  running.add(p);
  const deadline = Date.now() + 15_000;
  const path = opts.waitFor === 'health' ? '/health' : '/ready';
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`herald serve exited with ${child.exitCode}: ${readStderr().slice(-2000)}`);
    if ((await p.status(path, 1000)) === 200) break;
    if (Date.now() > deadline)
      throw new Error(`herald on :${port} did not answer ${path} 200: ${readStderr().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

/** Kills every Herald still running and removes their config directories. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls `check` until it returns a truthy value or the deadline passes (then throws naming `what`). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with `p`, or rejects naming `what` after `ms`; the timer never outlives the promise. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
