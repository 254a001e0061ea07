import pg from 'pg';
import type { DeadLetter, OutboxAdmin } from '../admin/outbox-source.js';
import { redactUrl } from '../logger.js';
import { withinBudget } from './budget.js';
import type { BatchOutcome, BatchResult, DeadRow, OutboxRow, OutboxStore, SchemaState } from './consumer.js';
import { columnProblem, NOTIFY_CHANNEL, POSTGRES_MIGRATION, type ColumnInfo } from './schema.js';

/**
 * The Postgres outbox store (contract on OutboxStore in consumer.ts); the only importer of `pg`.
 *
 * One batch = one transaction on one partition:
 *   1. the partitions of the oldest rows are candidates, oldest first;
 *   2. `pg_try_advisory_xact_lock` picks the first candidate no other consumer holds, so one partition is consumed by
 *      one transaction at a time on every node (SKIP LOCKED alone would let two nodes publish rows of one partition
 *      out of order);
 *   3. its rows are claimed `FOR UPDATE SKIP LOCKED` in id order, published, deleted (or moved to the dead-letter
 *      table) and committed. A crash before COMMIT rolls back: the rows stay and are published again.
 */

/** How many of the oldest rows are looked at to find partitions with work (bounded; uses the primary key). */
const PARTITION_SCAN_WINDOW = 1000;

/**
 * Moves one dead row to herald_outbox_dead inside the batch's transaction, behind a savepoint: if the payload cannot be
 * stored as it is (a `json` outbox column holding `\u0000`, which jsonb refuses), it is stored as a JSON string under
 * `herald_unstorable_payload`. Returns the database's error when even that fails (the row then stays), else undefined.
 */
async function deadLetter(client: pg.PoolClient, d: DeadRow): Promise<string | undefined> {
  const insert = (payload: string, error: string) =>
    client.query(
      `INSERT INTO herald_outbox_dead (id, method, payload, partition, created_at, error)
     SELECT id, method, ${payload}, partition, created_at, $2 FROM herald_outbox WHERE id = $1::bigint
     ON CONFLICT (id) DO NOTHING`,
      [d.row.id, error],
    );
  await client.query('SAVEPOINT herald_dead');
  try {
    await insert('payload', d.error);
    await client.query('RELEASE SAVEPOINT herald_dead');
    return undefined;
  } catch (first) {
    await client.query('ROLLBACK TO SAVEPOINT herald_dead');
    try {
      await insert(
        `jsonb_build_object('herald_unstorable_payload', payload::text)`,
        `${d.error} [payload stored as text under "herald_unstorable_payload": ${(first as Error).message}]`,
      );
      await client.query('RELEASE SAVEPOINT herald_dead');
      return undefined;
    } catch (second) {
      await client.query('ROLLBACK TO SAVEPOINT herald_dead');
      await client.query('RELEASE SAVEPOINT herald_dead');
      return (second as Error).message;
    }
  }
}

