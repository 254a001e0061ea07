// Starts the load client process (raised fd limit) and calls its operations over IPC.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild } from './proc.mjs';

const clientPath = join(dirname(fileURLToPath(import.meta.url)), '../client/client.mjs');

/**
 * `nodeArgs`: extra node flags for the client process (bench/profile.mjs passes --cpu-prof); `script`: another client
 * program speaking the same IPC (bench/client/scale-client.mjs); `nofile`: the fd limit to ask for.
 */
export async function startClient({ nodeArgs = [], script = clientPath, nofile = 65536 } = {}) {
  const flags = nodeArgs.map((a) => `'${a}'`).join(' ');
  const child = spawn(
    'bash',
    ['-c', `ulimit -n ${Number(nofile)} 2>/dev/null || ulimit -n $(ulimit -Hn); exec node ${flags} '${script}'`],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const pending = new Map();
  let nextId = 0;
  child.on('message', ({ id, ok, result, error }) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (ok) p.resolve(result);
    else p.reject(new Error(`client: ${error}`));
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`client exited with ${code}`));
    pending.clear();
  });
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return {
    pid: child.pid,
    call(op, args, timeoutMs = 120_000) {
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`client op ${op} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(t);
            resolve(v);
          },
          reject: (e) => {
            clearTimeout(t);
            reject(e);
          },
        });
        child.send({ id, op, args });
      });
    },
    async stop() {
      // The client exits on its own when the IPC channel closes (and then writes its --cpu-prof profile, if any).
      const exited = new Promise((r) => child.once('exit', r));
      if (child.connected) child.disconnect();
      if (child.exitCode === null && child.signalCode === null)
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
      await stopChild(child, 3000);
    },
  };
}
