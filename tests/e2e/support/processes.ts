import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

/** A child process whose output is kept (last 64 KB) for failure messages, and that the suite always stops. */
export interface Child {
  proc: ChildProcess;
  name: string;
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<Child>();

export function start(
  name: string,
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Child {
  // Its own process group, so stopping it also stops whatever it started (next start forks workers).
  const proc = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const keep = (c: Buffer) => {
    out = (out + c.toString()).slice(-65_536);
    if (process.env.HERALD_E2E_VERBOSE) process.stderr.write(`[${name}] ${c}`);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const child: Child = {
    proc,
    name,
    output: () => out,
    async stop() {
      running.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try {
        process.kill(-proc.pid!, 'SIGTERM');
      } catch {
        return;
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(killer);
    },
  };
  running.add(child);
  return child;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

/** Runs a command to completion within a deadline; rejects with its output on failure. */
export async function run(
  name: string,
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs: number },
): Promise<string> {
  const c = start(name, cmd, args, opts);
  const timer = setTimeout(() => void c.stop(), opts.timeoutMs);
  const code = await new Promise<number | null>((r) => c.proc.once('exit', (code) => r(code)));
  clearTimeout(timer);
  running.delete(c);
  if (code !== 0)
    throw new Error(`${name} failed (exit ${code}, limit ${opts.timeoutMs} ms):\n${c.output().slice(-4000)}`);
  return c.output();
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  child?: Child,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (child && child.proc.exitCode !== null)
      throw new Error(
        `${child.name} exited (${child.proc.exitCode}) while waiting for ${what}:\n${child.output().slice(-3000)}`,
      );
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}${child ? `\n${child.name} output:\n${child.output().slice(-3000)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until an HTTP GET answers (any status). */
export async function waitForHttp(url: string, timeoutMs: number, child?: Child): Promise<void> {
  await waitFor(
    `${url} to answer`,
    async () => {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return true;
    },
    timeoutMs,
    child,
  );
}
