import { ConfigError } from '../config/index.js';
import type { OutboxAdmin } from '../admin/outbox-source.js';
import type { Herald } from '../herald.js';
import { isInstalled, isMissing, missingDependency } from '../optional-deps.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { DEFAULT_MAX_JSON_DEPTH, jsonTextDepthProblem } from '../protocol/json-depth.js';
import { itemsOf, type OutboxItem } from './items.js';
import { outboxMetrics } from './metrics.js';
import { howToCreate, type SqlDialect } from './schema.js';

/** One outbox row as the stores hand it over: ids and partitions as decimal text (bigint-safe), payload as JSON text. */
export interface OutboxRow {
  id: string;
  method: string;
  /** The payload's JSON text; undefined when it is larger than the claim's `maxRowBytes` (it was not read). */
  payload?: string;
  /** Size of the payload's text in bytes. */
  bytes: number;
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

/** What a batch may claim; read once per batch. */
export interface Claim {
  /** Most rows. */
  limit: number;
  /** Rows whose payload is larger are handed over without it (`payload` undefined): the consumer dead-letters them. */
  maxRowBytes: number;
  /** Most payload bytes read per batch (the rows after the budget wait for the next batch; the first row always fits). */
  maxBatchBytes: number;
  /** Rows not to claim (dead rows kept in the table when there is no dead-letter table). */
  excludeIds: ReadonlySet<string>;
  /** Partitions not to claim (waiting to retry after a temporary failure). */
  excludePartitions: ReadonlySet<string>;
}

export interface BatchResult {
  /** Rows handed to `deliver`. */
  claimed: number;
  /** Dead rows the store could not write to herald_outbox_dead (they stay in herald_outbox), with the database's error. */
  deadLetterFailed: DeadRow[];
}

export interface SchemaState {
  /** Undefined when the outbox table fits; otherwise what is wrong, in words. */
  problem?: string;
  /** Whether herald_outbox_dead exists; without it dead rows are logged and skipped in memory. */
  deadLetter: boolean;
}

/**
 * A database holding herald_outbox. The contract every store keeps (postgres.ts, sqlite.ts):
 * - `runBatch` claims rows as `Claim` bounds them (never a partition of `excludePartitions`, never two batches of
 *   one partition at once across every consumer sharing the table), hands them to `deliver` in `id` order within
 *   each partition, then deletes `done` and moves `dead` in one transaction. A failure anywhere before that commit
 *   leaves every row in place (re-delivered later). A dead row whose dead-letter insert fails, even with the payload
 *   stored as a JSON string, stays in the table and is reported in `deadLetterFailed`; the others still commit.
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
  runBatch(claim: Claim, deliver: (rows: OutboxRow[]) => Promise<BatchOutcome>): Promise<BatchResult>;
  /**
   * Rejects when the database cannot answer a trivial query (server down, network lost). After a failed batch it tells
   * "unreachable" (`/ready` 503) from "busy" (a lock held by the application). Stores without it never report unreachable.
   */
  ping?(): Promise<void>;
  /** Pending rows and dead letters for the admin UI (admin/outbox-source.ts). */
  readonly admin?: OutboxAdmin;
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
  /** Rows with a larger payload are moved to herald_outbox_dead unread. @default herald.config.outboxMaxPayloadBytes (1 MiB) */
  maxPayloadBytes?: number;
  /** Payload bytes read per batch. @default herald.config.outboxMaxBatchBytes (16 MiB) */
  maxBatchBytes?: number;
  /** A partition waiting this long on one row logs `outbox_partition_stuck` and counts as stuck. @default herald.config.outboxStuckAfterMs (60 s) */
  stuckAfterMs?: number;
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
  throw new Error(
    `HERALD_DATABASE_URL must start with postgres:// (or postgresql://) or file: (SQLite, e.g. file:./herald.db), got "${url.replace(/\/\/[^@/]*@/, '//***@')}"`,
  );
}

/**
 * The driver a URL needs, when it is not installed: a ConfigError naming what to install. The drivers are optional
 * peer dependencies of @herald/server; SQLite needs none on a Node with `node:sqlite` (22.13+), better-sqlite3 before.
 */
