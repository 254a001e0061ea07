// Herald nodes as real processes (`herald serve` from the build) and a throwaway Postgres cluster, for tests/outbox.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrateOutbox } from '../../packages/server/src/index.js';
import { waitFor } from '../../packages/server/test/outbox-helpers.js';
import { freePort, spawnServe } from '../support/herald-child.js';

export { bin, freePort } from '../support/herald-child.js';
export const API_KEY = 'outbox-test-key';

let configFile: string | undefined;
/** A Centrifugo v6-style config: any channel of the default namespace, with history for the API's `history` call. */
function config(): string {
  if (configFile) return configFile;
  const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-cfg-'));
  configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      channel: {
        without_namespace: {
          allow_subscribe_for_client: true,
          history_size: 5000,
          history_ttl: '300s',
          force_recovery: true,
        },
      },
    }),
  );
  return configFile;
}

export interface HeraldProcess {
  port: number;
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Record<string, any>[];
  /** `outbox row published` log lines: id, partition, high-resolution wall-clock time. */
  published(): { id: number; partition: number; at: number }[];
  ready(): Promise<number>;
  api(method: string, body: unknown): Promise<any>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<HeraldProcess>();

export async function startHerald(databaseUrl: string, env: Record<string, string> = {}): Promise<HeraldProcess> {
  const port = await freePort();
  const { child, logs, stderr, exited } = spawnServe({
    WS_PORT: String(port),
    HERALD_HOST: '127.0.0.1',
    HERALD_DATABASE_URL: databaseUrl,
    HERALD_CLIENT_INSECURE: 'true',
    HERALD_API_KEY: API_KEY,
    HERALD_CONFIG: config(),
    HERALD_LOG_LEVEL: 'debug',
    HERALD_OUTBOX_POLL_MS: '200',
    ...env,
  });
  const p: HeraldProcess = {
    port,
    child,
    logs,
    published: () =>
      logs
        .filter((l) => l.msg === 'outbox row published')
        .map((l) => ({ id: Number(l.outboxId), partition: Number(l.partition), at: Number(l.at) })),
    async ready() {
      const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
      return r?.status ?? 0;
    },
    async api(method, body) {
      const r = await fetch(`http://127.0.0.1:${port}/api/${method}`, {
        method: 'POST',
        headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const j = (await r.json()) as { result?: unknown; error?: unknown };
      if (j.error) throw new Error(`api ${method}: ${JSON.stringify(j.error)}`);
      return j.result;
    },
    async kill(signal = 'SIGKILL') {
      running.delete(p);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  running.add(p);
  child.on('exit', (code, sig) => {
    if (running.has(p) && code !== 0)
      process.stderr.write(`herald on :${port} exited (${code ?? sig}): ${stderr().slice(-2000)}\n`);
  });
  return p;
}

export async function startReadyHerald(databaseUrl: string, env: Record<string, string> = {}): Promise<HeraldProcess> {
  const p = await startHerald(databaseUrl, env);
  await waitFor(async () => (await p.ready()) === 200, `herald on :${p.port} /ready 200`, 20_000);
  return p;
}

/** Kills every node still running and removes the config file. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
  if (configFile) rmSync(join(configFile, '..'), { recursive: true, force: true });
  configFile = undefined;
}

/** A Postgres cluster of our own (Debian's initdb + pg_ctl) under /tmp, so restarting it touches nobody else's. */
export interface Cluster {
  port: number;
  url(schemaOrDb?: string): string;
  start(): void;
  stop(mode?: 'fast' | 'immediate'): void;
  destroy(): void;
}

const PG_BIN = process.env.HERALD_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export function clusterUnavailable(): string | undefined {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `no initdb in ${PG_BIN} (set HERALD_TEST_PG_BIN)`;
  if (process.getuid?.() === 0 && spawnSync('id', ['postgres']).status !== 0)
    return 'running as root and no postgres user for initdb';
  return undefined;
}

export async function createCluster(): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]) => {
    const full = asRoot
      ? (['runuser', ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args]] as const)
      : ([join(PG_BIN, cmd), args] as const);
    const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  const port = await freePort();
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const start = () =>
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  start();
  return {
    port,
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    start,
    stop,
    destroy() {
      try {
        stop('immediate');
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface OutboxDatabase {
  cluster: Cluster;
  url: string;
  /** The application's own pool on that database. */
  app: pg.Pool;
  /** Inserts outbox rows n = from..to-1 on 2 partitions, channel `<prefix><n % 2>`, payload `{n}`. */
  insert(from: number, to: number, channelPrefix?: string): Promise<void>;
}

/**
 * A throwaway Postgres cluster with the outbox table, and an application pool on it; `cleanups` receives what to
 * undo. Fails loudly when the machine cannot run one (no initdb).
 */
export async function throwawayOutboxDatabase(cleanups: Array<() => unknown>): Promise<OutboxDatabase> {
  const missing = clusterUnavailable();
  if (missing) throw new Error(`a throwaway Postgres cluster is needed: ${missing}`);
  const cluster = await createCluster();
  cleanups.push(() => cluster.destroy());
  const url = cluster.url();
  await migrateOutbox(url);
  const app = new pg.Pool({ connectionString: url, max: 2 });
  app.on('error', () => {});
  cleanups.push(() => app.end());
  return {
    cluster,
    url,
    app,
    async insert(from, to, channelPrefix = 'r') {
      const values = [];
      for (let n = from; n < to; n++)
        values.push(`('{"channel":"${channelPrefix}${n % 2}","data":{"n":${n}}}'::jsonb, ${n % 2})`);
      const sql = `INSERT INTO herald_outbox (payload, partition) VALUES ${values.join(',')}`;
      // After the cluster restarted, the pool may still hold a connection the stop killed: the first query on it
      // fails before it reaches the server ("Connection terminated unexpectedly"); the pool drops it, so try again.
      for (let attempt = 0; ; attempt++) {
        try {
          await app.query(sql);
          return;
        } catch (err) {
          if (attempt >= 4 || !/Connection terminated|ECONNRESET|ECONNREFUSED/.test(String((err as Error).message)))
            throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}
