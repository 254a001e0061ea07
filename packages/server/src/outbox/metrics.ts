import { Counter, Gauge, type Registry } from 'prom-client';

/** The outbox's Prometheus metrics, on the Herald instance's own registry (shared if several consumers run). */
export interface OutboxMetrics {
  /** Rows handled, by outcome: published, dead (moved to herald_outbox_dead), skipped (no dead-letter table). */
  rows: Counter<'outcome'>;
  /** Batches that failed on the database side (connection lost, lock timeout...); the rows stay and are retried. */
  batchFailures: Counter;
  /** 1 while the consumer is connected with a valid table, else 0. */
  running: Gauge;
}

export function outboxMetrics(registry: Registry): OutboxMetrics {
  const existing = registry.getSingleMetric('herald_outbox_rows_total');
  if (existing) {
    return {
      rows: existing as Counter<'outcome'>,
      batchFailures: registry.getSingleMetric('herald_outbox_batch_failures_total') as Counter,
      running: registry.getSingleMetric('herald_outbox_running') as Gauge,
    };
  }
  return {
    rows: new Counter({ name: 'herald_outbox_rows_total', help: 'Outbox rows handled, by outcome (published, dead, skipped)', labelNames: ['outcome'], registers: [registry] }),
    batchFailures: new Counter({ name: 'herald_outbox_batch_failures_total', help: 'Outbox batches that failed on the database side and will be retried', registers: [registry] }),
    running: new Gauge({ name: 'herald_outbox_running', help: '1 while the outbox consumer is connected with a valid table', registers: [registry] }),
  };
}
