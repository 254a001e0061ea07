// A Redis of the test's own on a spare port (no persistence), so freezing, killing and restarting it touches nobody
// else. Fails loudly when redis-server is not installed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './util.js';

export interface TestRedis {
  port: number;
  url: string;
  pid(): number;
  /** SIGSTOP: the process keeps its sockets but answers nothing. */
  freeze(): void;
  /** SIGCONT */
  thaw(): void;
  /** SIGKILL and start again on the same port: every key is gone (no persistence). */
  restart(downMs?: number): Promise<void>;
  /** CLIENT KILL of every pub/sub connection (what a proxy or a Redis-side timeout does to them). */
  killPubSubClients(): Promise<number>;
  command(...args: string[]): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  if (spawnSync('redis-server', ['--version']).status !== 0)
    throw new Error('redis-server is not installed (apt-get install -y redis-server)');
  const port = await freePort();
  let child: ChildProcess;
  const admin = () =>
    new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null }).on(
      'error',
      () => {},
    );
  async function launch(): Promise<void> {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    await waitFor(
      async () => {
        const r = admin();
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          r.disconnect();
        }
      },
      `redis-server on :${port}`,
      10_000,
    );
  }
  async function kill(): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }
  await launch();
  const r: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => child.pid!,
    freeze: () => void child.kill('SIGSTOP'),
    thaw: () => void child.kill('SIGCONT'),
    async restart(downMs = 300) {
      await kill();
      await new Promise((res) => setTimeout(res, downMs));
      await launch();
    },
    async killPubSubClients() {
      return Number(await r.command('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    },
    async command(...args) {
      const c = admin();
      try {
        await c.connect();
        return await c.call(args[0]!, ...args.slice(1));
      } finally {
        c.disconnect();
      }
    },
    stop: kill,
  };
  return r;
}
