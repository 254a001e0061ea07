// The example's database, without Prisma's engine binaries (they cannot be downloaded everywhere this runs):
//   - generate: `prisma generate` for both schemas (SQLite and Postgres) into lib/generated/. Prisma 7's client needs
//     no query engine (it runs on a driver adapter), and generate never runs the schema engine, which only has to
//     exist: a stand-in file is enough.
//   - migrate: applies the migration SQL of the schema DATABASE_URL needs (prisma/migrations or
//     prisma/postgres/migrations) and records each in _prisma_migrations the way `prisma migrate deploy` does, so
//     that command (and `prisma migrate dev`) take over from here where the engines can be downloaded.
// `node scripts/db.mjs` does both; the dev, build and start scripts call it.
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(appDir, 'package.json'));

/** DATABASE_URL, or the SQLite file prisma/dev.db; a relative file: path is made absolute (Herald and Next.js share it). */
export function databaseUrl(url = process.env.DATABASE_URL) {
  if (!url) return `file:${join(appDir, 'prisma', 'dev.db')}`;
  if (!url.startsWith('file:')) return url;
  const path = url.slice('file:'.length).split('?')[0];
  return `file:${isAbsolute(path) ? path : resolve(appDir, path)}`;
}

export const isPostgres = (url) => /^postgres(ql)?:\/\//.test(url);

const SCHEMAS = [join(appDir, 'prisma', 'schema.prisma'), join(appDir, 'prisma', 'postgres', 'schema.prisma')];
const GENERATED = join(appDir, 'lib', 'generated');

/** Generates both Prisma clients, offline, unless the schemas are unchanged since the last run. */
export function generate({ force = false } = {}) {
  const hash = createHash('sha256');
  for (const s of SCHEMAS) hash.update(readFileSync(s));
  hash.update(JSON.stringify(require('prisma/package.json').version));
  const stamp = join(GENERATED, '.schema-hash');
  const digest = hash.digest('hex');
  if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return;
  const cli = require.resolve('prisma/build/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'herald-example-prisma-'));
  try {
    const engine = join(dir, 'schema-engine');
    writeFileSync(engine, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    for (const schema of SCHEMAS) {
      const r = spawnSync(process.execPath, [cli, 'generate', '--schema', schema], {
        cwd: appDir,
        encoding: 'utf8',
        env: {
          ...process.env,
          PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? engine,
          PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING: '1',
          PRISMA_HIDE_UPDATE_MESSAGE: '1',
          CHECKPOINT_DISABLE: '1',
        },
      });
      if (r.status !== 0)
        throw new Error(`prisma generate --schema ${schema} failed (${r.status}):\n${r.stderr}${r.stdout}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(GENERATED, { recursive: true });
  writeFileSync(stamp, digest);
}

function migrations(postgres) {
  const dir = postgres ? join(appDir, 'prisma', 'postgres', 'migrations') : join(appDir, 'prisma', 'migrations');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => ({ name, sql: readFileSync(join(dir, name, 'migration.sql'), 'utf8') }));
}

const checksum = (sql) => createHash('sha256').update(sql).digest('hex');

/** Applies the migrations `url` has not had yet, each in a transaction; returns the names applied. */
export async function migrate(url = databaseUrl()) {
  return isPostgres(url) ? migratePostgres(url) : migrateSqlite(url);
}

function migrateSqlite(url) {
  const Database = require('better-sqlite3');
  const path = url.slice('file:'.length).split('?')[0];
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME, "migration_name" TEXT NOT NULL,
      "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
      "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`);
    const done = new Set(
      db
        .prepare('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL')
        .all()
        .map((r) => r.migration_name),
    );
    const applied = [];
    for (const m of migrations(false)) {
      if (done.has(m.name)) continue;
      db.transaction(() => {
        db.exec(m.sql);
        db.prepare(
          `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES (?, ?, strftime('%s','now') * 1000, ?, 1)`,
        ).run(randomUUID(), checksum(m.sql), m.name);
      })();
      applied.push(m.name);
    }
    return applied;
  } finally {
    db.close();
  }
}

async function migratePostgres(url) {
  const { default: pg } = await import(pathToFileURL(require.resolve('pg')).href);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const { rows } = await client.query('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL');
    const done = new Set(rows.map((r) => r.migration_name));
    const applied = [];
    for (const m of migrations(true)) {
      if (done.has(m.name)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query(
          `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES ($1, $2, now(), $3, 1)`,
          [randomUUID(), checksum(m.sql), m.name],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      applied.push(m.name);
    }
    return applied;
  } finally {
    await client.end();
  }
}

/** generate + migrate, with one line of output each. */
export async function prepareDatabase(url = databaseUrl()) {
  generate();
  const applied = await migrate(url);
  const where = isPostgres(url) ? url.replace(/\/\/[^@/]*@/, '//') : url;
  console.log(
    `database ${where}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'} (Prisma clients in lib/generated/)`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await prepareDatabase();
}
