/**
 * What the admin UI reads and does on a node's outbox (docs/admin.md, "Outbox & webhooks"). The outbox store
 * implements it (outbox/postgres.ts, outbox/sqlite.ts) and the consumer registers it on the Herald it runs in
 * (Herald.adminSources); this file imports nothing, so neither side depends on the other.
 */
export interface DeadLetter {
  id: string;
  method: string;
  /** The row's payload as JSON text. */
  payload: string;
  partition: string;
  created_at: string;
  failed_at: string;
  error: string;
}

export interface OutboxSummary {
  /** Rows waiting in herald_outbox. */
  pending: number;
  /** Seconds since the oldest waiting row was written, or null when none waits. */
  oldest_age_seconds: number | null;
  /** Rows in herald_outbox_dead, or null when that table does not exist. */
  dead: number | null;
}

export interface OutboxAdmin {
  readonly target: string;
  /**
   * The summary and the newest `limit` dead letters (newest first), read in one snapshot: a row being moved to the
   * dead letters is counted either as waiting or as dead, never as both.
   */
  overview(limit: number): Promise<{ summary: OutboxSummary; dead: DeadLetter[] }>;
  /** Moves a dead letter back into herald_outbox (a new id, last of its partition); false when it is not there. */
  retryDead(id: string): Promise<boolean>;
  /** Deletes a dead letter; false when it is not there. */
  deleteDead(id: string): Promise<boolean>;
}

/** Slots extensions fill for the admin UI. */
export interface AdminSources {
  outbox?: OutboxAdmin;
}
