/**
 * The four packages as npm would publish them: `npm pack` of each workspace, then publint and @arethetypeswrong/cli
 * over each tarball, the files and package.json fields a user needs, and source maps that point at shipped files.
 * Then @herald/server installed from its tarball with only its `dependencies` (no optional driver): it runs on the
 * memory engine, and each feature whose driver is missing stops with the command that installs it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = resolve(import.meta.dirname, '../..');
const node = process.env.HERALD_TEST_NODE ?? process.execPath;
const PACKAGES = ['server', 'client', 'react', 'next'] as const;
type Pkg = (typeof PACKAGES)[number];
const OPTIONAL_DRIVERS = ['better-sqlite3', 'ioredis', 'pg', 'pino-pretty'];

interface Packed {
  tarball: string;
  /** The tarball extracted: its `package/` folder. */
  dir: string;
  files: string[];
  manifest: Record<string, unknown>;
}

let packing: Map<Pkg, Packed> | undefined;
/** Temporary folders made by this file, removed at the end. */
const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** Packs the four workspaces once (as `npm publish` would, prepack included) and extracts each tarball. */
function packAll(): Map<Pkg, Packed> {
  if (packing) return packing;
  const dest = mkdtempSync(join(tmpdir(), 'herald-pack-'));
  made.push(dest);
  const r = spawnSync(
    'npm',
    ['pack', '--json', '--pack-destination', dest, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `npm pack failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as { name: string; filename: string; files: { path: string }[] }[];
  packing = new Map();
  for (const p of PACKAGES) {
    const entry = out.find((e) => e.name === `@herald/${p}`);
    assert.ok(entry, `npm pack made no tarball for @herald/${p}`);
    const tarball = join(dest, entry.filename);
    const into = join(dest, p);
    mkdirSync(into);
    const x = spawnSync('tar', ['-xzf', tarball, '-C', into], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    const dir = join(into, 'package');
    packing.set(p, {
      tarball,
      dir,
      files: entry.files.map((f) => f.path).sort(),
      manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>,
    });
  }
  return packing;
}

function packed(p: Pkg): Packed {
  const x = packAll().get(p);
  assert.ok(x);
  return x;
}

test('publint finds no error or warning in any of the four tarballs', async () => {
  for (const p of PACKAGES) {
    const { tarball } = packed(p);
    const data = readFileSync(tarball);
    const { messages, pkg } = await publint({
      pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) },
      level: 'warning',
    });
    assert.deepEqual(
      messages.map((m) => `${m.type}: ${formatMessage(m, pkg, { color: false }) ?? m.code}`),
      [],
      `publint on @herald/${p}`,
    );
  }
});

test('arethetypeswrong finds every entry point typed under node10, node16 and bundler resolution in each tarball', () => {
  // The packages are ESM only, by design: the one rule left out is "a require() call gets ESM", which Node 20.19+
  // and 22.12+ allow. Every other problem, in every resolution mode, fails the test.
  const attw = join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js');
  for (const p of PACKAGES) {
    const r = spawnSync(
      node,
      [attw, packed(p).tarball, '--format', 'ascii', '--no-color', '--ignore-rules', 'cjs-resolves-to-esm'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `attw on @herald/${p}:\n${r.stdout}${r.stderr}`);
  }
});

test('every tarball has LICENSE (MIT), README.md and the package.json fields a registry page and npm need', () => {
  for (const p of PACKAGES) {
    const { files, manifest: m, dir } = packed(p);
    for (const f of ['LICENSE', 'README.md', 'package.json']) assert.ok(files.includes(f), `@herald/${p} lacks ${f}`);
    const license = readFileSync(join(dir, 'LICENSE'), 'utf8');
    assert.match(license, /^MIT License/);
    assert.match(license, /Copyright \(c\) \d{4} the Herald authors/);
    assert.equal(m.license, 'MIT');
    assert.deepEqual(m.repository, {
      type: 'git',
      url: 'git+https://github.com/herald-rt/herald.git',
      directory: `packages/${p}`,
    });
    assert.equal(m.homepage, `https://github.com/herald-rt/herald/tree/main/packages/${p}#readme`);
    assert.deepEqual(m.bugs, { url: 'https://github.com/herald-rt/herald/issues' });
    assert.deepEqual(m.engines, { node: '>=20' });
    assert.ok(Array.isArray(m.keywords) && m.keywords.length > 0, `@herald/${p} has no keywords`);
    // The browser and Next.js packages do nothing when imported: bundlers may drop what a page does not use.
    if (p !== 'server') assert.equal(m.sideEffects, false, `@herald/${p} sideEffects`);
  }
});

