import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { OutboxAdmin } from '../admin/outbox-source.js';
import type { BatchOutcome, BatchResult, DeadRow, OutboxRow, OutboxStore, SchemaState } from './consumer.js';
import { withinBudget } from './budget.js';
import { columnProblem, SQLITE_MIGRATION } from './schema.js';
import { ConfigError } from '../config/index.js';
import { isMissing, missingDependency } from '../optional-deps.js';

/**
 * The SQLite outbox store (contract on OutboxStore in consumer.ts); the only importer of a SQLite driver.
 * One node consumes a file: rows are read in id order, published, then deleted in a short write transaction, so the
 * application's writers are never blocked while Herald publishes. A crash before the delete re-delivers the batch.
 */

/** The few calls Herald needs; `node:sqlite` (Node >= 22.5) and better-sqlite3 (Node 20) both have this shape. */
export interface SqliteDb {
  exec(sql: string): void;
  prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): unknown };
  close(): void;
}

export interface SqliteDriver {
  name: 'node:sqlite' | 'better-sqlite3';
  open(path: string): SqliteDb;
}

/**
 * The built-in `node:sqlite` when this Node has it unflagged, otherwise better-sqlite3 (a native addon built for one
 * Node ABI: CI runs Node 20 and 24 from one install, and only the built-in module works on both).
 */
export async function loadSqliteDriver(prefer?: SqliteDriver['name']): Promise<SqliteDriver> {
  if (prefer !== 'better-sqlite3') {
    try {
      const specifier = 'node:sqlite';
      const mod = (await import(specifier)) as { DatabaseSync: new (path: string) => SqliteDb };
      return { name: 'node:sqlite', open: (path) => new mod.DatabaseSync(path) };
    } catch (err) {
      if (prefer === 'node:sqlite') throw err;
    }
  }
  const require = createRequire(import.meta.url);
  let Database: new (path: string) => SqliteDb;
  try {
    Database = require('better-sqlite3') as typeof Database;
  } catch (err) {
    if (!isMissing(err, 'better-sqlite3')) throw err;
    throw new ConfigError([missingDependency('sqlite-outbox')]);
  }
  return {
    name: 'better-sqlite3',
    open(path) {
      try {
        return new Database(path);
      } catch (err) {
        // Installed without its native addon: npm 12 (and npm 11 set to enforce) skips install scripts not in allowScripts.
        if (err instanceof Error && /bindings file|NODE_MODULE_VERSION|\.node\b/.test(err.message))
          throw new Error(
            `better-sqlite3 is installed but its native addon does not load on Node ${process.versions.node} (${err.message}). ` +
              'Allow its install script ("allowScripts": { "better-sqlite3": true } in package.json, npm 11.16+) and run ' +
              '`npm rebuild better-sqlite3`, ' +
              'or run Herald on Node 22.13 or later, which uses the built-in node:sqlite.',
            { cause: err },
          );
        throw err;
      }
    },
  };
}

/** `file:./herald.db`, `file:/abs/herald.db`, `file:///abs/herald.db` or `sqlite:...`; relative paths are from the cwd. */
export function sqlitePath(url: string): string {
  let rest = url.replace(/^(file|sqlite):/i, '');
  rest = rest.split('?')[0] ?? '';
  if (rest.startsWith('//')) rest = rest.replace(/^\/\/[^/]*/, '');
  if (rest === '') throw new Error(`HERALD_DATABASE_URL "${url}" names no file`);
  return rest === ':memory:' ? rest : resolve(decodeURIComponent(rest));
}

export interface SqliteStoreOptions {
  /** How long a statement waits for the application's write lock before giving up (then retried). @default 250 */
  busyTimeoutMs?: number;
  driver?: SqliteDriver['name'];
}

