import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = join(appDir, '..', '..');
export const heraldCli = join(repoDir, 'packages', 'server', 'dist', 'cli', 'main.js');
export const nextBin = join(repoDir, 'node_modules', 'next', 'dist', 'bin', 'next');
// Must equal the app's DEMO_SECRET (lib/auth.ts) unless NEXTAUTH_SECRET is set for both.
export const secret = process.env.NEXTAUTH_SECRET || 'herald-demo-secret-change-me-0123456789abcdef';

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

/** Herald's environment: the same secret as NextAuth, the chat namespace, port 3002 unless WS_PORT says otherwise. */
export function heraldEnv() {
  return {
    WS_PORT: process.env.WS_PORT ?? '3002',
    HERALD_HOST: process.env.HERALD_HOST ?? '127.0.0.1',
    NEXTAUTH_SECRET: secret,
    HERALD_CONFIG: process.env.HERALD_CONFIG ?? join(appDir, 'herald.config.json'),
  };
}

/** Runs Herald and `next <command>` side by side (the app on PORT, default 3000) until either exits. */
export async function runWithHerald(nextCommand) {
  const { runAll } = await import('./processes.mjs');
  ensureBuilt();
  const port = process.env.PORT ?? '3000';
  const herald = heraldEnv();
  runAll([
    { name: 'herald', cmd: process.execPath, args: [heraldCli, 'serve'], env: herald, cwd: appDir },
    {
      name: 'next',
      cmd: process.execPath,
      args: [nextBin, nextCommand, '-p', port],
      env: {
        NEXTAUTH_SECRET: secret,
        NEXTAUTH_URL: process.env.NEXTAUTH_URL ?? `http://localhost:${port}`,
        HERALD_INTERNAL_URL: process.env.HERALD_INTERNAL_URL ?? `http://127.0.0.1:${herald.WS_PORT}`,
        NEXT_TELEMETRY_DISABLED: '1',
      },
      cwd: appDir,
    },
  ]);
}
