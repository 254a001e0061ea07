#!/usr/bin/env node
// `npm start`: installs and builds if needed, then runs `herald serve` for development with a known secret and
// API key (unless set in the environment) and the permissive channel rules of herald.dev.json.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
process.chdir(root);
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) run('npm', ['ci', '--no-audit', '--no-fund']);
run('npm', ['run', 'build', '--silent']);

const env = { ...process.env };
env.HERALD_TOKEN_SECRET ??= 'herald-dev-secret-change-me';
env.HERALD_API_KEY ??= 'herald-dev-api-key';
env.HERALD_CONFIG ??= join(root, 'herald.dev.json');
const port = env.WS_PORT ?? '3002';
// The app's dev server, and Herald's own origin for the admin UI's connection (docs/admin.md).
env.HERALD_ALLOWED_ORIGINS ??= `http://localhost:3000,http://127.0.0.1:3000,http://localhost:${port},http://127.0.0.1:${port}`;
const bin = join(root, 'packages/server/dist/cli/main.js');

console.log(`
  Herald (development) on ws://localhost:${port}/ws
    HERALD_TOKEN_SECRET=${env.HERALD_TOKEN_SECRET}
    HERALD_API_KEY=${env.HERALD_API_KEY}
    config: ${env.HERALD_CONFIG}
${
  env.HERALD_ADMIN_ENABLED === 'true'
    ? `    admin UI: http://localhost:${port}/admin/
`
    : ''
}
  Try it (another terminal, from this folder):
    export WS_PORT=${port} HERALD_TOKEN_SECRET=${env.HERALD_TOKEN_SECRET} HERALD_API_KEY=${env.HERALD_API_KEY}
    npx herald token --user alice --ttl 1h
    npx herald publish news '{"text":"hello"}'
`);
const child = spawn(process.execPath, [bin, 'serve'], { stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
