import type { Herald } from '../herald.js';
import { HeraldError } from '../protocol/codes.js';
import { outboxMetrics } from './metrics.js';
import { howToCreate, type SqlDialect } from './schema.js';

/** One outbox row as the stores hand it over: ids and partitions as decimal text (bigint-safe), payload as JSON text. */
export interface OutboxRow {
  id: string;
  method: string;
  payload: string;
  partition: string;
}

export interface DeadRow {
  row: OutboxRow;
  error: string;
}

/** What `deliver` did with a claimed batch; rows in neither list stay in the table for a later attempt. */
export interface BatchOutcome {
  /** Published rows, to delete. */
  done: string[];
  /** Rows that can never be published, to move to the dead-letter table and delete. */
  dead: DeadRow[];
}

export interface SchemaState {
  /** Undefined when the outbox table fits; otherwise what is wrong, in words. */
  problem?: string;
  /** Whether herald_outbox_dead exists; without it dead rows are logged and skipped in memory. */
  deadLetter: boolean;
}

/**
 * A database holding herald_outbox. The contract every store keeps (postgres.ts, sqlite.ts):
 * - `runBatch` claims up to `limit` rows, never two batches of one partition at once (across every consumer sharing
 *   the table), hands them to `deliver` in `id` order within each partition, then deletes `done` and moves `dead`
 *   in one transaction. A failure anywhere before that commit leaves every row in place (re-delivered later).
 * - Errors thrown by the store mean "database unavailable": the consumer backs off and calls again.
 */
export interface OutboxStore {
  readonly dialect: SqlDialect;
  /** Where the store points, without credentials, for logs. */
  readonly target: string;
  connect(): Promise<void>;
  checkSchema(): Promise<SchemaState>;
  /** Creates the table when the database is Herald's alone (SQLite file with no other tables); returns whether it did. */
  createIfOwned?(): Promise<boolean>;
  /** Creates both tables (and, on Postgres, the NOTIFY trigger) if missing: `herald migrate`. */
  migrate(): Promise<void>;
  /** `exclude` (ids skipped in memory) is read at claim time, after the partition lock: it can grow meanwhile. */
  runBatch(limit: number, exclude: ReadonlySet<string>, deliver: (rows: OutboxRow[]) => Promise<BatchOutcome>): Promise<number>;
  /**
   * Rejects when the database cannot answer a trivial query (server down, network lost). After a failed batch it tells
   * "unreachable" (`/ready` 503) from "busy" (a lock held by the application). Stores without it never report unreachable.
   */
  ping?(): Promise<void>;
  /** Resolves after `ms`, on a wake-up from the database (NOTIFY), or when `signal` aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface OutboxConsumerOptions {
  herald: Herald;
  /** `postgres://...` / `postgresql://...`, or `file:./herald.db` for SQLite. @default herald.config.databaseUrl */
  url?: string;
  /** Rows claimed per transaction. @default 100 */
  batchSize?: number;
  /** Poll interval when no NOTIFY arrives. @default 1000 on Postgres (LISTEN wakes it sooner), 100 on SQLite */
  pollIntervalMs?: number;
  /** Concurrent batches on this node, each on its own partition (1-32; SQLite always uses 1). @default 4 on Postgres, 1 on SQLite */
  workers?: number;
  /** Longest wait between reconnection attempts. @default 5000 */
  maxBackoffMs?: number;
  /** How often a missing or wrong table is checked again. @default 5000 */
  schemaRecheckMs?: number;
  /** A store built by the caller (tests, custom databases); wins over `url`. */
  store?: OutboxStore;
}

export interface OutboxConsumer {
  /** Starts in the background: connects with backoff, checks the table, then consumes. `/ready` says 503 until then. */
  start(): Promise<void>;
  /** Stops claiming, waits for batches in flight, closes the database connections. */
  stop(): Promise<void>;
  /** Resolves when the consumer is connected and the table fits (rejects after `timeoutMs`). */
  whenRunning(timeoutMs?: number): Promise<void>;
  readonly running: boolean;
}

const READINESS = 'outbox';

/** The dialect a URL names; throws with what to fix for anything else. */
export function dialectOf(url: string): SqlDialect {
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  if (/^(file|sqlite):/i.test(url)) return 'sqlite';
  throw new Error(`HERALD_DATABASE_URL must start with postgres:// (or postgresql://) or file: (SQLite, e.g. file:./herald.db), got "${url.replace(/\/\/[^@/]*@/, '//***@')}"`);
}

/** Opens the store for a URL; the database drivers load only when their URL is used. */
export async function openStore(url: string): Promise<OutboxStore> {
  if (dialectOf(url) === 'postgres') {
    const { createPostgresStore } = await import('./postgres.js');
    return createPostgresStore(url);
  }
  const { createSqliteStore } = await import('./sqlite.js');
  return createSqliteStore(url);
}