export function createPostgresStore(url: string): OutboxStore & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: url,
    // One connection per worker (at most 32) is all the consumer uses; connections open lazily.
    max: 33,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A network that drops packets silently would otherwise hang a worker (and shutdown) until TCP gives up.
    query_timeout: 60_000,
    application_name: 'herald-outbox',
  });
  // A client losing its server emits 'error' (idle ones through the pool); without a listener the process would crash.
  // The failed query rejects as well, which is where the consumer handles it; the next checkout reconnects.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));

  const target = redactUrl(url, 'postgres://(unparsable url)');
  let lockPrefix = 'herald_outbox/';
  let listener: pg.Client | undefined;
  let listenerRetry: NodeJS.Timeout | undefined;
  let listenerAttempts = 0;
  let closed = false;
  const wakers = new Set<() => void>();

  const admin: OutboxAdmin = {
    target,
    async overview(limit) {
      // One REPEATABLE READ snapshot: the consumer moves a dead row (insert + delete) in one transaction, and the
      // counts and the list must not see it half-way (waiting in one query, dead in the next).
      const client = await pool.connect();
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const r = await client.query<{ n: string; age: string | null; has_dead: boolean }>(
          `SELECT count(*) AS n, floor(extract(epoch FROM now() - min(created_at)))::bigint AS age,
             to_regclass('herald_outbox_dead') IS NOT NULL AS has_dead FROM herald_outbox`,
        );
        const row = r.rows[0]!;
        let deadCount: number | null = null;
        let rows: Record<string, unknown>[] = [];
        if (row.has_dead) {
          const d = await client.query<{ n: string }>('SELECT count(*) AS n FROM herald_outbox_dead');
          deadCount = Number(d.rows[0]!.n);
          rows = (
            await client.query<Record<string, unknown>>(
              `SELECT id::text, method, payload::text AS payload, partition::text, created_at::text, failed_at::text, error
               FROM herald_outbox_dead ORDER BY failed_at DESC, id DESC LIMIT $1`,
              [limit],
            )
          ).rows;
        }
        await client.query('COMMIT');
        return {
          summary: {
            pending: Number(row.n),
            oldest_age_seconds: row.age === null ? null : Number(row.age),
            dead: deadCount,
          },
          dead: rows.map(toDeadLetter),
        };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async retryDead(id) {
      const r = await pool.query(
        `WITH gone AS (DELETE FROM herald_outbox_dead WHERE id = $1::bigint RETURNING method, payload, partition)
         INSERT INTO herald_outbox (method, payload, partition) SELECT method, payload, partition FROM gone`,
        [id],
      );
      return (r.rowCount ?? 0) > 0;
    },
    async deleteDead(id) {
      const r = await pool.query('DELETE FROM herald_outbox_dead WHERE id = $1::bigint', [id]);
      return (r.rowCount ?? 0) > 0;
    },
  };

  function wakeAll(): void {
    for (const w of [...wakers]) w();
  }

  /** LISTEN in the background: startListener handles its own failures (polling goes on without it). */
  function listen(): void {
    startListener().catch(() => {
      /* startListener catches what it does; polling keeps delivering meanwhile */
    });
  }

  async function startListener(): Promise<void> {
    if (closed || listener) return;
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      application_name: 'herald-outbox-listen',
    });
    listener = client;
    const lost = () => {
      if (listener !== client) return;
      listener = undefined;
      client.end().catch(() => {});
      if (closed) return;
      // Polling keeps working meanwhile; LISTEN only makes delivery faster.
      const ms = Math.min(5000, 200 * 2 ** Math.min(listenerAttempts++, 5));
      listenerRetry = setTimeout(listen, ms);
      listenerRetry.unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', wakeAll);
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      listenerAttempts = 0;
      // Rows may have been inserted while nobody listened.
      wakeAll();
    } catch {
      lost();
    }
  }

  return {
    dialect: 'postgres',
    target,
    pool,

    admin,
    async connect() {
      await pool.query('SELECT 1');
      listen();
    },

    async ping() {
      await pool.query('SELECT 1');
    },

    async checkSchema(): Promise<SchemaState> {
      const cols = await pool.query<{ name: string; type: string; not_null: boolean }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
           FROM pg_attribute a
          WHERE a.attrelid = to_regclass('herald_outbox') AND a.attnum > 0 AND NOT a.attisdropped`,
      );
      const columns: ColumnInfo[] = cols.rows.map((c) => ({ name: c.name, type: c.type, notNull: c.not_null }));
      const dead = await pool.query<{ ok: boolean }>(`SELECT to_regclass('herald_outbox_dead') IS NOT NULL AS ok`);
      const problem = columnProblem('postgres', columns);
      // Advisory lock keys name the table's schema, so consumers of two schemas in one database never block each other.
      if (!problem) {
        const r = await pool.query<{ prefix: string }>(
          `SELECT n.nspname || '.herald_outbox/' AS prefix FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = to_regclass('herald_outbox')`,
        );
        lockPrefix = r.rows[0]?.prefix ?? lockPrefix;
      }
      return problem ? { problem, deadLetter: dead.rows[0]?.ok === true } : { deadLetter: dead.rows[0]?.ok === true };
    },

    async migrate() {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(POSTGRES_MIGRATION);
        await client.query('COMMIT');
        client.release();
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        client.release(err as Error);
        throw err;
      }
    },

    async runBatch(claim, deliver: (rows: OutboxRow[]) => Promise<BatchOutcome>): Promise<BatchResult> {
      const client = await pool.connect();
      const none: BatchResult = { claimed: 0, deadLetterFailed: [] };
      try {
        await client.query('BEGIN');
        const excludeIds = [...claim.excludeIds];
        const candidates = await client.query<{ p: string }>(
          `SELECT partition::text AS p FROM (
             SELECT partition, id FROM herald_outbox
              WHERE NOT (id = ANY($1::bigint[])) AND NOT (partition = ANY($3::bigint[])) ORDER BY id LIMIT $2
           ) oldest GROUP BY partition ORDER BY min(id)`,
          [excludeIds, PARTITION_SCAN_WINDOW, [...claim.excludePartitions]],
        );
        let partition: string | undefined;
        for (const { p } of candidates.rows) {
          const got = await client.query<{ ok: boolean }>(
            `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS ok`,
            [lockPrefix + p],
          );
          if (got.rows[0]?.ok) {
            partition = p;
            break;
          }
        }
        if (partition === undefined) {
          await client.query('ROLLBACK');
          client.release();
          return none;
        }
        // Claim first, reading only sizes; then read the payloads that fit the batch's byte budget.
        const claimed = await client.query<{ id: string; method: string; partition: string; bytes: number }>(
          `SELECT id::text AS id, method, partition::text AS partition, octet_length(payload::text) AS bytes
             FROM herald_outbox
            WHERE partition = $1::bigint AND NOT (id = ANY($2::bigint[]))
            ORDER BY herald_outbox.id LIMIT $3
              FOR UPDATE SKIP LOCKED`,
          [partition, excludeIds, claim.limit],
        );
        if (claimed.rows.length === 0) {
          await client.query('ROLLBACK');
          client.release();
          return none;
        }
        const rows = withinBudget(claimed.rows, claim);
        const read = rows.filter((r) => r.bytes <= claim.maxRowBytes).map((r) => r.id);
        if (read.length > 0) {
          const payloads = await client.query<{ id: string; payload: string }>(
            `SELECT id::text AS id, payload::text AS payload FROM herald_outbox WHERE id = ANY($1::bigint[])`,
            [read],
          );
          const byId = new Map(payloads.rows.map((r) => [r.id, r.payload]));
          for (const r of rows) r.payload = byId.get(r.id);
        }
        const out = await deliver(rows);
        const deadLetterFailed: DeadRow[] = [];
        for (const d of out.dead) {
          const refused = await deadLetter(client, d);
          if (refused) deadLetterFailed.push({ row: d.row, error: refused });
        }
        const refusedIds = new Set(deadLetterFailed.map((f) => f.row.id));
        const remove = [...out.done, ...out.dead.map((d) => d.row.id).filter((id) => !refusedIds.has(id))];
        if (remove.length > 0) await client.query('DELETE FROM herald_outbox WHERE id = ANY($1::bigint[])', [remove]);
        await client.query('COMMIT');
        client.release();
        return { claimed: rows.length, deadLetterFailed };
      } catch (err) {
        // Roll back so the claimed rows stay; a broken connection is discarded rather than returned to the pool.
        await client.query('ROLLBACK').catch(() => {});
        client.release(err as Error);
        throw err;
      }
    },

    wait(ms, signal) {
      if (signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          wakers.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, ms);
        wakers.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    },

    async close() {
      closed = true;
      if (listenerRetry) clearTimeout(listenerRetry);
      const l = listener;
      listener = undefined;
      await l?.end().catch(() => {});
      await pool.end().catch(() => {});
      wakeAll();
    },
  };
}

function toDeadLetter(x: Record<string, unknown>): DeadLetter {
  return {
    id: String(x.id),
    method: String(x.method),
    payload: String(x.payload),
    partition: String(x.partition),
    created_at: String(x.created_at),
    failed_at: String(x.failed_at),
    error: String(x.error),
  };
}
