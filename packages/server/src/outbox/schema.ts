/**
 * The outbox tables: SQL text for each database, the Prisma model, and the check Herald runs at start.
 * The layout is Centrifugo's (`centrifugo_outbox`) under Herald's name, so an application can move between the two
 * by renaming one table. Mirrored by docs/outbox.md.
 */

export const OUTBOX_TABLE = 'herald_outbox';
export const DEAD_TABLE = 'herald_outbox_dead';
/** LISTEN/NOTIFY channel; the trigger created by `herald migrate` notifies it once per inserting statement. */
export const NOTIFY_CHANNEL = 'herald_outbox';

export type SqlDialect = 'postgres' | 'sqlite';

/** What `herald migrate` runs on Postgres. Idempotent; never drops or alters an existing table. */
export const POSTGRES_MIGRATION = `CREATE TABLE IF NOT EXISTS herald_outbox (
  id bigserial PRIMARY KEY,
  method text NOT NULL DEFAULT 'publish',
  payload jsonb NOT NULL,
  partition bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS herald_outbox_partition_id_idx ON herald_outbox (partition, id);
CREATE TABLE IF NOT EXISTS herald_outbox_dead (
  id bigint PRIMARY KEY,
  method text NOT NULL,
  payload jsonb NOT NULL,
  partition bigint NOT NULL,
  created_at timestamptz NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now(),
  error text NOT NULL
);
CREATE OR REPLACE FUNCTION herald_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('herald_outbox', '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS herald_outbox_notify ON herald_outbox;
CREATE TRIGGER herald_outbox_notify AFTER INSERT ON herald_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION herald_outbox_notify();
`;

/** SQLite equivalent: JSON stored as TEXT, timestamps as ISO-8601 TEXT. */
export const SQLITE_MIGRATION = `CREATE TABLE IF NOT EXISTS herald_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  method TEXT NOT NULL DEFAULT 'publish',
  payload TEXT NOT NULL,
  partition INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS herald_outbox_partition_id_idx ON herald_outbox (partition, id);
CREATE TABLE IF NOT EXISTS herald_outbox_dead (
  id INTEGER PRIMARY KEY,
  method TEXT NOT NULL,
  payload TEXT NOT NULL,
  partition INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  failed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  error TEXT NOT NULL
);
`;

/** The model a Prisma user adds to schema.prisma (Postgres); `prisma migrate dev` then creates the same table. */
export const PRISMA_MODEL = `model HeraldOutbox {
  id        BigInt   @id @default(autoincrement())
  method    String   @default("publish")
  payload   Json
  partition BigInt   @default(0)
  createdAt DateTime @default(now()) @map("created_at") @db.Timestamptz(6)

  @@index([partition, id])
  @@map("herald_outbox")
}`;

export interface ColumnInfo {
  name: string;
  /** Postgres: format_type() output, e.g. "bigint", "timestamp with time zone"; SQLite: the declared type. */
  type: string;
  notNull: boolean;
}

/** Accepted column types per dialect. Integer widths are lenient so Centrifugo's `partition integer` also passes. */
const EXPECTED: Record<SqlDialect, Record<string, RegExp>> = {
  postgres: {
    id: /^(bigint|integer)$/,
    method: /^(text|character varying.*)$/,
    payload: /^jsonb?$/,
    partition: /^(bigint|integer|smallint)$/,
    created_at: /^timestamp/,
  },
  sqlite: {
    id: /^INTEGER$/i,
    method: /^(TEXT|VARCHAR.*)$/i,
    payload: /^(TEXT|JSON|JSONB|BLOB)$/i,
    partition: /^(INTEGER|INT|BIGINT)$/i,
    created_at: /^(TEXT|DATETIME|TIMESTAMP|INTEGER|NUMERIC)$/i,
  },
};

/** Returns what is wrong with the table's columns in words, or undefined when it fits. */
export function columnProblem(dialect: SqlDialect, columns: ColumnInfo[]): string | undefined {
  if (columns.length === 0) return `table ${OUTBOX_TABLE} does not exist`;
  const byName = new Map(columns.map((c) => [c.name, c]));
  const problems: string[] = [];
  for (const [name, re] of Object.entries(EXPECTED[dialect])) {
    const c = byName.get(name);
    if (!c) problems.push(`column "${name}" is missing`);
    else if (!re.test(c.type)) problems.push(`column "${name}" has type ${c.type}`);
    else if (name !== 'id' && name !== 'created_at' && !c.notNull && dialect === 'postgres')
      problems.push(`column "${name}" must be NOT NULL`);
  }
  return problems.length > 0
    ? `table ${OUTBOX_TABLE} does not match the expected layout: ${problems.join('; ')}`
    : undefined;
}

/** The operator-facing text for a missing or wrong table: every way to create it. */
export function howToCreate(dialect: SqlDialect, problem: string): string {
  if (dialect === 'sqlite') {
    return `${problem}. Create it with \`herald migrate\` (same HERALD_DATABASE_URL), or run this SQL:\n${SQLITE_MIGRATION}`;
  }
  return (
    `${problem}. Herald never creates or alters tables on Postgres by itself. Create it with one of:\n` +
    `  1. \`herald migrate\` (same HERALD_DATABASE_URL), or the SQL in @herald/server/docs/outbox.md;\n` +
    `  2. with Prisma: add this model to schema.prisma and run \`prisma migrate dev\`:\n${PRISMA_MODEL}\n` +
    `Herald checks again every few seconds; /ready answers 503 until the table is there.`
  );
}
