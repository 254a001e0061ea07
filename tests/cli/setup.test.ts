// What a newcomer meets in a fresh clone: `npx herald` works, and `npm test` either installs the Debian packages
// its suites need or stops at once with the exact command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

test('npx herald runs the built CLI from the repository root', () => {
  const r = spawnSync(
    'npx',
    ['--no-install', 'herald', 'token', '--user', 'alice', '--secret', 'setup-test-secret', '--ttl', '1h'],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, HERALD_TOKEN_SECRET: 'setup-test-secret' },
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'prints a JWT');
});

test('the herald bin is a committed file, so npm links it before the first build', () => {
  const pkg = JSON.parse(readFileSync(resolve(root, 'packages/server/package.json'), 'utf8')) as {
    bin: Record<string, string>;
    files: string[];
  };
  assert.equal(pkg.bin.herald, './bin/herald.js');
  const tracked = spawnSync('git', ['ls-files', '--error-unmatch', 'packages/server/bin/herald.js'], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(tracked.status, 0, 'packages/server/bin/herald.js is tracked by git');
  assert.ok(pkg.files.includes('bin'), 'the bin folder is published');
});

test('npm test without root and without a needed package stops with the exact apt-get command', () => {
  // Runs the provisioning step as the unprivileged user `nobody` with Chromium pointed at a path that does not exist.
  const script =
    "import('./scripts/provision.mjs').then((m) => { m.ensureSystemPackages(['tests/e2e/next-app.test.ts']); console.log('went on'); })";
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    encoding: 'utf8',
    uid: 65534,
    gid: 65534,
    env: { PATH: process.env.PATH, HERALD_CHROMIUM: '/nonexistent/chromium' },
  });
  assert.equal(r.status, 1);
  assert.doesNotMatch(r.stdout, /went on/);
  assert.match(r.stderr, /chromium for tests\/e2e/);
  assert.match(r.stderr, /apt-get update && apt-get install -y chromium/);
});

test('a suite that needs no system package needs no provisioning', () => {
  const script =
    "import('./scripts/provision.mjs').then((m) => { m.ensureSystemPackages(['packages/server/test/api.test.ts']); console.log('went on'); })";
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    encoding: 'utf8',
    uid: 65534,
    gid: 65534,
    env: { PATH: process.env.PATH, HERALD_CHROMIUM: '/nonexistent/chromium' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /went on/);
});
