/**
 * A new user's own Next.js app, made only from the packed packages and docs/nextjs.md: the four packages are packed
 * with `npm pack`, a scratch app is written in a temp directory from the page's blocks tagged `file=<path>` (plus the
 * package.json, tsconfig.json and app/layout.tsx that create-next-app would have written), installed from the npm
 * registry (through the npm cache) at the versions examples/next-app uses, built with `next build` with no secret in
 * the environment, and run: Herald from the installed bin with the page's config and command, `next start` with the
 * page's .env.local lines, and two users chatting in Chromium (/usr/bin/chromium, as in tests/e2e).
 * HERALD_NEWAPP_KEEP=1 keeps the temp directory for a look after a failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchChromium, openPage, send, until, type UserPage } from '../e2e/support/browser.js';
import { freePort, run, start, stopAll, waitForHttp, type Child } from '../e2e/support/processes.js';
import { envLines, filesOf, runBlock, type Snippet } from './support/snippets.js';

const repo = resolve(import.meta.dirname, '..', '..');
const DOC = join(repo, 'docs', 'nextjs.md');
const SECRET = 'newapp-nextauth-secret-0123456789abcdef0123456789';
const PACKAGES = ['server', 'client', 'react', 'next'];

interface PackageJson {
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as PackageJson;
const example = readJson(join(repo, 'examples', 'next-app', 'package.json'));
const pin = (deps: Record<string, string> | undefined, name: string): string => {
  const v = deps?.[name];
  if (!v) throw new Error(`examples/next-app/package.json has no version for ${name}`);
  return v;
};

/** What create-next-app writes besides the files the page shows (its layout without next/font, which needs Google). */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2017',
    lib: ['dom', 'dom.iterable', 'esnext'],
    allowJs: true,
    skipLibCheck: true,
    strict: true,
    noEmit: true,
    esModuleInterop: true,
    module: 'esnext',
    moduleResolution: 'bundler',
    resolveJsonModule: true,
    isolatedModules: true,
    jsx: 'react-jsx',
    incremental: true,
    plugins: [{ name: 'next' }],
    paths: { '@/*': ['./*'] },
  },
  include: ['next-env.d.ts', '**/*.ts', '**/*.tsx', '.next/types/**/*.ts', '.next/dev/types/**/*.ts', '**/*.mts'],
  exclude: ['node_modules'],
};
const LAYOUT = `import type { Metadata } from 'next';

export const metadata: Metadata = { title: 'Scratch app' };

export default function RootLayout({ children }: Readonly<{ children: React.ReactNode }>) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
`;

/** The environment of a child, without the npm_* variables of the `npm test` that started this file. */
function childEnv(extra: Record<string, string | undefined>): Record<string, string | undefined> {
  const unset: Record<string, undefined> = {};
  for (const k of Object.keys(process.env)) if (/^npm_/i.test(k) && k !== 'npm_config_cache') unset[k] = undefined;
  return { ...unset, NEXT_TELEMETRY_DISABLED: '1', ...extra };
}

/** No secret of any name: what a CI or container build has. */
const NO_SECRETS = { NEXTAUTH_SECRET: undefined, AUTH_SECRET: undefined, HERALD_TOKEN_SECRET: undefined };

const docFiles = filesOf(DOC);
function doc(file: string): Snippet {
  const s = docFiles.get(file);
  if (!s) throw new Error(`docs/nextjs.md has no block tagged file=${file}`);
  return s;
}

let work: string;
let appDir: string;
let heraldPort: number;
let browser: Browser | undefined;

/** The page's .env.local lines as they would be on the app's host: our secret, our port. */
function runtimeEnv(port: number): Record<string, string> {
  const env = envLines(doc('.env.local').body);
  assert.ok(env.NEXTAUTH_SECRET, 'the .env.local block sets NEXTAUTH_SECRET');
  assert.equal(env.NEXTAUTH_URL, 'http://localhost:3000', 'the .env.local block sets NEXTAUTH_URL');
  return { ...env, NEXTAUTH_SECRET: SECRET, NEXTAUTH_URL: `http://localhost:${port}` };
}

function nextStart(port: number, env: Record<string, string | undefined>): Child {
  return start('next start', process.execPath, [nextBin(), 'start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: appDir,
    env: childEnv({ NODE_ENV: 'production', ...env }),
  });
}