export function missingDriver(url: string): ConfigError | undefined {
  if (dialectOf(url) === 'postgres')
    return isInstalled('pg') ? undefined : new ConfigError([missingDependency('postgres-outbox')]);
  return hasNodeSqlite() || isInstalled('better-sqlite3')
    ? undefined
    : new ConfigError([missingDependency('sqlite-outbox')]);
}

/** Whether this Node has `node:sqlite` without a flag (22.13+, 23.4+). */
function hasNodeSqlite(): boolean {
  // process.getBuiltinModule (Node 20.16+) answers without loading a driver; undefined when the module is absent.
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  try {
    return typeof get === 'function' && get('node:sqlite') !== undefined;
  } catch {
    return false;
  }
}

/** Opens the store for a URL; the database drivers load only when their URL is used. */
export async function openStore(url: string): Promise<OutboxStore> {
  const missing = missingDriver(url);
  if (missing) throw missing;
  if (dialectOf(url) === 'postgres') {
    const { createPostgresStore } = await import('./postgres.js').catch((err: unknown) => {
      throw isMissing(err, 'pg') ? new ConfigError([missingDependency('postgres-outbox')]) : err;
    });
    return createPostgresStore(url);
  }
  const { createSqliteStore } = await import('./sqlite.js');
  return createSqliteStore(url);
}

/**
 * Whether a failure can succeed on a later try (engine down, timeout) rather than never (bad channel, bad body, a Redis
 * reply error about the request). Judged on the error's shape, whatever raised it: a HeraldError (or anything with a
 * numeric `code` and a boolean `temporary`) says so itself; a RangeError comes from the content (a value nested too
 * deep to serialize) and is permanent; any other error is taken as temporary.
 */
export function isTemporary(err: unknown): boolean {
  if (err instanceof HeraldError) return err.temporary;
  const e = err as { code?: unknown; temporary?: unknown } | null;
  if (e !== null && typeof e === 'object' && typeof e.code === 'number' && typeof e.temporary === 'boolean')
    return e.temporary;
  return !(err instanceof RangeError);
}

