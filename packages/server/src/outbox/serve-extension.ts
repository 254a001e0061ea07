import type { Herald } from '../herald.js';
import { createOutboxConsumer } from './consumer.js';

/**
 * `herald serve` starts the outbox consumer when HERALD_DATABASE_URL is set. Tuning (all optional):
 * HERALD_OUTBOX_BATCH_SIZE (@default 100), HERALD_OUTBOX_POLL_MS (@default 1000 Postgres, 100 SQLite),
 * HERALD_OUTBOX_WORKERS (@default 4 Postgres, 1 SQLite); like the limits (HERALD_OUTBOX_MAX_PAYLOAD,
 * HERALD_OUTBOX_MAX_BATCH_BYTES, HERALD_OUTBOX_STUCK_AFTER) they are read and checked by the config (config/index.ts).
 */
export function startServeOutbox(herald: Herald): void {
  const url = herald.config.databaseUrl;
  if (!url) return;
  const consumer = createOutboxConsumer({
    herald,
    url,
    batchSize: herald.config.outboxBatchSize,
    pollIntervalMs: herald.config.outboxPollIntervalMs,
    workers: herald.config.outboxWorkers,
  });
  // start() only schedules the loop; the loop reports its own failures (log and /ready).
  consumer.start().catch((err: unknown) => herald.log.error({ err }, 'outbox consumer failed to start'));
  // Stop claiming before the engine closes, so no batch publishes into a closed engine.
  herald.onClose(() => consumer.stop());
}
