// `herald init` through the real CLI: what it writes for each topology is what `herald serve --env-file` starts
// from (config and environment both applied), an existing file is never overwritten without --force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import WebSocket from 'ws';
import { loadConfig } from '../../packages/server/src/config/index.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'packages/server/dist/cli/main.js');

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => r(port));
    });
  });
}

/** The environment of a user's shell: none of Herald's variables, so only the written files configure it. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(HERALD_|WS_PORT$|NEXTAUTH_|REDIS_URL$|NEXT_PUBLIC_)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

function cli(args: string[], cwd: string, env: Record<string, string> = cleanEnv()) {
  return spawnSync(process.execPath, [bin, ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 });
}

async function waitHealth(port: number, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status === 200) return;
    } catch {
      /* not up yet */
    }
    if (proc.exitCode !== null) throw new Error(`herald serve exited ${proc.exitCode}:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`herald serve did not answer /health:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens a socket with `origin`, connects with `token`, subscribes to `channel`; the replies, or the refusal status. */
async function connectAndSubscribe(
  port: number,
  origin: string,
  token: string,
  channel: string,
): Promise<{ status: number } | { connect: any; subscribe: any }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { origin });
  const refused = new Promise<{ status: number }>((r) =>
    ws.once('unexpected-response', (_q, res) => r({ status: res.statusCode ?? 0 })),
  );
  const opened = new Promise<'open'>((r) => ws.once('open', () => r('open')));
  const first = await Promise.race([refused, opened]);
  if (first !== 'open') return first;
  const replies: any[] = [];
  ws.on('message', (d) => {
    for (const l of d.toString().split('\n')) if (l) replies.push(JSON.parse(l));
  });
  ws.send(JSON.stringify({ id: 1, connect: { token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel } }));
  const deadline = Date.now() + 5000;
  while (!replies.some((m) => m.id === 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  ws.close();
  return { connect: replies.find((m) => m.id === 1), subscribe: replies.find((m) => m.id === 2) };
}

const topologies = [
  { topology: 'rewrite', args: [], appUrl: 'http://localhost:3000', host: '127.0.0.1' },
  {
    topology: 'direct',
    args: ['--app-url', 'http://localhost:4000'],
    appUrl: 'http://localhost:4000',
    host: '0.0.0.0',
  },
  { topology: 'nginx', args: [], appUrl: 'https://app.example.com', host: '127.0.0.1' },
  { topology: 'one-port', args: [], appUrl: 'http://localhost:3000', host: undefined },
  { topology: 'rewrite', args: ['--engine', 'redis'], appUrl: 'http://localhost:3000', host: '127.0.0.1' },
] as const;

for (const t of topologies) {
  const label = `${t.topology}${t.args.length > 0 ? ` ${t.args.join(' ')}` : ''}`;
  test(`herald init --topology ${label} writes a config and env that herald serve --env-file starts from`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-init-'));
    const r = cli(['init', '--topology', t.topology, ...t.args], dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`wrote herald\\.config\\.json .* and herald\\.env .* for the ${t.topology} topology`),
    );
    if (t.topology === 'one-port') assert.match(r.stdout, /herald\.attach\(server, \{ path: '\/ws' \}\)/);
    else assert.match(r.stdout, /npx herald serve --env-file herald\.env/);

    const configText = readFileSync(join(dir, 'herald.config.json'), 'utf8');
    assert.match(configText, /^\/\/ Herald's configuration, written by `herald init --topology /);
    assert.throws(() => JSON.parse(configText), 'the file carries comments');
    const fileEnv = parseEnv(readFileSync(join(dir, 'herald.env'), 'utf8'));
    assert.equal(statSync(join(dir, 'herald.env')).mode & 0o077, 0, 'herald.env is readable by its owner only');
    assert.ok((fileEnv.NEXTAUTH_SECRET ?? '').length >= 40, 'a generated secret');
    assert.ok((fileEnv.HERALD_API_KEY ?? '').length >= 30, 'a generated API key');
    assert.equal(fileEnv.HERALD_CONFIG, 'herald.config.json');
    assert.equal(fileEnv.HERALD_HOST, t.host);
    if (t.topology === 'direct') assert.equal(fileEnv.NEXT_PUBLIC_HERALD_URL, 'ws://localhost:3002/ws');
    else assert.equal(fileEnv.NEXT_PUBLIC_HERALD_URL, undefined, 'the browser uses /ws on the page origin');
    if (t.topology === 'rewrite') assert.equal(fileEnv.HERALD_INTERNAL_URL, 'http://127.0.0.1:3002');
    if (t.args.includes('redis')) {
      assert.equal(fileEnv.HERALD_ENGINE, 'redis');
      assert.equal(fileEnv.REDIS_URL, 'redis://127.0.0.1:6379');
    } else assert.equal(fileEnv.HERALD_ENGINE, undefined);

    // The same file through the loader in process: no problem and no warning.
    const loaded = loadConfig({ env: { ...fileEnv }, configFile: join(dir, 'herald.config.json') });
    assert.deepEqual(loaded.warnings, []);
    assert.deepEqual(loaded.allowedOrigins, [t.appUrl]);

    // Started as the printed command says, on a free port (a variable already in the environment wins over the file).
    const port = await freePort();
    const env = cleanEnv({ WS_PORT: String(port), HERALD_HOST: '127.0.0.1', HERALD_LOG_LEVEL: 'warn' });
    if (t.args.includes('redis')) env.HERALD_REDIS_PREFIX = `herald-init-test-${port}`;
    const proc = spawn(process.execPath, [bin, 'serve', '--env-file', 'herald.env'], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    try {
      await waitHealth(port, proc, () => output);
      // The env file's API key and the config's chat namespace (history on: the first publication has offset 1).
      const pub = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: 'POST',
        headers: { 'x-api-key': fileEnv.HERALD_API_KEY!, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'chat:lobby', data: { text: 'hi' } }),
      });
      assert.equal(pub.status, 200);
      assert.equal(((await pub.json()) as { result: { offset: number } }).result.offset, 1);

      // herald publish --env-file: the key from the file, Herald's address from the environment (which wins).
      const cliPub = cli(
        ['publish', '--env-file', 'herald.env', 'chat:lobby', '{"text":"again"}'],
        dir,
        cleanEnv({ HERALD_URL: `http://127.0.0.1:${port}` }),
      );
      assert.equal(cliPub.status, 0, cliPub.stderr);
      assert.equal((JSON.parse(cliPub.stdout) as { result: { offset: number } }).result.offset, 2);

      // A token from the same file (herald token --env-file) connects from the app's origin; another origin is refused.
      const tok = cli(['token', '--env-file', 'herald.env', '--user', 'alice', '--ttl', '5m'], dir);
      assert.equal(tok.status, 0, tok.stderr);
      const token = tok.stdout.trim();
      const ok = await connectAndSubscribe(port, t.appUrl, token, 'chat:lobby');
      assert.ok('connect' in ok, `upgrade refused with ${JSON.stringify(ok)}`);
      assert.equal(ok.connect.connect.client.length, 36, JSON.stringify(ok.connect));
      assert.equal(ok.subscribe.error, undefined, JSON.stringify(ok.subscribe));
      assert.deepEqual(await connectAndSubscribe(port, 'http://evil.example', token, 'chat:lobby'), { status: 403 });
      assert.doesNotMatch(output, /"level":(40|50|60)/, 'no warning or error in the log');
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    }
  });
}

