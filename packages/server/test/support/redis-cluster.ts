// A Redis Cluster of the test's own: 6 redis-server processes (3 primaries, 3 replicas) on loopback ports picked
// from 7100-7999 (their cluster bus ports, +10000, free too), joined by `redis-cli --cluster create`. No
// persistence; nodes.conf files live in a temp dir removed on stop. Fails loudly when redis-server is missing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface ClusterNodeInfo {
  port: number;
  role: 'master' | 'slave';
  /** The primary's node id (for a replica) or its own (for a primary). */
  id: string;
  primaryId: string | undefined;
  /** Slot ranges of a primary. */
  slots: [number, number][];
}

export interface TestRedisCluster {
  ports: number[];
  /** host:port of every node, comma-separated (HERALD_REDIS_CLUSTER_NODES). */
  nodesEnv: string;
  command(port: number, ...args: string[]): Promise<unknown>;
  /** The nodes as the node at `port` sees them (CLUSTER NODES). */
  topology(port?: number): Promise<ClusterNodeInfo[]>;
  /** The port of the primary that owns `slot`, as the cluster sees it now. */
  primaryOfSlot(slot: number): Promise<number>;
  /** The port of the replica of the primary at `primaryPort`. */
  replicaOf(primaryPort: number): Promise<number>;
  /** Moves one slot with its keys to the primary at `toPort` (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE). */
  moveSlot(slot: number, toPort: number): Promise<{ from: number; to: number }>;
  /** CLUSTER FAILOVER on a replica of the primary at `port`; waits until the replica is primary. */
  failover(primaryPort: number): Promise<{ from: number; to: number }>;
  /**
   * SIGKILL of the primary at `port`; waits until its replica was promoted, then starts the killed node again
   * (empty: no persistence), which rejoins as the new primary's replica, and waits until it is in sync.
   */
  killPrimary(primaryPort: number): Promise<{ from: number; to: number; promotedAt: number }>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Six ports in 7100-7999 whose bus ports are free too (tried from a random start, bounded). */
async function pickPorts(): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 7100 + Math.floor(Math.random() * 890);
    const ports = [0, 1, 2, 3, 4, 5].map((i) => base + i);
    let ok = true;
    for (const p of ports) if (!(await portFree(p)) || !(await portFree(p + 10000))) ok = false;
    if (ok) return ports;
  }
  throw new Error('no 6 free ports (and bus ports) in 7100-7999');
}

/** A port picked as free was taken by another process before our server bound it: pick others. */
class PortTaken extends Error {}

export async function startRedisCluster(server = 'redis-server', cli = 'redis-cli'): Promise<TestRedisCluster> {
  if (spawnSync(server, ['--version']).status !== 0)
    throw new Error(`${server} is not installed (apt-get install -y redis-server)`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(server, cli, await pickPorts());
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
    }
  }
}

