// Process and machine measurements from /proc: CPU time, resident memory, load; plus ports and spawning.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100, the Linux default */
}
export const CLK_TCK = clkTck;

/** User+system CPU time of a process in microseconds (resolution 1/CLK_TCK s). */
export function cpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: split after its closing parenthesis.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

export function cpuUsMany(pids) {
  return pids.reduce((s, p) => s + cpuUs(p), 0);
}

/** Resident set size in KB (VmRSS). */
export function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** This process's hard limit on open files (children cannot raise theirs above it without CAP_SYS_RESOURCE). */
export function fdHardLimit() {
  const m = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
}

export function loadavg() {
  const [l1, l5, l15] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return { l1, l5, l15 };
}

/**
 * Waits (bounded) until the 1-minute load average is below `threshold`, or the CPU is mostly idle over a short
 * sample. Returns what it saw so the report can state how quiet the machine was.
 */
export async function waitQuiet({ threshold = 0.5 * os.cpus().length, maxWaitMs = 60_000, log = () => {} } = {}) {
  const start = Date.now();
  let idle = 0;
  for (;;) {
    idle = await idleFraction(1000);
    const load = loadavg();
    const quiet = load.l1 < threshold || idle > 0.9;
    if (quiet || Date.now() - start > maxWaitMs) {
      return { quiet, waitedMs: Date.now() - start, load, idleFraction: round(idle, 3), threshold };
    }
    log(`waiting for a quiet machine: load ${load.l1}, idle ${(idle * 100).toFixed(0)}%`);
    await sleep(2000);
  }
}

/** Fraction of CPU time idle over `ms`, all cores, from /proc/stat. */
export async function idleFraction(ms) {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idleT = f[3] + (f[4] ?? 0);
    return { idle: idleT, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return b.total > a.total ? (b.idle - a.idle) / (b.total - a.total) : 1;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const round = (x, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port (bounded). */
export async function waitPort(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/**
 * Starts a node process with a raised fd limit (`nofile`, default 65536; the hard limit when that cannot be had); the
 * returned pid is node's own (bash execs it).
 */
export function spawnNode(args, { env = {}, cwd, label, nofile = 65536 } = {}) {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const limit = `ulimit -n ${Number(nofile)} 2>/dev/null || ulimit -n $(ulimit -Hn)`;
  const child = spawn('bash', ['-c', `${limit}; exec node ${quoted}`], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    if (stderr.length < 8000) stderr += d;
  });
  child.label = label;
  child.stderrText = () => stderr;
  return child;
}

export async function stopChild(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await done;
  clearTimeout(t);
}

/** The open-files limit (soft) a process runs with, from /proc/<pid>/limits. */
export function fdLimit(pid) {
  const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    mem_gb: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    clk_tck: CLK_TCK,
  };
}