export function createSqliteStore(
  url: string,
  options: SqliteStoreOptions = {},
): OutboxStore & { driverName(): string | undefined } {
  const path = sqlitePath(url);
  // Statements are synchronous: a long busy wait would stall every WebSocket of this process, so keep it short.
  const busyTimeoutMs = options.busyTimeoutMs ?? 250;
  let db: SqliteDb | undefined;
  let driver: SqliteDriver | undefined;
  /** Published rows whose delete failed (database busy): deleted before anything is claimed again, never re-published. */
  const pendingDelete = new Set<string>();
  const pendingDead: { row: OutboxRow; error: string }[] = [];

  function open(): SqliteDb {
    if (!db) throw new Error('sqlite outbox store is not connected');
    return db;
  }

  function tableNames(): string[] {
    return (open().prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map(
      (r) => r.name,
    );
  }

  /**
   * Deletes published rows and moves dead ones, in one short write transaction. A dead row whose insert fails is
   * stored with its payload as a JSON string (`herald_unstorable_payload`); if that fails too, it stays and is returned.
   */
  function settle(done: readonly string[], dead: readonly DeadRow[]): DeadRow[] {
    if (done.length === 0 && dead.length === 0) return [];
    const d = open();
    const refused: DeadRow[] = [];
    d.exec('BEGIN IMMEDIATE');
    try {
      const toDead = (payload: string) =>
        d.prepare(
          `INSERT OR IGNORE INTO herald_outbox_dead (id, method, payload, partition, created_at, error)
         SELECT id, method, ${payload}, partition, created_at, ? FROM herald_outbox WHERE id = ?`,
        );
      for (const x of dead) {
        d.exec('SAVEPOINT herald_dead');
        try {
          toDead('payload').run(x.error, Number(x.row.id));
        } catch (first) {
          d.exec('ROLLBACK TO herald_dead');
          try {
            toDead(`json_object('herald_unstorable_payload', CAST(payload AS TEXT))`).run(
              `${x.error} [payload stored as text under "herald_unstorable_payload": ${(first as Error).message}]`,
              Number(x.row.id),
            );
          } catch (second) {
            d.exec('ROLLBACK TO herald_dead');
            refused.push({ row: x.row, error: (second as Error).message });
          }
        }
        d.exec('RELEASE herald_dead');
      }
      const refusedIds = new Set(refused.map((r) => r.row.id));
      const ids = JSON.stringify(
        [...done, ...dead.map((x) => x.row.id).filter((id) => !refusedIds.has(id))].map(Number),
      );
      d.prepare('DELETE FROM herald_outbox WHERE id IN (SELECT value FROM json_each(?))').run(ids);
      d.exec('COMMIT');
      return refused;
    } catch (err) {
      try {
        d.exec('ROLLBACK');
      } catch {
        // no transaction left to roll back
      }
      throw err;
    }
  }

  const hasDead = () => tableNames().includes('herald_outbox_dead');
  /** Runs `fn` in a short write transaction. */
  function write<T>(fn: (d: SqliteDb) => T): T {
    const d = open();
    d.exec('BEGIN IMMEDIATE');
    try {
      const out = fn(d);
      d.exec('COMMIT');
      return out;
    } catch (err) {
      try {
        d.exec('ROLLBACK');
      } catch {
        // no transaction left to roll back
      }
      throw err;
    }
  }
  const changes = (r: unknown) => Number((r as { changes?: number | bigint }).changes ?? 0);

  const admin: OutboxAdmin = {
    target: `file:${path}`,
    async overview(limit) {
      // One read transaction (a WAL snapshot): a row being moved to the dead letters by another connection is counted
      // either as waiting or as dead, never as both. The reads are synchronous, so no write of this connection interleaves.
      const d = open();
      d.exec('BEGIN');
      try {
        const row = d
          .prepare(
            `SELECT count(*) AS n, CAST(strftime('%s', 'now') - strftime('%s', min(created_at)) AS INTEGER) AS age FROM herald_outbox`,
          )
          .all()[0] as { n: number; age: number | null };
        const withDead = hasDead();
        const deadCount = withDead
          ? Number((d.prepare('SELECT count(*) AS n FROM herald_outbox_dead').all()[0] as { n: number }).n)
          : null;
        const rows = withDead
          ? (d
              .prepare(
                `SELECT id, method, CAST(payload AS TEXT) AS payload, partition, created_at, failed_at, error
                 FROM herald_outbox_dead ORDER BY failed_at DESC, id DESC LIMIT ?`,
              )
              .all(limit) as Record<string, unknown>[])
          : [];
        return {
          summary: {
            pending: Number(row.n),
            oldest_age_seconds: row.age === null ? null : Number(row.age),
            dead: deadCount,
          },
          dead: rows.map((r) => ({
            id: String(r.id),
            method: String(r.method),
            payload: String(r.payload),
            partition: String(r.partition),
            created_at: String(r.created_at),
            failed_at: String(r.failed_at),
            error: String(r.error),
          })),
        };
      } finally {
        d.exec('COMMIT');
      }
    },
    async retryDead(id) {
      return write((d) => {
        const moved = changes(
          d
            .prepare(
              'INSERT INTO herald_outbox (method, payload, partition) SELECT method, payload, partition FROM herald_outbox_dead WHERE id = ?',
            )
            .run(Number(id)),
        );
        d.prepare('DELETE FROM herald_outbox_dead WHERE id = ?').run(Number(id));
        return moved > 0;
      });
    },
    async deleteDead(id) {
      return write((d) => changes(d.prepare('DELETE FROM herald_outbox_dead WHERE id = ?').run(Number(id))) > 0);
    },
  };

  return {
    dialect: 'sqlite',
    target: `file:${path}`,
    driverName: () => driver?.name,
    admin,

    async connect() {
      if (db) return;
      driver ??= await loadSqliteDriver(options.driver);
      const d = driver.open(path);
      try {
        d.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
        d.exec('PRAGMA journal_mode = WAL');
      } catch (err) {
        d.close();
        throw err;
      }
      db = d;
    },

    async checkSchema(): Promise<SchemaState> {
      const cols = open()
        .prepare(`SELECT name, type, "notnull" AS nn FROM pragma_table_info('herald_outbox')`)
        .all() as { name: string; type: string; nn: number }[];
      const problem = columnProblem(
        'sqlite',
        cols.map((c) => ({ name: c.name, type: c.type, notNull: c.nn === 1 })),
      );
      const deadLetter = tableNames().includes('herald_outbox_dead');
      return problem ? { problem, deadLetter } : { deadLetter };
    },

    async createIfOwned() {
      const foreign = tableNames().filter((n) => !n.startsWith('herald_') && !n.startsWith('sqlite_'));
      if (foreign.length > 0) return false;
      open().exec(SQLITE_MIGRATION);
      return true;
    },

    async migrate() {
      open().exec(SQLITE_MIGRATION);
    },

    async runBatch(claim, deliver: (rows: OutboxRow[]) => Promise<BatchOutcome>): Promise<BatchResult> {
      let deadLetterFailed: DeadRow[] = [];
      if (pendingDelete.size > 0 || pendingDead.length > 0) {
        deadLetterFailed = settle([...pendingDelete], pendingDead);
        pendingDelete.clear();
        pendingDead.length = 0;
      }
      // Sizes first; then the payloads that fit the batch's byte budget (a row over maxRowBytes is never read).
      const claimed = open()
        .prepare(
          `SELECT CAST(id AS TEXT) AS id, method, CAST(partition AS TEXT) AS partition, length(CAST(payload AS BLOB)) AS bytes
           FROM herald_outbox
          WHERE herald_outbox.id NOT IN (SELECT value FROM json_each(?))
            AND CAST(partition AS TEXT) NOT IN (SELECT value FROM json_each(?))
          ORDER BY herald_outbox.id LIMIT ?`,
        )
        .all(
          JSON.stringify([...claim.excludeIds].map(Number)),
          JSON.stringify([...claim.excludePartitions]),
          claim.limit,
        ) as { id: string; method: string; partition: string; bytes: number }[];
      if (claimed.length === 0) return { claimed: 0, deadLetterFailed };
      const rows = withinBudget(claimed, claim);
      const read = rows.filter((r) => r.bytes <= claim.maxRowBytes).map((r) => Number(r.id));
      if (read.length > 0) {
        const payloads = open()
          .prepare(
            `SELECT CAST(id AS TEXT) AS id, CAST(payload AS TEXT) AS payload FROM herald_outbox WHERE id IN (SELECT value FROM json_each(?))`,
          )
          .all(JSON.stringify(read)) as { id: string; payload: string }[];
        const byId = new Map(payloads.map((r) => [r.id, r.payload]));
        for (const r of rows) r.payload = byId.get(r.id);
      }
      const out = await deliver(rows.map((r) => ({ ...r })));
      try {
        deadLetterFailed.push(...settle(out.done, out.dead));
      } catch (err) {
        for (const id of out.done) pendingDelete.add(id);
        pendingDead.push(...out.dead);
        throw err;
      }
      return { claimed: rows.length, deadLetterFailed };
    },

    wait(ms, signal) {
      if (signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, ms);
        signal.addEventListener('abort', done, { once: true });
      });
    },

    async close() {
      const d = db;
      db = undefined;
      d?.close();
    },
  };
}