async function startOnce(server: string, cli: string, ports: number[]): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-cluster-'));
  const children = new Map<number, ChildProcess>();
  const launch = (port: number) => {
    const child = spawn(
      server,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    children.set(port, child);
  };
  for (const port of ports) launch(port);
  const call = async (port: number, ...args: string[]) => {
    const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      return await r.call(args[0]!, ...args.slice(1));
    } finally {
      r.disconnect();
    }
  };
  const stop = async () => {
    await Promise.all(
      [...children.values()].map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, 'exit');
        c.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const child = children.get(port)!;
      await waitFor(
        async () => {
          // Another test's server on the port (ours could not bind it) answers too: check whose it is.
          if (child.exitCode !== null) throw new PortTaken(`${server} on :${port} exited (port taken)`);
          const info = String(await call(port, 'INFO', 'server').catch(() => ''));
          const pid = /process_id:(\d+)/.exec(info)?.[1];
          if (pid !== undefined && Number(pid) !== child.pid) throw new PortTaken(`:${port} is another process's`);
          return pid !== undefined;
        },
        `${server} on :${port}`,
        10_000,
      );
    }
    const create = spawn(
      cli,
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    create.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    create.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(create, 'exit')) as [number];
    if (code !== 0) throw new Error(`${cli} --cluster create failed (${code}): ${out.slice(-2000)}`);
    // Every node agrees the cluster is up and sees all six.
    await waitFor(
      async () => {
        for (const port of ports) {
          const info = String(await call(port, 'CLUSTER', 'INFO').catch(() => ''));
          if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:6/.test(info)) return false;
        }
        return true;
      },
      'cluster_state:ok on every node',
      20_000,
    );
    // Every replica has synced with its primary (a replica that never synced neither confirms a WAIT nor may take
    // over from a failed primary).
    await waitFor(
      async () => {
        let replicas = 0;
        for (const port of ports) {
          const info = String(await call(port, 'INFO', 'replication').catch(() => ''));
          if (/role:slave/.test(info)) {
            if (!/master_link_status:up/.test(info)) return false;
            replicas++;
          }
        }
        return replicas === 3;
      },
      'three replicas in sync with their primaries',
      20_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  async function topology(port = ports.find((p) => children.get(p)?.exitCode === null) ?? ports[0]!) {
    const text = String(await call(port, 'CLUSTER', 'NODES'));
    return text
      .trim()
      .split('\n')
      .map((line): ClusterNodeInfo & { failed: boolean } => {
        const f = line.split(' ');
        const addr = f[1]!.split('@')[0]!;
        const flags = f[2]!;
        return {
          port: Number(addr.slice(addr.lastIndexOf(':') + 1)),
          role: flags.includes('master') ? 'master' : 'slave',
          id: f[0]!,
          primaryId: f[3] === '-' ? undefined : f[3],
          failed: flags.includes('fail'),
          slots: f
            .slice(8)
            .filter((r) => !r.startsWith('['))
            .map((r) => {
              const [a, b] = r.split('-');
              return [Number(a), Number(b ?? a)] as [number, number];
            }),
        };
      });
  }

  const cluster: TestRedisCluster = {
    ports,
    nodesEnv: ports.map((p) => `127.0.0.1:${p}`).join(','),
    command: call,
    topology,
    async primaryOfSlot(slot) {
      const nodes = await topology();
      const owner = nodes.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no primary owns slot ${slot}`);
      return owner.port;
    },
    async replicaOf(primaryPort) {
      const nodes = await topology(primaryPort);
      const me = nodes.find((n) => n.port === primaryPort)!;
      const replica = nodes.find((n) => n.primaryId === me.id);
      if (!replica) throw new Error(`no replica of :${primaryPort}`);
      return replica.port;
    },
    async moveSlot(slot, toPort) {
      const nodes = await topology();
      const from = await cluster.primaryOfSlot(slot);
      const src = nodes.find((n) => n.port === from)!;
      const dst = nodes.find((n) => n.port === toPort)!;
      if (from === toPort) throw new Error(`slot ${slot} is on :${toPort} already`);
      await call(toPort, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', src.id);
      await call(from, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', dst.id);
      for (let round = 0; round < 100; round++) {
        const keys = (await call(from, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100')) as string[];
        if (keys.length === 0) break;
        await call(from, 'MIGRATE', '127.0.0.1', String(toPort), '', '0', '5000', 'KEYS', ...keys);
      }
      for (const port of [toPort, from, ...nodes.filter((n) => n.role === 'master').map((n) => n.port)])
        await call(port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', dst.id);
      await waitFor(
        async () => {
          for (const p of ports) {
            const view = await topology(p).catch(() => []);
            const owner = view.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
            if (owner?.port !== toPort) return false;
          }
          return true;
        },
        `slot ${slot} on :${toPort}, as every node sees it`,
        15_000,
      );
      return { from, to: toPort };
    },
    async failover(primaryPort) {
      const nodes = await topology(primaryPort);
      const me = nodes.find((n) => n.port === primaryPort)!;
      const replica = nodes.find((n) => n.primaryId === me.id);
      if (!replica) throw new Error(`no replica of :${primaryPort}`);
      await call(replica.port, 'CLUSTER', 'FAILOVER');
      // Every node has heard of the promotion.
      await waitFor(
        async () => {
          for (const p of ports) {
            const view = await topology(p).catch(() => []);
            if (view.find((n) => n.port === replica.port)?.role !== 'master') return false;
          }
          return true;
        },
        `replica :${replica.port} promoted, as every node sees it`,
        15_000,
      );
      return { from: primaryPort, to: replica.port };
    },
    async killPrimary(primaryPort) {
      const nodes = await topology(primaryPort);
      const me = nodes.find((n) => n.port === primaryPort)!;
      const replica = nodes.find((n) => n.primaryId === me.id);
      if (!replica) throw new Error(`no replica of :${primaryPort}`);
      const child = children.get(primaryPort)!;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
      await waitFor(
        async () => {
          for (const p of ports.filter((q) => q !== primaryPort)) {
            const view = await topology(p).catch(() => []);
            if (view.find((n) => n.port === replica.port)?.role !== 'master') return false;
          }
          return true;
        },
        `replica :${replica.port} promoted after :${primaryPort} was killed`,
        20_000,
      );
      // Every surviving node agrees the cluster is up again.
      await waitFor(
        async () => {
          for (const p of ports.filter((q) => q !== primaryPort)) {
            const info = String(await call(p, 'CLUSTER', 'INFO').catch(() => ''));
            if (!/cluster_state:ok/.test(info)) return false;
          }
          return true;
        },
        'cluster_state:ok after the failover',
        20_000,
      );
      const promotedAt = Date.now();
      launch(primaryPort);
      await waitFor(
        async () => {
          const info = String(await call(primaryPort, 'INFO', 'replication').catch(() => ''));
          return /role:slave/.test(info) && /master_link_status:up/.test(info);
        },
        `:${primaryPort} back as a replica in sync`,
        20_000,
      );
      return { from: primaryPort, to: replica.port, promotedAt };
    },
    stop,
  };
  return cluster;
}
