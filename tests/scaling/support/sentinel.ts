// A primary, a replica and a Sentinel of the test's own on spare ports, for failover tests. No persistence.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './util.js';

export interface SentinelSet {
  /** redis+sentinel://127.0.0.1:<sentinel port>/<name> */
  url: string;
  name: string;
  /** The port of whichever server Sentinel names primary now. */
  primaryPort(): Promise<number>;
  ports: number[];
  /** A command on the server at `port`. */
  command(port: number, ...args: string[]): Promise<unknown>;
  /** SENTINEL FAILOVER, then waits until Sentinel names the other server. */
  failover(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

export async function startSentinelSet(name = 'herald-primary'): Promise<SentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-sentinel-'));
  const children: ChildProcess[] = [];
  const [p1, p2, sp] = [await freePort(), await freePort(), await freePort()];
  const server = (args: string[]) => {
    // --dir: a replica writes the snapshot it syncs from to disk; keep it out of the working tree.
    const c = spawn(
      'redis-server',
      [...args, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--dir', dir],
      { stdio: 'ignore' },
    );
    children.push(c);
    return c;
  };
  const call = async (port: number, ...args: string[]) => {
    const r = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    }).on('error', () => {});
    try {
      await r.connect();
      return await r.call(args[0]!, ...args.slice(1));
    } finally {
      r.disconnect();
    }
  };
  const up = (port: number) =>
    waitFor(async () => (await call(port, 'PING').catch(() => '')) === 'PONG', `redis on :${port}`, 10_000);
  server(['--port', String(p1)]);
  await up(p1);
  server(['--port', String(p2), '--replicaof', '127.0.0.1', String(p1)]);
  await up(p2);
  await waitFor(
    async () => String(await call(p2, 'INFO', 'replication')).includes('master_link_status:up'),
    'the replica in sync',
    10_000,
  );
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sp}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${p1} 1`,
      `sentinel down-after-milliseconds ${name} 2000`,
      `sentinel failover-timeout ${name} 10000`,
    ].join('\n') + '\n',
  );
  const sentinel = spawn('redis-server', [conf, '--sentinel', '--loglevel', 'warning'], { stdio: 'ignore' });
  children.push(sentinel);
  await up(sp);
  await waitFor(
    async () => ((await call(sp, 'SENTINEL', 'REPLICAS', name).catch(() => [])) as unknown[]).length > 0,
    'Sentinel to know the replica',
    20_000,
  );

  const primaryPort = async () =>
    Number(((await call(sp, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[])[1]);
  return {
    url: `redis+sentinel://127.0.0.1:${sp}/${name}`,
    name,
    ports: [p1, p2],
    primaryPort,
    command: call,
    async failover() {
      const from = await primaryPort();
      const to = from === p1 ? p2 : p1;
      await call(sp, 'SENTINEL', 'FAILOVER', name);
      await waitFor(async () => (await primaryPort()) === to, `Sentinel to name :${to} primary`, 20_000);
      await waitFor(
        async () => String(await call(to, 'ROLE').catch(() => '')).startsWith('master'),
        `:${to} to be primary`,
        20_000,
      );
      return { from, to };
    },
    async stop() {
      await Promise.all(
        children.map(async (c) => {
          if (c.exitCode !== null || c.signalCode !== null) return;
          const exited = once(c, 'exit');
          c.kill('SIGKILL');
          await exited;
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
