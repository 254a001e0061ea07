import { parseArgs } from 'node:util';
import { migrateOutbox } from '../outbox/consumer.js';

export const migrateUsage = `herald migrate [--database-url URL]
  Creates herald_outbox and herald_outbox_dead (and, on Postgres, the NOTIFY trigger) if missing; never drops
  or alters an existing table. URL: postgres://... or file:./herald.db (default HERALD_DATABASE_URL). See @herald/server/docs/outbox.md.`;

export async function migrate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { 'database-url': { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(migrateUsage);
    return 0;
  }
  const url = values['database-url'] ?? process.env.HERALD_DATABASE_URL;
  if (!url) {
    console.error(
      `herald migrate: set HERALD_DATABASE_URL or pass --database-url (postgres://... or file:./herald.db)\n${migrateUsage}`,
    );
    return 2;
  }
  const r = await migrateOutbox(url);
  console.log(`herald migrate: herald_outbox and herald_outbox_dead are ready (${r.dialect}, ${r.target})`);
  return 0;
}
