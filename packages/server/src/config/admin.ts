import { z } from 'zod';

/**
 * The admin web UI's settings (docs/admin.md): Centrifugo v6's `admin` section (`enabled`, `password`, `secret`,
 * `insecure`, `handler_prefix`) and HERALD_ADMIN_* in the environment. Checked here: enabling the UI without a password
 * and a secret (and without `insecure`) refuses to start, naming the missing key.
 */
export interface AdminConfig {
  /** HERALD_ADMIN_ENABLED; file: admin.enabled. Serves the UI and its JSON endpoints under `path`. @default false */
  enabled: boolean;
  /** HERALD_ADMIN_PASSWORD; file: admin.password. The one password the login form accepts. */
  password?: string;
  /** HERALD_ADMIN_SECRET; file: admin.secret. Signs the session cookie and the UI's own connection tokens. */
  secret?: string;
  /** HERALD_ADMIN_INSECURE; file: admin.insecure. No login at all (development only; warned about at start). @default false */
  insecure: boolean;
  /** HERALD_ADMIN_PATH; file: admin.handler_prefix. Where the UI is served. @default '/admin' */
  path: string;
}

/** Shortest admin secret accepted: it signs sessions and tokens, so a guessable one signs anything. */
export const MIN_ADMIN_SECRET_LENGTH = 16;

/** The `admin` section of the config file; unknown keys are reported by the caller (misspelt ones are problems). */
export const adminFileSchema = z
  .looseObject({
    enabled: z.boolean().optional(),
    password: z.string().optional(),
    secret: z.string().optional(),
    insecure: z.boolean().optional(),
    handler_prefix: z.string().optional(),
  })
  .optional();

export type AdminFileSection = z.infer<typeof adminFileSchema>;

/** The explicit settings' shape (createHerald({ config: { admin } })). */
export const adminOverridesShape = {
  enabled: z.boolean().optional(),
  password: z.string().optional(),
  secret: z.string().optional(),
  insecure: z.boolean().optional(),
  path: z.string().optional(),
};

interface AdminSources {
  enabled: boolean | undefined;
  password: string | undefined;
  secret: string | undefined;
  insecure: boolean | undefined;
  path: string | undefined;
}

/** Merges file < environment < explicit settings, then checks the result. */
export function adminFrom(
  file: AdminFileSection,
  env: AdminSources,
  explicit: Partial<AdminConfig> | undefined,
  problems: string[],
  warnings: string[],
): AdminConfig {
  const pick = <K extends keyof AdminSources>(k: K, fileValue: AdminSources[K]): AdminSources[K] =>
    (explicit?.[k] as AdminSources[K] | undefined) ?? env[k] ?? fileValue;
  const admin: AdminConfig = {
    enabled: pick('enabled', file?.enabled) ?? false,
    password: pick('password', file?.password) || undefined,
    secret: pick('secret', file?.secret) || undefined,
    insecure: pick('insecure', file?.insecure) ?? false,
    path: normalisePath(pick('path', file?.handler_prefix) ?? '/admin'),
  };
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(admin.path) || admin.path === '/' || admin.path.includes('//'))
    problems.push(
      `HERALD_ADMIN_PATH / admin.handler_prefix: "${admin.path}" is not a usable path; write one like "/admin" (letters, digits, "-", "_", ".", "/"; not "/")`,
    );
  if (!admin.enabled) return admin;
  if (admin.insecure) {
    warnings.push(
      `admin.insecure is on: the admin UI at ${admin.path} needs no password and can publish, disconnect and read every channel. Development only, never in production.`,
    );
    return admin;
  }
  if (!admin.password)
    problems.push(
      'admin.enabled is on but admin.password is not set: set HERALD_ADMIN_PASSWORD (or admin.password), or admin.insecure for development',
    );
  if (!admin.secret)
    problems.push(
      `admin.enabled is on but admin.secret is not set: set HERALD_ADMIN_SECRET (or admin.secret) to a random string of at least ${MIN_ADMIN_SECRET_LENGTH} characters (it signs the session cookie)`,
    );
  else if (admin.secret.length < MIN_ADMIN_SECRET_LENGTH)
    problems.push(
      `admin.secret is ${admin.secret.length} characters: use a random string of at least ${MIN_ADMIN_SECRET_LENGTH} (HERALD_ADMIN_SECRET; e.g. openssl rand -hex 32)`,
    );
  return admin;
}

function normalisePath(p: string): string {
  const withSlash = p.startsWith('/') ? p : `/${p}`;
  let end = withSlash.length;
  while (end > 1 && withSlash[end - 1] === '/') end--;
  return withSlash.slice(0, end);
}