test('@herald/server ships the built admin UI (admin-ui/index.html and its assets), so /admin needs no other package', () => {
  const { files } = packed('server');
  assert.ok(files.includes('admin-ui/index.html'), 'admin-ui/index.html in the tarball (npm run build makes it)');
  assert.ok(
    files.some((f) => /^admin-ui\/assets\/index-[\w-]+\.js$/.test(f)),
    'the UI script in the tarball',
  );
});

test('@herald/server ships every page of docs/ and its README links the docs by the path messages use', () => {
  const { files, dir } = packed('server');
  const docs = readdirSync(join(root, 'docs'))
    .filter((n) => n.endsWith('.md'))
    .sort();
  assert.ok(docs.length > 0);
  assert.deepEqual(
    files.filter((f) => f.startsWith('docs/')),
    docs.map((n) => `docs/${n}`),
  );
  // Links inside a shipped page resolve in the package (or point at the repository).
  for (const n of docs) {
    const text = readFileSync(join(dir, 'docs', n), 'utf8');
    for (const [, target] of text.matchAll(/\]\((\.\.\/[^)#\s]+)/g))
      assert.ok(existsSync(join(dir, 'docs', target!)), `docs/${n} links ${target}, which is not in the package`);
  }
  assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), /## Docs in the package[\s\S]*@herald\/server\/docs\//);
  assert.ok(files.includes('bin/herald.js'));
});

test('every source map in the tarballs points at files that are in the tarball', () => {
  for (const p of PACKAGES) {
    const { files, dir } = packed(p);
    const inTarball = new Set(files);
    const maps = files.filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 0, `@herald/${p} has no source maps`);
    const missing: string[] = [];
    for (const f of files.filter((x) => /\.(js|d\.ts)$/.test(x))) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(dir, f), 'utf8'))?.[1];
      if (url && !inTarball.has(posix.join(posix.dirname(f), url))) missing.push(`${f} -> ${url}`);
    }
    for (const f of maps) {
      const map = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const s of map.sources) {
        const target = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? '', s));
        if (!inTarball.has(target)) missing.push(`${f} -> ${s}`);
      }
    }
    assert.deepEqual(missing, [], `@herald/${p}: maps or sources not shipped`);
  }
});

test('@herald/server depends on no database, Redis or log-formatting driver: they are optional peer dependencies', () => {
  const m = packed('server').manifest as {
    dependencies: Record<string, string>;
    peerDependencies: Record<string, string>;
    peerDependenciesMeta: Record<string, { optional?: boolean }>;
  };
  for (const d of OPTIONAL_DRIVERS) {
    assert.equal(m.dependencies[d], undefined, `${d} is a dependency`);
    assert.ok(m.peerDependencies[d], `${d} is not a peer dependency`);
    assert.equal(m.peerDependenciesMeta[d]?.optional, true, `${d} is not optional`);
  }
});

// --- @herald/server installed from its tarball without the optional drivers --------------------------------------

let app: string | undefined;

/**
 * A folder outside the repository with node_modules/@herald/server extracted from the tarball and each of its
 * `dependencies` linked from the repository's node_modules: what `npm install @herald/server` gives an app.
 */
