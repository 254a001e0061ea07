import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseUrl, isPostgres, prepareDatabase } from './db.mjs';
import { heraldConfig } from './herald-config.mjs';

export const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = join(appDir, '..', '..');
export const heraldCli = join(repoDir, 'packages', 'server', 'dist', 'cli', 'main.js');
export const nextBin = join(repoDir, 'node_modules', 'next', 'dist', 'bin', 'next');
// Must equal the app's DEMO_SECRET (lib/auth.ts) unless NEXTAUTH_SECRET is set for both.
export const secret = process.env.NEXTAUTH_SECRET || 'herald-demo-secret-change-me-0123456789abcdef';
// Must equal the app's DEMO_WEBHOOK_SECRET (lib/auth.ts) unless HERALD_WEBHOOK_SECRET is set for both.
export const webhookSecret = process.env.HERALD_WEBHOOK_SECRET || 'herald-demo-webhook-secret-change-me';
// Proxy mode only (HERALD_AUTH=proxy). Must equal the app's DEMO_PROXY_SECRET / DEMO_API_KEY (lib/auth.ts) unless
// HERALD_PROXY_SECRET / HERALD_API_KEY are set for both.
export const proxySecret = process.env.HERALD_PROXY_SECRET || 'herald-demo-proxy-secret-change-me';
export const apiKey = process.env.HERALD_API_KEY || 'herald-demo-api-key-change-me';
/** `--proxy` on the command line, or HERALD_AUTH=proxy: the connect, publish and rpc proxies instead of tokens. */
export const proxyMode = (argv = process.argv) => argv.includes('--proxy') || process.env.HERALD_AUTH === 'proxy';

/** Herald and the client packages are built from TypeScript: build them once if this checkout has not. */
export function ensureBuilt() {
  const built = ['server', 'client', 'react', 'next'].every((p) =>
    existsSync(join(repoDir, 'packages', p, 'dist', 'index.js')),
  );
  if (built) return;
  console.log('building the Herald packages (npm run build at the repository root) ...');
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoDir, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/**
 * Herald's config file: herald.config.json (the chat namespace) plus the `webhooks` entry that POSTs disconnects to
 * this app's /api/herald/webhook, and in proxy mode the proxies to /api/herald/proxy/<kind> (scripts/herald-config.mjs).
 * Webhooks and proxies live in the file only (no variables), and the app's port varies, so the scripts write the
 * combined file to .herald/herald.json. HERALD_CONFIG names another file instead (used as is).
 */
export function writeHeraldConfig(appPort, { proxy = false } = {}) {
  if (process.env.HERALD_CONFIG) return process.env.HERALD_CONFIG;
  const config = heraldConfig({ appPort, webhookSecret, proxy, proxySecret });
  const file = join(appDir, '.herald', 'herald.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/**
 * Herald's environment: the same secret as NextAuth, port 3002 unless WS_PORT says otherwise, and the outbox
 * consumer on the app's database (HERALD_DATABASE_URL = DATABASE_URL).
 */
export function heraldEnv(appPort = process.env.PORT ?? '3000', { proxy = false } = {}) {
  return {
    WS_PORT: process.env.WS_PORT ?? '3002',
    HERALD_HOST: process.env.HERALD_HOST ?? '127.0.0.1',
    NEXTAUTH_SECRET: secret,
    HERALD_CONFIG: writeHeraldConfig(appPort, { proxy }),
    HERALD_DATABASE_URL: databaseUrl(),
    // Proxy mode: the rpc proxy asks Herald's HTTP API who is online (presence).
    ...(proxy ? { HERALD_API_KEY: apiKey } : {}),
  };
}

/**
 * Runs Herald and `next <command>` side by side (the app on PORT, default 3000) until either exits. With
 * `cluster`, a second Herald node on WS_PORT + 1 and both on the Redis engine (REDIS_URL, default
 * redis://127.0.0.1:6379); the app reaches it at /ws-2 (the page at /?node=2). On SQLite only the first node consumes
 * the outbox (one consumer per file); on Postgres both do.
 */
function withoutOutbox(env) {
  const { HERALD_DATABASE_URL: _omitted, ...rest } = env;
  return rest;
}

export async function runWithHerald(nextCommand, { cluster = false, proxy = false } = {}) {
  const { runAll } = await import('./processes.mjs');
  ensureBuilt();
  const url = databaseUrl();
  await prepareDatabase(url);
  const port = process.env.PORT ?? '3000';
  const herald = heraldEnv(port, { proxy });
  const port2 = String(Number(herald.WS_PORT) + 1);
  const redis = { HERALD_ENGINE: 'redis', REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' };
  const nodes = [
    { name: 'herald', env: cluster ? { ...herald, ...redis } : herald },
    ...(cluster
      ? [{ name: 'herald-2', env: { ...(isPostgres(url) ? herald : withoutOutbox(herald)), ...redis, WS_PORT: port2 } }]
      : []),
  ];
  const internal = (p) => `http://127.0.0.1:${p}`;
  const lines = [
    `  app       http://localhost:${port}  (sign in as alice or bob, password demo)`,
    `  herald    ws://localhost:${herald.WS_PORT}/ws  (the page reaches it at /ws through the rewrite)`,
    ...(cluster
      ? [
          `  herald-2  ws://localhost:${port2}/ws  (http://localhost:${port}/?node=2 connects through it; Redis ${redis.REDIS_URL})`,
        ]
      : []),
    `  database  ${isPostgres(url) ? url.replace(/\/\/[^@/]*@/, '//') : url}`,
    proxy
      ? '  auth      proxy mode: Herald asks /api/herald/proxy/connect with the session cookie (no token route); publish and rpc proxies on'
      : '  auth      tokens from /api/herald/token (npm run dev -- --proxy: the connect proxy instead)',
  ];
  console.log(
    `\nHerald example (${nextCommand === 'dev' ? 'development' : 'production build'}):\n${lines.join('\n')}\n`,
  );
  runAll([
    ...nodes.map((n) => ({ name: n.name, cmd: process.execPath, args: [heraldCli, 'serve'], env: n.env, cwd: appDir })),
    {
      name: 'next',
      cmd: process.execPath,
      args: [nextBin, nextCommand, '-p', port],
      env: {
        NEXTAUTH_SECRET: secret,
        HERALD_WEBHOOK_SECRET: webhookSecret,
        DATABASE_URL: url,
        NEXTAUTH_URL: process.env.NEXTAUTH_URL ?? `http://localhost:${port}`,
        HERALD_INTERNAL_URL: process.env.HERALD_INTERNAL_URL ?? internal(herald.WS_PORT),
        ...(cluster ? { HERALD_INTERNAL_URL_2: process.env.HERALD_INTERNAL_URL_2 ?? internal(port2) } : {}),
        NEXT_TELEMETRY_DISABLED: '1',
        ...(proxy ? { HERALD_AUTH: 'proxy', HERALD_PROXY_SECRET: proxySecret, HERALD_API_KEY: apiKey } : {}),
      },
      cwd: appDir,
    },
  ]);
}
