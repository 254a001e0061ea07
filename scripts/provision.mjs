// The Debian packages some test suites drive for real: Chromium (the browser tests, tests/e2e, tests/newapp, tests/uni, tests/admin)
// and nginx (tests/e2e's proxy topology and tests/doctor). `npm test` calls ensureSystemPackages() before running
// anything: a missing package is installed when this process can (root, apt-get), with one line saying what and why;
// otherwise the run stops at once with the exact command to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';

/** The Chromium build the browser tests were last checked with; another version is used if Debian has moved on. */
const CHROMIUM_VERSION = '156.0.8078.108-1~deb12u1';

const PACKAGES = [
  {
    name: 'chromium',
    binary: process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium',
    suites: ['tests/e2e', 'tests/newapp', 'tests/uni', 'tests/admin'],
  },
  { name: 'nginx', binary: '/usr/sbin/nginx', suites: ['tests/e2e', 'tests/doctor'] },
];

function needed(paths) {
  const files = paths.map((f) => relative(process.cwd(), resolve(f)).split('\\').join('/'));
  return PACKAGES.filter((p) => files.some((f) => p.suites.some((s) => f.startsWith(s + '/'))));
}

/** Runs a command with its (long) standard output hidden; errors still reach the terminal. */
function sh(cmd, args) {
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

/** Installs (or explains how to install) the Debian packages that the selected test files need. */
export function ensureSystemPackages(files) {
  const missing = needed(files).filter((p) => !existsSync(p.binary));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.name);
  const why = missing.map((p) => `${p.name} for ${p.suites.join(' and ')}`).join(', ');
  const command = `apt-get update && apt-get install -y ${names.join(' ')}`;
  const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canInstall) {
    console.error(
      `npm test needs Debian packages that are not installed: ${why}.\nRun as root, then npm test again:\n  ${command}`,
    );
    process.exit(1);
  }
  console.log(`installing Debian packages: ${why} (apt-get)`);
  if (!sh('apt-get', ['update', '-qq'])) {
    console.error(`apt-get update failed; run it yourself, then npm test again:\n  ${command}`);
    process.exit(1);
  }
  const pinned = names.map((n) => {
    if (n !== 'chromium') return n;
    const policy = spawnSync('apt-cache', ['policy', 'chromium'], { encoding: 'utf8' }).stdout ?? '';
    return policy.includes(CHROMIUM_VERSION) ? `chromium=${CHROMIUM_VERSION}` : 'chromium';
  });
  if (!sh('apt-get', ['install', '-y', '-qq', ...pinned])) {
    console.error(`apt-get install failed; run it yourself, then npm test again:\n  ${command}`);
    process.exit(1);
  }
  const still = missing.filter((p) => !existsSync(p.binary));
  if (still.length > 0) {
    console.error(
      `installed, but ${still.map((p) => p.binary).join(', ')} is still missing; set HERALD_CHROMIUM to the browser's path if it lives elsewhere`,
    );
    process.exit(1);
  }
}
