import { Counter, Gauge, type Registry } from 'prom-client';

/** What one consumer reports about its partitions that wait after a temporary failure, read at scrape time. */
export interface WaitingSource {
  /** Partitions waiting to retry a row, and how long the longest has been waiting (ms since its first failure). */
  waiting(): { partitions: number; stuck: number; oldestMs: number };
}

/** The outbox's Prometheus metrics, on the Herald instance's own registry (shared if several consumers run). */
export interface OutboxMetrics {
  /** Rows handled, by outcome: published, dead (moved to herald_outbox_dead), skipped (no dead-letter table). */
  rows: Counter<'outcome'>;
  /** Batches that failed on the database side (connection lost, lock timeout...); the rows stay and are retried. */
  batchFailures: Counter;
  /** Temporary publish failures: the row stays and its partition retries after a backoff. */
  retries: Counter;
  /** Dead rows whose insert into herald_outbox_dead failed: the row stays in herald_outbox and is retried. */
  deadLetterFailures: Counter;
  /** 1 while the consumer is connected with a valid table, else 0. */
  running: Gauge;
  /** Registers a consumer's waiting partitions for the gauges; returns the unregister function. */
  addSource(source: WaitingSource): () => void;
}

const byRegistry = new WeakMap<Registry, OutboxMetrics>();

export function outboxMetrics(registry: Registry): OutboxMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const sources = new Set<WaitingSource>();
  const sum = () => {
    let partitions = 0;
    let stuck = 0;
    let oldestMs = 0;
    for (const s of sources) {
      const w = s.waiting();
      partitions += w.partitions;
      stuck += w.stuck;
      oldestMs = Math.max(oldestMs, w.oldestMs);
    }
    return { partitions, stuck, oldestMs };
  };
  const m: OutboxMetrics = {
    rows: new Counter({
      name: 'herald_outbox_rows_total',
      help: 'Outbox rows handled, by outcome (published, dead, skipped)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    batchFailures: new Counter({
      name: 'herald_outbox_batch_failures_total',
      help: 'Outbox batches that failed on the database side and will be retried',
      registers: [registry],
    }),
    retries: new Counter({
      name: 'herald_outbox_retries_total',
      help: 'Temporary publish failures of outbox rows; the row stays and its partition retries after a backoff',
      registers: [registry],
    }),
    deadLetterFailures: new Counter({
      name: 'herald_outbox_dead_letter_failures_total',
      help: 'Dead outbox rows that could not be written to herald_outbox_dead; they stay in herald_outbox and are retried',
      registers: [registry],
    }),
    running: new Gauge({
      name: 'herald_outbox_running',
      help: '1 while the outbox consumer is connected with a valid table',
      registers: [registry],
    }),
    addSource(source) {
      sources.add(source);
      return () => void sources.delete(source);
    },
  };
  new Gauge({
    name: 'herald_outbox_waiting_partitions',
    help: 'Partitions whose oldest row failed temporarily and waits for a retry (later rows of the partition wait too)',
    registers: [registry],
    collect() {
      this.set(sum().partitions);
    },
  });
  new Gauge({
    name: 'herald_outbox_stuck_partitions',
    help: 'Partitions waiting for longer than HERALD_OUTBOX_STUCK_AFTER',
    registers: [registry],
    collect() {
      this.set(sum().stuck);
    },
  });
  new Gauge({
    name: 'herald_outbox_oldest_waiting_seconds',
    help: 'How long the longest-waiting partition has been retrying its oldest row (0 when none waits)',
    registers: [registry],
    collect() {
      this.set(sum().oldestMs / 1000);
    },
  });
  byRegistry.set(registry, m);
  return m;
}