/** A failure's text for logs and dead-letter reasons, with its stable code when it has one. */
function describe(err: unknown): string {
  if (err instanceof HeraldError) return `${err.message} (code ${err.code})`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Items of one row already stored, or failed for good, on this node: a retry calls only the others. */
interface RowProgress {
  stored: Set<string>;
  dead: Map<string, string>;
}

/** A partition whose oldest row failed temporarily: it is not claimed again before `until`. */
interface Waiting {
  since: number;
  until: number;
  attempts: number;
  rowId: string;
  error: string;
  stuckLoggedAt: number;
}

/** How many rows' partial progress is remembered (oldest forgotten first; a forgotten row relies on its keys). */
const MAX_PROGRESS = 10_000;
/** Longest dead-letter reason kept (a batch row can list many failed items). */
const MAX_REASON = 8000;

export function createOutboxConsumer(options: OutboxConsumerOptions): OutboxConsumer {
  const { herald } = options;
  const url = options.url ?? herald.config.databaseUrl;
  if (!options.store && !url)
    throw new Error('createOutboxConsumer: pass `url` or set HERALD_DATABASE_URL (postgres://... or file:./herald.db)');
  if (!options.store) {
    // A driver that is not installed fails here, at startup (`herald serve` exits naming it), not in the retry loop.
    const missing = missingDriver(url!);
    if (missing) throw missing;
  }
  const batchSize = options.batchSize ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  const maxPayloadBytes = options.maxPayloadBytes ?? herald.config.outboxMaxPayloadBytes;
  const maxBatchBytes = Math.max(maxPayloadBytes, options.maxBatchBytes ?? herald.config.outboxMaxBatchBytes);
  const stuckAfterMs = options.stuckAfterMs ?? herald.config.outboxStuckAfterMs;
  // The API's own bounds (HERALD_MAX_JSON_DEPTH, HERALD_API_MAX_BATCH, HERALD_API_MAX_BROADCAST) apply to rows too.
  const api: { maxJsonDepth?: number; apiMaxBatchCommands?: number; apiMaxBroadcastChannels?: number } = herald.config;
  const maxJsonDepth = api.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const itemLimits = {
    maxBatchCommands: api.apiMaxBatchCommands ?? 1000,
    maxBroadcastChannels: api.apiMaxBroadcastChannels ?? 1000,
  };
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`outbox batchSize must be a positive integer, got ${batchSize}`);
  if (
    options.workers !== undefined &&
    (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > 32)
  ) {
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

  /** Items of rows not settled yet (a retry calls only what is missing), by row id, oldest first. */
  const progress = new Map<string, RowProgress>();
  /** Partitions waiting after a temporary failure, on this node. */
  const waiting = new Map<string, Waiting>();
  const unregisterSource = metrics.addSource({
    waiting() {
      const now = Date.now();
      let stuck = 0;
      let oldestMs = 0;
      for (const w of waiting.values()) {
        oldestMs = Math.max(oldestMs, now - w.since);
        if (now - w.since >= stuckAfterMs) stuck++;
      }
      return { partitions: waiting.size, stuck, oldestMs };
    },
  });

  function progressOf(id: string): RowProgress {
    let p = progress.get(id);
    if (!p) {
      p = { stored: new Set(), dead: new Map() };
      progress.set(id, p);
      if (progress.size > MAX_PROGRESS) progress.delete(progress.keys().next().value!);
    }
    return p;
  }

  /** Partitions not to claim now; forgets entries long overdue (their row was settled elsewhere, or the partition is empty). */
  function waitingPartitions(): Set<string> {
    const now = Date.now();
    const out = new Set<string>();
    for (const [p, w] of waiting) {
      if (w.until > now) out.add(p);
      else if (now - w.until > 30_000 + maxBackoffMs) waiting.delete(p);
    }
    return out;
  }

  /** A row of `partition` could not be settled for now: the partition waits (with backoff), the others go on. */
  function hold(row: OutboxRow, error: string, what: 'publish' | 'dead-letter'): void {
    const now = Date.now();
    let w = waiting.get(row.partition);
    if (!w || w.rowId !== row.id) {
      w = { since: now, until: now, attempts: 0, rowId: row.id, error, stuckLoggedAt: 0 };
      waiting.set(row.partition, w);
    }
    w.attempts++;
    w.error = error;
    const ms = backoff(w.attempts - 1);
    w.until = now + ms;
    const fields = {
      outboxId: row.id,
      partition: row.partition,
      method: row.method,
      attempts: w.attempts,
      retryInMs: ms,
      err: error,
    };
    if (what === 'dead-letter' && w.attempts === 1) {
      log.error(
        { ...fields, code: 'outbox_dead_letter_failed' },
        'outbox row cannot be published and herald_outbox_dead refused it: it stays in herald_outbox, its partition waits and retries with backoff (check the dead-letter table)',
      );
    } else if (what === 'publish' && w.attempts === 1) {
      log.warn(
        fields,
        'outbox publish failed temporarily: this partition waits and retries with backoff, other partitions go on',
      );
    } else {
      log.debug(fields, 'outbox row still cannot be settled: its partition keeps waiting');
    }
    if (now - w.since >= stuckAfterMs && now - w.stuckLoggedAt >= stuckAfterMs) {
      w.stuckLoggedAt = now;
      log.error(
        { ...fields, code: 'outbox_partition_stuck', waitingSeconds: Math.round((now - w.since) / 1000) },
        `outbox partition ${row.partition} has been waiting ${Math.round((now - w.since) / 1000)} s on row ${row.id}: later rows of this partition are not published until it goes through (other partitions are)`,
      );
    }
  }

  function release(partition: string, rowId: string): void {
    if (waiting.get(partition)?.rowId === rowId) waiting.delete(partition);
  }

  type RowResult = { kind: 'done' } | { kind: 'dead'; error: string } | { kind: 'temporary'; error: string };

  async function callItem(item: OutboxItem, p: RowProgress): Promise<string | undefined> {
    if (item.error) {
      p.dead.set(item.index, describe(item.error));
      return undefined;
    }
    try {
      await herald.call(item.method, item.params, { source: 'outbox' });
      p.stored.add(item.index);
      return undefined;
    } catch (err) {
      if (isTemporary(err)) return describe(err);
      p.dead.set(item.index, describe(err));
      return undefined;
    }
  }

  async function deliverRow(row: OutboxRow): Promise<RowResult> {
    if (row.payload === undefined) {
      return {
        kind: 'dead',
        error: describe(
          new HeraldError(
            ErrorCode.limitExceeded,
            `limit exceeded: payload is ${row.bytes} bytes, over HERALD_OUTBOX_MAX_PAYLOAD (${maxPayloadBytes} bytes); it was not read: split the event or raise the limit`,
          ),
        ),
      };
    }
    const tooDeep = jsonTextDepthProblem(row.payload, maxJsonDepth);
    if (tooDeep) return { kind: 'dead', error: describe(new HeraldError(ErrorCode.badRequest, tooDeep)) };
    let items: OutboxItem[];
    try {
      items = itemsOf(row.id, row.method, JSON.parse(row.payload), itemLimits);
    } catch (err) {
      if (err instanceof SyntaxError)
        return { kind: 'dead', error: `payload is not JSON: ${err.message} (code ${ErrorCode.badRequest})` };
      return { kind: 'dead', error: describe(err) };
    }
    const p = progressOf(row.id);
    const todo = items.filter((i) => !p.stored.has(i.index) && !p.dead.has(i.index));
    let temporary: string | undefined;
    if (todo.every((i) => i.sequential)) {
      // In order; a temporary failure stops here, so a later item is never stored before an earlier one.
      for (const item of todo) {
        temporary = await callItem(item, p);
        if (temporary !== undefined) break;
      }
    } else {
      const results = await Promise.all(todo.map((item) => callItem(item, p)));
      temporary = results.find((r) => r !== undefined);
    }
    if (temporary !== undefined) return { kind: 'temporary', error: temporary };
    if (p.dead.size === 0) return { kind: 'done' };
    if (items.length === 1) return { kind: 'dead', error: [...p.dead.values()][0]! };
    const failed = items
      .filter((i) => p.dead.has(i.index))
      .map((i) => `[${i.index}] ${i.label}: ${p.dead.get(i.index)}`);
    let reason = `${failed.length} of ${items.length} items cannot be published (the other ${items.length - failed.length} were): ${failed.join('; ')}`;
    if (reason.length > MAX_REASON) reason = `${reason.slice(0, MAX_REASON)}…`;
    return { kind: 'dead', error: reason };
  }

  async function deliver(rows: OutboxRow[]): Promise<BatchOutcome> {
    const out: BatchOutcome = { done: [], dead: [] };
    /** Partitions with a row held back in this batch: their later rows wait too (order within a partition). */
    const held = new Set<string>();
    for (const row of rows) {
      if (skipped.has(row.id) || held.has(row.partition)) continue;
      const r = await deliverRow(row);
      if (r.kind === 'temporary') {
        held.add(row.partition);
        metrics.retries.inc();
        hold(row, r.error, 'publish');
      } else if (r.kind === 'done') {
        out.done.push(row.id);
        release(row.partition, row.id);
        log.debug(
          {
            outboxId: row.id,
            partition: row.partition,
            method: row.method,
            at: performance.timeOrigin + performance.now(),
          },
          'outbox row published',
        );
      } else {
        out.dead.push({ row, error: r.error });
      }
    }
    return out;
  }

  /** The `outbox_dead_letter` webhook event of a row given up on (docs/proxy.md, "Webhooks"). */
  function deadLetterEvent(d: DeadRow, table: boolean): void {
    herald.webhooks.emit('outbox_dead_letter', {
      outbox_id: d.row.id,
      partition: d.row.partition,
      method: d.row.method,
      error: d.error,
      dead_letter_table: table,
    });
  }

  /** Counts and logs what a committed batch settled, and holds the partitions of rows the dead-letter table refused. */
  function settled(out: BatchOutcome, failed: DeadRow[]): void {
    const refused = new Set(failed.map((f) => f.row.id));
    for (const id of out.done) progress.delete(id);
    metrics.rows.inc({ outcome: 'published' }, out.done.length);
    for (const d of out.dead) {
      if (refused.has(d.row.id)) continue;
      progress.delete(d.row.id);
      release(d.row.partition, d.row.id);
      metrics.rows.inc({ outcome: 'dead' });
      deadLetterEvent(d, true);
      log.error(
        {
          code: 'outbox_row_dead',
          outboxId: d.row.id,
          partition: d.row.partition,
          method: d.row.method,
          error: d.error,
        },
        'outbox row cannot be published: moved to herald_outbox_dead',
      );
    }
    for (const f of failed) {
      metrics.deadLetterFailures.inc();
      hold(f.row, f.error, 'dead-letter');
    }
  }

  async function worker(index: number): Promise<void> {
    let failures = 0;
    const pollMs = options.pollIntervalMs ?? (store!.dialect === 'postgres' ? 1000 : 100);
    while (!abort.signal.aborted) {
      try {
        let out: BatchOutcome = { done: [], dead: [] };
        const claim: Claim = {
          limit: batchSize,
          maxRowBytes: maxPayloadBytes,
          maxBatchBytes,
          excludeIds: skipped,
          excludePartitions: waitingPartitions(),
        };
        const r = await store!.runBatch(claim, async (rows) => {
          out = await deliver(rows);
          if (deadLetter) return out;
          for (const d of out.dead) {
            skipped.add(d.row.id);
            progress.delete(d.row.id);
            metrics.rows.inc({ outcome: 'skipped' });
            deadLetterEvent(d, false);
            log.error(
              {
                code: 'outbox_row_dead',
                outboxId: d.row.id,
                partition: d.row.partition,
                method: d.row.method,
                error: d.error,
                payload: d.row.payload?.slice(0, 1000),
              },
              'outbox row cannot be published: skipped and left in herald_outbox (no herald_outbox_dead table; `herald migrate` creates it)',
            );
          }
          out = { done: out.done, dead: [] };
          return out;
        });
        settled(out, r.deadLetterFailed);
        if (failures > 0) log.info({ worker: index }, 'outbox database reachable again: consuming');
        failures = 0;
        if (failing.delete(index) && failing.size === 0 && !abort.signal.aborted)
          herald.setReadiness(READINESS, { ok: true });
        if (r.claimed === 0) {
          // Nothing to claim now; a partition waiting to retry is due no later than its `until`.
          let ms = pollMs;
          for (const w of waiting.values()) ms = Math.min(ms, Math.max(10, w.until - Date.now()));
          await store!.wait(ms, abort.signal);
        }
      } catch (err) {
        if (abort.signal.aborted) break;
        failures++;
        metrics.batchFailures.inc();
        const unreachable = await (store!.ping?.() ?? Promise.resolve()).then(
          () => undefined,
          (e: Error) => e,
        );
        if (unreachable && !abort.signal.aborted) {
          failing.add(index);
          herald.setReadiness(READINESS, {
            ok: false,
            reason: `outbox database not reachable: ${unreachable.message}`,
          });
        }
        const ms = backoff(failures);
        (failures === 1 ? log.warn.bind(log) : log.debug.bind(log))(
          { worker: index, err: (err as Error).message, retryInMs: ms },
          'outbox batch failed (database unreachable?): pausing, nothing is lost',
        );
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
          if (schema.problem !== lastProblem)
            log.error({ target: store.target }, howToCreate(store.dialect, schema.problem));
          lastProblem = schema.problem;
          herald.setReadiness(READINESS, {
            ok: false,
            reason: `${schema.problem}: run \`herald migrate\` (see @herald/server/docs/outbox.md)`,
          });
          await sleep(options.schemaRecheckMs ?? 5000);
          continue;
        }
        deadLetter = schema.deadLetter;
        if (!deadLetter)
          log.warn(
            'herald_outbox_dead does not exist: rows that cannot be published will be logged and skipped (`herald migrate` creates the table)',
          );
        break;
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof ConfigError) {
          // A driver that is not installed (or a URL it cannot use) does not fix itself: say so once and stop.
          log.error({ err: err.message }, 'outbox consumer cannot start');
          herald.setReadiness(READINESS, {
            ok: false,
            reason: `outbox consumer cannot start: ${err.problems.join('; ')}`,
          });
          return;
        }
        attempt++;
        const ms = backoff(attempt);
        const reason = `outbox database not reachable: ${(err as Error).message}`;
        herald.setReadiness(READINESS, { ok: false, reason });
        (attempt === 1 ? log.warn.bind(log) : log.debug.bind(log))(
          { target: store?.target, err: (err as Error).message, retryInMs: ms },
          'outbox database not reachable; retrying',
        );
        await sleep(ms);
      }
    }
    if (abort.signal.aborted || !store) return;
    if (store.admin && herald.adminSources) herald.adminSources.outbox = store.admin;
    // SQLite has one writer; more workers would only re-read the same rows.
    const workers = store.dialect === 'postgres' ? (options.workers ?? 4) : 1;
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
      unregisterSource();
      if (store?.admin && herald.adminSources?.outbox === store.admin) delete herald.adminSources.outbox;
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
