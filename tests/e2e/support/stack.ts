/**
 * The example's database and `herald serve` nodes for the e2e tests: a fresh SQLite file per test, migrated by the
 * example's own scripts/db.mjs, and Herald as the example runs it (outbox consumer on that file, the disconnect
 * webhook to the app, optionally the Redis engine).
 */
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
// The example's own database script (generate the Prisma clients offline, apply the migrations).
import { generate, migrate } from '../../../examples/next-app/scripts/db.mjs';
import pg from 'pg';
import { PG_HOST, PG_PORT, pgRole } from '../../../packages/server/test/outbox-helpers.js';
import { start, waitFor, type Child } from './processes.js';

const repo = resolve(import.meta.dirname, '..', '..', '..');
export const appDir = join(repo, 'examples', 'next-app');
const heraldCli = join(repo, 'packages', 'server', 'dist', 'cli', 'main.js');
const require = createRequire(join(appDir, 'package.json'));

interface SqliteDb {
  prepare(sql: string): { all(...args: unknown[]): unknown[]; get(...args: unknown[]): unknown };
  close(): void;
}

export { generate as generatePrismaClients };

const dirs: string[] = [];
const databases: string[] = [];

/** Removes the temporary SQLite files and config folders, and drops the Postgres databases made by freshDb. */
export async function removeTempDirs(): Promise<void> {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const name of databases.splice(0)) await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ host: PG_HOST, port: PG_PORT, database: 'test', user: await pgRole() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export interface ExampleDb {
  url: string;
  kind: 'sqlite' | 'postgres';
  /** Rows of a query (a fresh connection each time). */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
}

/**
 * A new database with the example's migrations applied: a SQLite file, or a Postgres database of its own on the
 * test server (127.0.0.1:5432 unless HERALD_TEST_PG_HOST/PORT), dropped by removeTempDirs.
 */
export async function freshDb(kind: 'sqlite' | 'postgres' = 'sqlite'): Promise<ExampleDb> {
  if (kind === 'postgres') {
    const name = `herald_e2e_${randomBytes(4).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${name}`);
    databases.push(name);
    const url = `postgres://${await pgRole()}@${PG_HOST}:${PG_PORT}/${name}`;
    await migrate(url);
    return {
      url,
      kind,
      async rows<T>(sql: string) {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          return (await c.query(sql)).rows as T[];
        } finally {
          await c.end();
        }
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'herald-e2e-db-'));
  dirs.push(dir);
  const url = `file:${join(dir, 'app.db')}`;
  await migrate(url);
  const Database = require('better-sqlite3') as new (path: string, opts?: { readonly?: boolean }) => SqliteDb;
  return {
    url,
    kind,
    async rows<T>(sql: string) {
      const db = new Database(url.slice('file:'.length), { readonly: true });
      try {
        return db.prepare(sql).all() as T[];
      } finally {
        db.close();
      }
    },
  };
}

export interface HeraldNode {
  port: number;
  child: Child;
  stop(): Promise<void>;
  /** Starts it again on the same port with the same settings. */
  restart(): Promise<void>;
}

/**
 * `herald serve` configured like the example's scripts: herald.config.json plus a disconnect webhook to
 * `appPort`, the outbox consumer on `dbUrl` (unless null), the Redis engine under `redisPrefix` (when given).
 */
export async function heraldServe(opts: {
  port: number;
  appPort: number;
  secret: string;
  webhookSecret: string;
  dbUrl: string | null;
  redisPrefix?: string;
  name?: string;
}): Promise<HeraldNode> {
  const config = JSON.parse(readFileSync(join(appDir, 'herald.config.json'), 'utf8')) as Record<string, unknown>;
  config['webhooks'] = [
    {
      endpoint: `http://127.0.0.1:${opts.appPort}/api/herald/webhook`,
      events: ['disconnect'],
      secret: opts.webhookSecret,
      flush_interval: '20ms',
    },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'herald-e2e-config-'));
  dirs.push(dir);
  const file = join(dir, 'herald.json');
  writeFileSync(file, JSON.stringify(config));
  const env: Record<string, string | undefined> = {
    WS_PORT: String(opts.port),
    HERALD_HOST: '127.0.0.1',
    HERALD_TOKEN_SECRET: opts.secret,
    HERALD_CONFIG: file,
    HERALD_DATABASE_URL: opts.dbUrl ?? undefined,
    HERALD_OUTBOX_POLL_MS: '50',
    HERALD_LOG_LEVEL: 'warn',
    HERALD_SHUTDOWN_TIMEOUT: '1s',
    ...(opts.redisPrefix ? { HERALD_ENGINE: 'redis', HERALD_REDIS_PREFIX: opts.redisPrefix } : {}),
  };
  const name = opts.name ?? `herald :${opts.port}`;
  const node: HeraldNode = {
    port: opts.port,
    child: undefined as unknown as Child,
    stop: () => node.child.stop(),
    async restart() {
      node.child = start(name, process.execPath, [heraldCli, 'serve'], { cwd: appDir, env });
      // /ready: listening, and (with a database) the outbox consumer running on a valid table.
      await waitFor(
        `${name} ready`,
        async () => {
          const res = await fetch(`http://127.0.0.1:${opts.port}/ready`, { signal: AbortSignal.timeout(2000) });
          await res.arrayBuffer();
          return res.status === 200;
        },
        30_000,
        node.child,
      );
    },
  };
  await node.restart();
  return node;
}

/** A Redis key prefix of its own, so parallel suites on the shared Redis never meet. */
export const redisPrefix = (): string => `herald-e2e-${randomBytes(4).toString('hex')}`;
