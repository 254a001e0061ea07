#!/usr/bin/env node
// `npm test`: installs if needed, builds, then runs every test file with Node's own test runner (TypeScript via tsx).
// Usage: npm test [-- <file or folder> ...]   (default: every *.test.ts under packages/*/test and tests/)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureSystemPackages } from './provision.mjs';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
process.chdir(root);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) run('npm', ['ci', '--no-audit', '--no-fund']);
run('npm', ['run', 'build', '--silent']);

// Lint (type-aware rules and import boundaries, eslint.config.js) on a full run; a run of chosen files skips it.
if (process.argv.length <= 2) {
  console.log('lint: eslint packages/*/src/**/*.ts');
  run(process.execPath, [
    join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'),
    '--max-warnings=0',
    'packages/*/src/**/*.ts',
  ]);
  // Formatting (Prettier, .prettierrc.json): `npm run format` rewrites what this check reports.
  console.log('format: prettier --check .');
  run(process.execPath, [
    join(root, 'node_modules', 'prettier', 'bin', 'prettier.cjs'),
    '--check',
    '--log-level=warn',
    '.',
  ]);
}

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      collect(join(path, name), out);
    }
  } else if (/\.test\.(ts|mts|js|mjs)$/.test(path)) out.push(path);
  return out;
}

const args = process.argv.slice(2);
const roots =
  args.length > 0
    ? args
    : [...readdirSync('packages').map((p) => join('packages', p, 'test')), 'tests'].filter((p) => existsSync(p));
const files = roots.flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error('no test files found under ' + roots.join(', '));
  process.exit(1);
}
ensureSystemPackages(files);
const concurrency = process.env.HERALD_TEST_CONCURRENCY ?? '2';
run(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { env: { ...process.env, NODE_ENV: 'test' } },
);