const nextBin = () => join(appDir, 'node_modules', 'next', 'dist', 'bin', 'next');

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'herald-newapp-'));
  appDir = join(work, 'app');
  const packs = join(work, 'packs');
  mkdirSync(packs);
  await run(
    'npm pack',
    'npm',
    [...PACKAGES.flatMap((p) => ['-w', `packages/${p}`]), 'pack', '--pack-destination', packs],
    { cwd: repo, env: childEnv({}), timeoutMs: 120_000 },
  );
  const tarballs = readdirSync(packs);
  const tarball = (p: string) => {
    const t = tarballs.find((f) => f.startsWith(`herald-${p}-`) && f.endsWith('.tgz'));
    if (!t) throw new Error(`npm pack made no tarball for @herald/${p}: ${tarballs.join(', ')}`);
    return `file:${join(packs, t)}`;
  };

  mkdirSync(appDir);
  const typescript = readJson(join(repo, 'node_modules', 'typescript', 'package.json')).version;
  const typesNode = pin(readJson(join(repo, 'packages', 'next', 'package.json')).devDependencies, '@types/node');
  const pkg = {
    name: 'scratch-app',
    version: '0.1.0',
    private: true,
    scripts: { dev: 'next dev', build: 'next build', start: 'next start' },
    dependencies: {
      ...Object.fromEntries(PACKAGES.map((p) => [`@herald/${p}`, tarball(p)])),
      ...Object.fromEntries(['next', 'next-auth', 'react', 'react-dom'].map((n) => [n, pin(example.dependencies, n)])),
    },
    devDependencies: {
      typescript,
      '@types/node': typesNode,
      '@types/react': pin(example.devDependencies, '@types/react'),
      '@types/react-dom': pin(example.devDependencies, '@types/react-dom'),
    },
  };
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(appDir, path)), { recursive: true });
    writeFileSync(join(appDir, path), text);
  };
  write('package.json', JSON.stringify(pkg, null, 2) + '\n');
  write('tsconfig.json', JSON.stringify(TSCONFIG, null, 2) + '\n');
  write('app/layout.tsx', LAYOUT);
  for (const [file, s] of docFiles) {
    // .env.local is the run-time environment (not in the build); next.config.mjs is the alternative to .ts.
    if (file === '.env.local' || file === 'next.config.mjs') continue;
    write(file, s.body);
  }
  await run('npm install', 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: appDir,
    env: childEnv({ NODE_ENV: undefined }),
    timeoutMs: 420_000,
  });
  heraldPort = await freePort();
});

