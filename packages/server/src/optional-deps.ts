import { createRequire } from 'node:module';

/**
 * The drivers @herald/server loads only when a feature is configured. They are optional peer dependencies: an app
 * installs the ones it uses (`npm install pg`), none come with `npm install @herald/server`.
 */
export type OptionalDependency = 'pg' | 'better-sqlite3' | 'ioredis' | 'pino-pretty';

const require = createRequire(import.meta.url);

/** Whether `name` can be loaded from where @herald/server is installed. */
export function isInstalled(name: OptionalDependency): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Whether `err` says that `name` itself (not something inside it) could not be found. */
export function isMissing(err: unknown, name: OptionalDependency): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object' || typeof e.message !== 'string') return false;
  if (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'MODULE_NOT_FOUND') return false;
  return e.message.includes(`'${name}'`) || e.message.includes(`"${name}"`);
}

/** The features that need an optional dependency, and what each one needs. */
const FEATURES = {
  'postgres-outbox': { needs: 'pg', what: () => 'HERALD_DATABASE_URL=postgres://… (the Postgres outbox)' },
  'sqlite-outbox': {
    needs: 'better-sqlite3',
    what: () =>
      `HERALD_DATABASE_URL=file:… (the SQLite outbox) on Node ${process.versions.node}, which has no built-in node:sqlite,`,
    alternative: 'or run Herald on Node 22.13 or later (built-in node:sqlite, no driver to install)',
  },
  'redis-engine': { needs: 'ioredis', what: () => 'HERALD_ENGINE=redis (the Redis engine)' },
  'pretty-logs': { needs: 'pino-pretty', what: () => 'pretty logs' },
} satisfies Record<string, { needs: OptionalDependency; what: () => string; alternative?: string }>;

export type OptionalFeature = keyof typeof FEATURES;

/**
 * The startup problem for a configured feature whose driver is not installed, for a ConfigError (the config error style,
 * `invalid configuration: - …`):
 * `invalid configuration: - <feature> needs the \`<name>\` package, which is not installed: run \`npm install <name>\``.
 */
export function missingDependency(feature: OptionalFeature): string {
  const f: { needs: OptionalDependency; what: () => string; alternative?: string } = FEATURES[feature];
  return (
    `${f.what()} needs the \`${f.needs}\` package, which is not installed: run \`npm install ${f.needs}\` ` +
    `(an optional peer dependency of @herald/server, installed only by apps that use it)` +
    (f.alternative ? `, ${f.alternative}` : '')
  );
}
