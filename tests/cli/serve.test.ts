import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import WebSocket from 'ws';

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

async function waitHttp(url: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function herald(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env, HERALD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

const secret = 'cli-test-secret';

test('herald serve starts from env alone, herald token and herald publish round-trip, SIGTERM drains with 3001', async () => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ channel: { without_namespace: { allow_subscribe_for_client: true } } }));
  const env = {
    WS_PORT: String(port),
    HERALD_HOST: '127.0.0.1',
    HERALD_TOKEN_SECRET: secret,
    HERALD_API_KEY: 'k',
    HERALD_CONFIG: cfg,
  };
  const proc = herald(['serve'], env);
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  try {
    await waitHttp(`http://127.0.0.1:${port}/health`);
    const tok = spawnSync(process.execPath, [bin, 'token', '--user', 'cli-user', '--ttl', '10m'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    assert.equal(tok.status, 0, tok.stderr);
    const token = tok.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const messages: any[] = [];
    ws.on('message', (d) => {
      for (const l of d.toString().split('\n')) messages.push(JSON.parse(l));
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(
      JSON.stringify({ id: 1, connect: { token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: 'news' } }),
    );
    const deadline = Date.now() + 5000;
    while (!messages.some((m) => m.id === 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(messages.find((m) => m.id === 1).connect.client.length, 36);

    const pub = spawnSync(
      process.execPath,
      [bin, 'publish', 'news', '{"text":"from the cli"}', '--url', `http://127.0.0.1:${port}`],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    assert.equal(pub.status, 0, pub.stderr);
    while (!messages.some((m) => m.push?.pub) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(messages.find((m) => m.push?.pub).push.pub.data, { text: 'from the cli' });

    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const started = Date.now();
    proc.kill('SIGTERM');
    assert.equal(await closed, 3001);
    assert.equal(await exited, 0, stderr);
    assert.ok(Date.now() - started < 10_000);
  } finally {
    proc.kill('SIGKILL');
  }
});

test('a bad config file stops herald serve with exit 2 and a message naming the key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  const cfg = join(dir, 'bad.json');
  writeFileSync(cfg, JSON.stringify({ channel: { namespaces: [{ name: 'chat', histroy_size: 10 }] } }));
  const r = spawnSync(process.execPath, [bin, 'serve'], {
    env: { ...process.env, HERALD_CONFIG: cfg, WS_PORT: '0' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /histroy_size/);
  assert.match(r.stderr, /did you mean "history_size"/);
});

test('a port already in use is reported with what to do', async () => {
  const port = await freePort();
  const blocker = createServer().listen(port, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const r = spawnSync(process.execPath, [bin, 'serve'], {
      env: { ...process.env, WS_PORT: String(port), HERALD_HOST: '127.0.0.1', HERALD_LOG_LEVEL: 'info' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stdout + r.stderr, /already in use.*WS_PORT/);
  } finally {
    blocker.close();
  }
});

test('herald token without --user explains what is missing', () => {
  const r = spawnSync(process.execPath, [bin, 'token'], {
    env: { ...process.env, HERALD_TOKEN_SECRET: secret },
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--user is required/);
});

test('--redis-cluster-nodes together with --redis-url stops herald serve with exit 2 and a message naming both', () => {
  const env = { ...process.env, WS_PORT: '0' };
  delete env.REDIS_URL;
  delete env.HERALD_REDIS_CLUSTER_NODES;
  const r = spawnSync(
    process.execPath,
    [
      bin,
      'serve',
      '--engine',
      'redis',
      '--redis-cluster-nodes',
      '127.0.0.1:7000,127.0.0.1:7001',
      '--redis-url',
      'redis+sentinel://127.0.0.1:26379/mymaster',
    ],
    { env, encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(r.status, 2);
  assert.match(r.stderr, /HERALD_REDIS_CLUSTER_NODES and REDIS_URL are both set: .*a Cluster has no Sentinel/);
});
