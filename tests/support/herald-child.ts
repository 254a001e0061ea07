// `herald serve` from the build as a child process, shared by the multi-process suites (outbox, scaling,
// reliability): a free loopback port, the spawn (optionally under a raised fd limit) and its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..');
export const bin = join(root, 'packages', 'server', 'dist', 'cli', 'main.js');

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface ServeChild {
  child: ChildProcess;
  /** Parsed JSON log lines so far (a line that is not JSON is kept as `{ msg }`). */
  logs: Record<string, any>[];
  stderr(): string;
  /** Resolves with the exit code, or the signal name, once the process ended. */
  exited: Promise<number | string>;
}

/** Spawns `herald serve` with `env` added to this process's environment. */
export function spawnServe(env: Record<string, string>, opts: { fdLimit?: number } = {}): ServeChild {
  const fullEnv = { ...process.env, ...env };
  const child = opts.fdLimit
    ? spawn(
        'bash',
        [
          '-c',
          `ulimit -n ${opts.fdLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`,
          process.execPath,
          bin,
          'serve',
        ],
        { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] },
      )
    : spawn(process.execPath, [bin, 'serve'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, any>[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { child, logs, stderr: () => stderr, exited };
}