test('herald init refuses to overwrite an existing file without --force, and --force writes a new secret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-init-'));
  writeFileSync(join(dir, 'herald.config.json'), '{"mine":true}\n');
  const r = cli(['init'], dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /herald\.config\.json already exists; nothing was written\. Pass --force to overwrite/);
  assert.equal(readFileSync(join(dir, 'herald.config.json'), 'utf8'), '{"mine":true}\n');
  assert.throws(() => statSync(join(dir, 'herald.env')), 'herald.env was not written either');

  assert.equal(cli(['init', '--force'], dir).status, 0);
  const first = parseEnv(readFileSync(join(dir, 'herald.env'), 'utf8')).NEXTAUTH_SECRET;
  const again = cli(['init', '--topology', 'direct'], dir);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /herald\.config\.json and herald\.env already exist/);
  assert.equal(parseEnv(readFileSync(join(dir, 'herald.env'), 'utf8')).NEXTAUTH_SECRET, first, 'unchanged');
  assert.equal(cli(['init', '--topology', 'direct', '--force'], dir).status, 0);
  const env = parseEnv(readFileSync(join(dir, 'herald.env'), 'utf8'));
  assert.notEqual(env.NEXTAUTH_SECRET, first);
  assert.equal(env.NEXT_PUBLIC_HERALD_URL, 'ws://localhost:3002/ws');
});