function installedApp(): string {
  if (app) return app;
  const { dir, manifest } = packed('server');
  const at = mkdtempSync(join(tmpdir(), 'herald-app-'));
  made.push(at);
  const modules = join(at, 'node_modules');
  mkdirSync(join(modules, '@herald'), { recursive: true });
  assert.equal(spawnSync('cp', ['-R', dir, join(modules, '@herald/server')]).status, 0);
  // (The drivers are left out even if listed: this app is the one that did not install them.)
  for (const d of Object.keys((manifest.dependencies ?? {}) as Record<string, string>)) {
    if (OPTIONAL_DRIVERS.includes(d)) continue;
    mkdirSync(dirname(join(modules, d)), { recursive: true });
    symlinkSync(join(root, 'node_modules', d), join(modules, d), 'dir');
  }
  writeFileSync(join(at, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  assert.ok(relative(root, at).startsWith('..'), 'the app is outside the repository');
  // Nothing above the folder provides a driver either (else this would test nothing).
  const requireHere = createRequire(join(at, 'x.js'));
  for (const d of OPTIONAL_DRIVERS) assert.throws(() => requireHere.resolve(d), `${d} resolves from ${at}`);
  app = at;
  return at;
}

function runIn(cwd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(node, args, {
    cwd,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Runs an ES module in the installed app; prints what it printed. */
function script(source: string, nodeArgs: string[] = []) {
  const cwd = installedApp();
  const file = join(cwd, `check-${Date.now()}-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, source);
  return runIn(cwd, [...nodeArgs, file]);
}

test('installed without any optional driver, @herald/server runs on the memory engine and answers /health', () => {
  const r = script(`
    import { createHerald } from '@herald/server';
    const herald = createHerald({ env: { HERALD_TOKEN_SECRET: 's', HERALD_HOST: '127.0.0.1', WS_PORT: '0' }, logger: false });
    const { port } = await herald.listen(0, '127.0.0.1');
    const res = await fetch('http://127.0.0.1:' + port + '/health');
    console.log('health', res.status);
    await herald.close();
  `);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /^health 200$/m);
});

test('the outbox on a postgres:// URL without pg stops at once, naming npm install pg, in process, in herald migrate and in herald serve (exit 2)', () => {
  const r = script(`
    import { createHerald, createOutboxConsumer, migrateOutbox, ConfigError } from '@herald/server';
    const herald = createHerald({ env: { HERALD_TOKEN_SECRET: 's' }, logger: false });
    try {
      createOutboxConsumer({ herald, url: 'postgres://127.0.0.1:5432/test' });
      console.log('consumer created');
    } catch (err) {
      console.log('consumer:', err instanceof ConfigError, err.message);
    }
    await migrateOutbox('postgres://127.0.0.1:5432/test').then(
      () => console.log('migrated'),
      (err) => console.log('migrate:', err instanceof ConfigError, err.message),
    );
    await herald.close();
  `);
  assert.equal(r.status, 0, r.out);
  assert.match(
    r.out,
    /^consumer: true invalid configuration:\n {2}- HERALD_DATABASE_URL=postgres:\/\/… \(the Postgres outbox\) needs the `pg` package, which is not installed: run `npm install pg`/m,
  );
  assert.match(r.out, /^migrate: true invalid configuration:[\s\S]*run `npm install pg`/m);

  const cli = runIn(installedApp(), [
    'node_modules/@herald/server/bin/herald.js',
    'migrate',
    '--database-url',
    'postgres://127.0.0.1:5432/test',
  ]);
  assert.equal(cli.status, 2, cli.out);
  assert.match(cli.out, /needs the `pg` package, which is not installed: run `npm install pg`/);

  // herald serve stops before listening instead of retrying a driver that will never load.
  const serve = runIn(installedApp(), ['node_modules/@herald/server/bin/herald.js', 'serve'], {
    HERALD_DATABASE_URL: 'postgres://127.0.0.1:5432/test',
    HERALD_TOKEN_SECRET: 's',
    HERALD_HOST: '127.0.0.1',
    WS_PORT: '0',
  });
  assert.equal(serve.status, 2, serve.out);
  assert.match(serve.out, /^herald serve: invalid configuration:[\s\S]*run `npm install pg`/m);
});

test('herald serve with HERALD_ENGINE=redis and no ioredis exits 2 naming npm install ioredis', () => {
  const r = runIn(installedApp(), ['node_modules/@herald/server/bin/herald.js', 'serve'], {
    HERALD_ENGINE: 'redis',
    REDIS_URL: 'redis://127.0.0.1:6379',
    HERALD_TOKEN_SECRET: 's',
    HERALD_HOST: '127.0.0.1',
    WS_PORT: '0',
  });
  assert.equal(r.status, 2, r.out);
  assert.match(
    r.out,
    /HERALD_ENGINE=redis \(the Redis engine\) needs the `ioredis` package, which is not installed: run `npm install ioredis`/,
  );
});

test('the SQLite outbox on a Node without node:sqlite and without better-sqlite3 names npm install better-sqlite3', () => {
  // Node 20 has no node:sqlite; on Node 22.13+ the flag turns it off, so both run the same case.
  const major = Number(runIn(root, ['-p', 'process.versions.node']).out.split('.')[0]);
  const db = join(installedApp(), 'herald.db');
  const r = script(
    `
    import { createHerald, createOutboxConsumer } from '@herald/server';
    const herald = createHerald({ env: { HERALD_TOKEN_SECRET: 's' }, logger: false });
    try {
      createOutboxConsumer({ herald, url: ${JSON.stringify('file:' + db)} });
      console.log('consumer created');
    } catch (err) {
      console.log('consumer:', err.message);
    }
    await herald.close();
  `,
    major >= 22 ? ['--no-experimental-sqlite'] : [],
  );
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /needs the `better-sqlite3` package, which is not installed: run `npm install better-sqlite3`/);
  assert.match(r.out, /or run Herald on Node 22\.13 or later/);
  assert.equal(existsSync(db), false, 'no database file was opened');
});
