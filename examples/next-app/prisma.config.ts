// What `prisma migrate dev`, `prisma migrate deploy` and `prisma generate` use where Prisma's engines can be
// downloaded (scripts/db.mjs does without them). DATABASE_URL picks the schema: SQLite by default, Postgres for a
// postgres:// URL, with the same default file as the app (prisma/dev.db).
import { defineConfig } from 'prisma/config';

const url = process.env.DATABASE_URL || 'file:./prisma/dev.db';
const postgres = /^postgres(ql)?:\/\//.test(url);

export default defineConfig({
  schema: postgres ? 'prisma/postgres/schema.prisma' : 'prisma/schema.prisma',
  migrations: { path: postgres ? 'prisma/postgres/migrations' : 'prisma/migrations' },
  datasource: { url },
});