after(async () => {
  await browser?.close();
  await stopAll();
  if (work && !process.env.HERALD_NEWAPP_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('a new Next.js app made from docs/nextjs.md and the packed packages', () => {
  test('the page shows every file the app needs, each once', () => {
    for (const file of [
      '.env.local',
      'lib/auth.ts',
      'types/next-auth.d.ts',
      'app/api/auth/[...nextauth]/route.ts',
      'app/api/herald/token/route.ts',
      'app/page.tsx',
      'app/chat.tsx',
      'next.config.ts',
      'next.config.mjs',
      'herald.config.json',
    ]) {
      assert.ok(docFiles.has(file), `docs/nextjs.md shows ${file}`);
    }
  });

  test('next build passes with no secret in the environment', async () => {
    // The packages are the tarballs' contents, not links back into this repository.
    for (const p of PACKAGES) {
      const installed = join(appDir, 'node_modules', '@herald', p);
      assert.ok(!lstatSync(installed).isSymbolicLink(), `${installed} is a copy from the tarball`);
      assert.ok(!realpathSync(installed).startsWith(repo), `${installed} is outside the repository`);
    }
    const out = await run('next build', process.execPath, [nextBin(), 'build'], {
      cwd: appDir,
      env: childEnv({
        ...NO_SECRETS,
        NEXTAUTH_URL: undefined,
        NODE_ENV: 'production',
        HERALD_INTERNAL_URL: `http://127.0.0.1:${heraldPort}`,
      }),
      timeoutMs: 420_000,
    });
    assert.match(out, /\/api\/herald\/token/, 'the build lists the token route');
  });

  test('next.config.ts and next.config.mjs give the same rewrite of /ws to Herald', async () => {
    const alt = join(work, 'alt');
    mkdirSync(alt);
    writeFileSync(join(alt, 'next.config.mjs'), doc('next.config.mjs').body);
    type Config = { rewrites(): Promise<unknown> };
    const saved = process.env.HERALD_INTERNAL_URL;
    process.env.HERALD_INTERNAL_URL = 'http://herald.internal:4000';
    try {
      const ts = (await import(pathToFileURL(join(appDir, 'next.config.ts')).href)) as { default: Config };
      const mjs = (await import(pathToFileURL(join(alt, 'next.config.mjs')).href)) as { default: Config };
      const expected = [{ source: '/ws', destination: 'http://herald.internal:4000/ws' }];
      assert.deepEqual(await ts.default.rewrites(), expected);
      assert.deepEqual(await mjs.default.rewrites(), expected);
    } finally {
      if (saved === undefined) delete process.env.HERALD_INTERNAL_URL;
      else process.env.HERALD_INTERNAL_URL = saved;
    }
  });

  test('started without the secret, the token route answers 500 naming NEXTAUTH_SECRET and logs it once', async () => {
    const port = await freePort();
    const next = nextStart(port, { ...runtimeEnv(port), ...NO_SECRETS });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/api/auth/providers`, 30_000, next);
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/api/herald/token`, { signal: AbortSignal.timeout(10_000) });
        assert.equal(res.status, 500);
        const body = (await res.json()) as { error: string; code: string; message: string };
        assert.equal(body.error, 'token_config');
        assert.equal(body.code, 'HERALD_TOKEN_CONFIG');
        assert.match(body.message, /no secret at run time: set NEXTAUTH_SECRET/);
      }
      const logged = next.output().match(/\[herald\] HERALD_TOKEN_CONFIG: the Herald token route has no secret/g) ?? [];
      assert.equal(logged.length, 1, `next start's output:\n${next.output().slice(-2000)}`);
    } finally {
      await next.stop();
    }
  });

  test('Herald from the installed bin and next start with the secret: two users sign in, one sends, the other sees it', async () => {
    const port = await freePort();
    const env = runtimeEnv(port);

    // As on a developer's machine: .env.local is there at run time (after the build, which had no secret).
    writeFileSync(
      join(appDir, '.env.local'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    );
    const command = runBlock(DOC, 'herald')
      .body.split('\n')
      .find((l) => l.startsWith('npx herald '));
    assert.ok(command, 'the run=herald block has an `npx herald ...` line');
    const args = command
      .replace(/\s+#.*$/, '')
      .split(/\s+/)
      .slice(2);
    // No secret in Herald's environment: it must find NEXTAUTH_SECRET where the docs say it does.
    const herald = start('herald', join(appDir, 'node_modules', '.bin', 'herald'), args, {
      cwd: appDir,
      env: childEnv({ ...NO_SECRETS, WS_PORT: String(heraldPort), HERALD_HOST: '127.0.0.1', NODE_ENV: 'production' }),
    });
    const next = nextStart(port, env);
    browser ??= await launchChromium();
    const base = `http://localhost:${port}`;
    const alice = await openPage(browser, 'alice');
    const bob = await openPage(browser, 'bob');
    try {
      await waitForHttp(`http://127.0.0.1:${heraldPort}/health`, 30_000, herald);
      await waitForHttp(`http://127.0.0.1:${port}/api/auth/providers`, 30_000, next);
      await signIn(alice, base);
      await signIn(bob, base);
      for (const u of [alice, bob]) {
        await until(`${u.name} connected`, async () => (await u.state()) === 'connected', 20_000);
        await until(
          `presence on ${u.name}'s page to show alice and bob`,
          async () => JSON.stringify(await u.presence()) === '["alice","bob"]',
        );
      }
      await send(alice, 'hello from a new app');
      await until('bob to see alice', async () => (await bob.messages()).includes('alice: hello from a new app'));
      await send(bob, 'hi alice');
      await until('alice to see bob', async () => (await alice.messages()).includes('bob: hi alice'));
      assert.deepEqual(await alice.messages(), ['alice: hello from a new app', 'bob: hi alice']);
      assert.deepEqual(await bob.messages(), ['alice: hello from a new app', 'bob: hi alice']);
    } catch (err) {
      const tail = (u: UserPage) => `${u.name} console:\n  ${u.console.slice(-10).join('\n  ')}`;
      const logs = `herald:\n${herald.output().slice(-2000)}\nnext start:\n${next.output().slice(-2000)}`;
      throw new Error(`${(err as Error).message}\n${tail(alice)}\n${tail(bob)}\n${logs}`, { cause: err });
    } finally {
      await alice.context.close();
      await bob.context.close();
      await next.stop();
      await herald.stop();
    }
  });
});

/** Signs in through next-auth's built-in page, where the app's page redirects a signed-out visitor. */
async function signIn(u: UserPage, base: string): Promise<void> {
  await u.page.goto(`${base}/`, { timeout: 30_000 });
  await u.page.waitForURL(/\/api\/auth\/signin/, { timeout: 20_000 });
  await u.page.locator('#input-username-for-credentials-provider').fill(u.name);
  await u.page.locator('#input-password-for-credentials-provider').fill('demo');
  await u.page.locator('form[action$="/api/auth/callback/credentials"] button').click();
  await u.page.waitForURL(`${base}/`, { timeout: 20_000 });
}
