// The Redis the multi-node scenario uses: a private redis-server on a free loopback port (so other users of the
// machine's Redis neither disturb nor get disturbed), or BENCH_REDIS_URL / 127.0.0.1:6379 when there is no
// redis-server binary. Work per publication is read from its /proc CPU time and from INFO commandstats.
import { execFileSync, spawn } from 'node:child_process';
import { cpuUs, freePort, stopChild, waitPort } from './proc.mjs';

export async function startRedis() {
  let bin;
  try {
    bin = execFileSync('bash', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    bin = '';
  }
  if (!bin || process.env.BENCH_REDIS_URL) {
    const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
    const port = Number(new URL(url).port || 6379);
    const pid = infoPid(port);
    return pid ? { url, port, pid, private: false, stop: async () => {} } : undefined;
  }
  const port = await freePort();
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: 'ignore' },
  );
  await waitPort(port, 10_000);
  return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid, private: true, stop: () => stopChild(child) };
}

function cli(port, ...args) {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 5000,
  });
}

function infoPid(port) {
  try {
    return Number(/process_id:(\d+)/.exec(cli(port, 'info', 'server'))?.[1]) || undefined;
  } catch {
    return undefined;
  }
}

/** Commands that carry a publication (PUBLISH, or a Lua script that appends to history and publishes). */
const PUBLISH_PATH = new Set(['publish', 'spublish', 'evalsha', 'eval', 'fcall', 'evalsha_ro']);

/**
 * CPU time of the Redis process, and from INFO commandstats the microseconds and calls of the publish-path
 * commands (health pings and our own INFO calls excluded).
 */
export function redisSample(redis) {
  let cmdUs = 0;
  let calls = 0;
  try {
    for (const m of cli(redis.port, 'info', 'commandstats').matchAll(/cmdstat_([a-z_|]+):calls=(\d+),usec=(\d+)/g)) {
      if (!PUBLISH_PATH.has(m[1])) continue;
      calls += Number(m[2]);
      cmdUs += Number(m[3]);
    }
  } catch {
    cmdUs = NaN;
  }
  return { cpuUs: cpuUs(redis.pid), cmdUs, calls };
}