/** Whether a publish failure can succeed on a later try (engine down) rather than never (bad channel, bad body). */
export function isTemporary(err: unknown): boolean {
  return !(err instanceof HeraldError) || err.temporary;
}

export function createOutboxConsumer(options: OutboxConsumerOptions): OutboxConsumer {
  const { herald } = options;
  const url = options.url ?? herald.config.databaseUrl;
  if (!options.store && !url) throw new Error('createOutboxConsumer: pass `url` or set HERALD_DATABASE_URL (postgres://... or file:./herald.db)');
  if (!options.store) dialectOf(url!);
  const batchSize = options.batchSize ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`outbox batchSize must be a positive integer, got ${batchSize}`);
  if (options.workers !== undefined && (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > 32)) {
    throw new Error(`outbox workers must be an integer from 1 to 32, got ${options.workers}`);
  }
  const log = herald.log.child({ component: 'outbox' });
  const metrics = outboxMetrics(herald.metrics.registry);
  const abort = new AbortController();
  /** Ids of dead rows kept out of claims when there is no dead-letter table. */
  const skipped = new Set<string>();
  let store: OutboxStore | undefined = options.store;
  let runningFlag = false;
  let main: Promise<void> | undefined;
  let deadLetter = false;
  const runningWaiters: (() => void)[] = [];
  /** Workers whose last batch failed: while any is, the database counts as lost and `/ready` says 503. */
  const failing = new Set<number>();

  function sleep(ms: number): Promise<void> {
    if (abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        abort.signal.removeEventListener('abort', done);
        resolve();
      }
      abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  function backoff(attempt: number): number {
    const base = Math.min(maxBackoffMs, 100 * 2 ** Math.min(attempt, 16));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  async function deliver(rows: OutboxRow[]): Promise<BatchOutcome> {
    const out: BatchOutcome = { done: [], dead: [] };
    for (const row of rows) {
      if (skipped.has(row.id)) continue;
      let payload: unknown;
      try {
        payload = JSON.parse(row.payload);
      } catch (err) {
        out.dead.push({ row, error: `payload is not JSON: ${(err as Error).message}` });
        continue;
      }
      // A row published but not yet deleted when the node or the database failed is published again: keyed by its
      // id, that second publish is recognised (within the idempotent result TTL) and delivered to nobody twice.
      if ((row.method === 'publish' || row.method === 'broadcast') && payload !== null && typeof payload === 'object' &&
        !Array.isArray(payload) && (payload as Record<string, unknown>).idempotency_key === undefined) {
        payload = { ...(payload as Record<string, unknown>), idempotency_key: `herald-outbox-${row.id}` };
      }
      try {
        await herald.call(row.method, payload, { source: 'outbox' });
        out.done.push(row.id);
        metrics.rows.inc({ outcome: 'published' });
        log.debug({ outboxId: row.id, partition: row.partition, method: row.method, at: performance.timeOrigin + performance.now() }, 'outbox row published');
      } catch (err) {
        if (isTemporary(err)) {
          // Later rows of this partition must wait for this one: stop here, keep the rest for the next claim.
          log.warn({ outboxId: row.id, partition: row.partition, err: (err as Error).message }, 'outbox publish failed temporarily; will retry');
          throw new TemporaryFailure(out);
        }
        out.dead.push({ row, error: (err as Error).message });
      }
    }
    return out;
  }

  async function deliverAndSettle(rows: OutboxRow[], state: { paused: boolean }): Promise<BatchOutcome> {
    let out: BatchOutcome;
    try {
      out = await deliver(rows);
    } catch (err) {
      if (!(err instanceof TemporaryFailure)) throw err;
      out = err.partial;
      state.paused = true;
    }
    for (const d of out.dead) {
      metrics.rows.inc({ outcome: deadLetter ? 'dead' : 'skipped' });
      if (deadLetter) {
        log.error({ outboxId: d.row.id, partition: d.row.partition, method: d.row.method, error: d.error }, 'outbox row cannot be published: moved to herald_outbox_dead');
      } else {
        skipped.add(d.row.id);
        log.error({ outboxId: d.row.id, partition: d.row.partition, method: d.row.method, error: d.error, payload: d.row.payload.slice(0, 1000) },
          'outbox row cannot be published: skipped and left in herald_outbox (no herald_outbox_dead table; `herald migrate` creates it)');
      }
    }
    return deadLetter ? out : { done: out.done, dead: [] };
  }

  async function worker(index: number): Promise<void> {
    let failures = 0;
    const pollMs = options.pollIntervalMs ?? (store!.dialect === 'postgres' ? 1000 : 100);
    while (!abort.signal.aborted) {
      try {
        const state = { paused: false };
        const n = await store!.runBatch(batchSize, skipped, (rows) => deliverAndSettle(rows, state));
        if (failures > 0) log.info({ worker: index }, 'outbox database reachable again: consuming');
        failures = 0;
        if (failing.delete(index) && failing.size === 0 && !abort.signal.aborted) herald.setReadiness(READINESS, { ok: true });
        if (state.paused) {
          await sleep(backoff(3));
        } else if (n === 0) {
          await store!.wait(pollMs, abort.signal);
        }
      } catch (err) {
        if (abort.signal.aborted) break;
        failures++;
        metrics.batchFailures.inc();
        const unreachable = await (store!.ping?.() ?? Promise.resolve()).then(() => undefined, (e: Error) => e);
        if (unreachable && !abort.signal.aborted) {
          failing.add(index);
          herald.setReadiness(READINESS, { ok: false, reason: `outbox database not reachable: ${unreachable.message}` });
        }
        const ms = backoff(failures);
        (failures === 1 ? log.warn.bind(log) : log.debug.bind(log))({ worker: index, err: (err as Error).message, retryInMs: ms }, 'outbox batch failed (database unreachable?): pausing, nothing is lost');
        await sleep(ms);
      }
    }
  }

  async function run(): Promise<void> {
    let attempt = 0;
    let lastProblem = '';
    while (!abort.signal.aborted) {
      try {
        store ??= await openStore(url!);
        await store.connect();
        let schema = await store.checkSchema();
        if (schema.problem && store.createIfOwned && (await store.createIfOwned())) {
          log.info({ target: store.target }, 'created herald_outbox in a SQLite file that only Herald uses');
          schema = await store.checkSchema();
        }
        if (schema.problem) {
          if (schema.problem !== lastProblem) log.error({ target: store.target }, howToCreate(store.dialect, schema.problem));
          lastProblem = schema.problem;
          herald.setReadiness(READINESS, { ok: false, reason: `${schema.problem}: run \`herald migrate\` (see docs/outbox.md)` });
          await sleep(options.schemaRecheckMs ?? 5000);
          continue;
        }
        deadLetter = schema.deadLetter;
        if (!deadLetter) log.warn('herald_outbox_dead does not exist: rows that cannot be published will be logged and skipped (`herald migrate` creates the table)');
        break;
      } catch (err) {
        if (abort.signal.aborted) return;
        attempt++;
        const ms = backoff(attempt);
        const reason = `outbox database not reachable: ${(err as Error).message}`;
        herald.setReadiness(READINESS, { ok: false, reason });
        (attempt === 1 ? log.warn.bind(log) : log.debug.bind(log))({ target: store?.target, err: (err as Error).message, retryInMs: ms }, 'outbox database not reachable; retrying');
        await sleep(ms);
      }
    }
    if (abort.signal.aborted || !store) return;
    // SQLite has one writer; more workers would only re-read the same rows.
    const workers = store.dialect === 'postgres' ? options.workers ?? 4 : 1;
    runningFlag = true;
    metrics.running.set(1);
    herald.setReadiness(READINESS, { ok: true });
    log.info({ target: store.target, dialect: store.dialect, workers, batchSize }, 'outbox consumer running');
    for (const w of runningWaiters.splice(0)) w();
    await Promise.all(Array.from({ length: workers }, (_, i) => worker(i)));
  }

  return {
    async start() {
      if (!main) herald.setReadiness(READINESS, { ok: false, reason: 'outbox consumer starting' });
      main ??= run().catch((err) => {
        log.error({ err }, 'outbox consumer stopped on an unexpected error');
        herald.setReadiness(READINESS, { ok: false, reason: `outbox consumer stopped: ${(err as Error).message}` });
      });
    },
    async stop() {
      abort.abort();
      await main;
      runningFlag = false;
      metrics.running.set(0);
      await store?.close().catch((err) => log.warn({ err }, 'outbox store close failed'));
    },
    whenRunning(timeoutMs = 30_000) {
      if (runningFlag) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`outbox consumer not running after ${timeoutMs} ms`)), timeoutMs);
        runningWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
    get running() {
      return runningFlag;
    },
  };
}

class TemporaryFailure extends Error {
  constructor(readonly partial: BatchOutcome) {
    super('temporary publish failure');
  }
}

/** Creates the outbox tables (`herald migrate`). Idempotent. */
export async function migrateOutbox(url: string): Promise<{ dialect: SqlDialect; target: string }> {
  const store = await openStore(url);
  try {
    await store.connect();
    await store.migrate();
    const s = await store.checkSchema();
    if (s.problem) throw new Error(s.problem);
    return { dialect: store.dialect, target: store.target };
  } finally {
    await store.close();
  }
}