test('herald init explains a wrong topology, app URL or engine with exit 2, and --dir writes elsewhere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-init-'));
  const bad = cli(['init', '--topology', 'cloud'], dir);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--topology cloud: expected one of rewrite, direct, nginx, one-port/);
  const url = cli(['init', '--app-url', 'localhost:3000'], dir);
  assert.equal(url.status, 2);
  assert.match(url.stderr, /expected the app's origin, e.g\. http:\/\/localhost:3000/);
  const engine = cli(['init', '--topology', 'one-port', '--engine', 'redis'], dir);
  assert.equal(engine.status, 2);
  assert.match(engine.stderr, /createRedisEngine/);
  const sub = cli(['init', '--dir', 'herald'], dir);
  assert.equal(sub.status, 0, sub.stderr);
  assert.match(sub.stdout, /wrote herald\/herald\.config\.json/);
  assert.match(sub.stdout, /cd herald && npx herald serve --env-file herald\.env/);
});

test('a config file with comments loads; an unterminated comment or bad JSON is refused with the file named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-init-'));
  const file = join(dir, 'c.json');
  writeFileSync(
    file,
    '/* block\n comment */ {\n  // a line comment\n  "client": { "allowed_origins": ["http://a.example:1"] /* after */,\n' +
      '    "token": { "audience": "a // b /* c */ \\" d" } }\n}\n',
  );
  const c = loadConfig({ env: {}, configFile: file });
  assert.deepEqual(c.allowedOrigins, ['http://a.example:1'], 'a // inside a string is not a comment');
  assert.equal(c.token.audience, 'a // b /* c */ " d', 'nor /* */, past an escaped quote');
  writeFileSync(file, '{ "client": {} } /* never closed');
  assert.throws(() => loadConfig({ env: {}, configFile: file }), /c\.json: not valid JSON/);
});

test('docs/deployment.md shows the two files herald init --topology rewrite writes, as written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-init-'));
  assert.equal(cli(['init', '--topology', 'rewrite'], dir).status, 0);
  const doc = readFileSync(join(root, 'docs/deployment.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### The config `herald init` writes'));
  const config = /```jsonc\n([\s\S]*?)```/.exec(section)?.[1];
  assert.equal(config, readFileSync(join(dir, 'herald.config.json'), 'utf8'));
  const env = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  const written = readFileSync(join(dir, 'herald.env'), 'utf8')
    .replace(/^NEXTAUTH_SECRET=.*$/m, 'NEXTAUTH_SECRET=<43 random characters, new on each run>')
    .replace(/^HERALD_API_KEY=.*$/m, 'HERALD_API_KEY=<32 random characters, new on each run>');
  assert.equal(env, written);
});

test('herald --help lists init', () => {
  const r = cli(['help'], root);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /herald init \[--topology rewrite\|direct\|nginx\|one-port\]/);
});
