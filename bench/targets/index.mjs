// How each target is started: every node is its own process on 127.0.0.1 with a fresh port.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { heraldConfig } from '../lib/herald-config.mjs';
import { BENCH_SECRET } from '../lib/jwt.mjs';
import { freePort, sleep, spawnNode, stopChild, waitPort } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
export const heraldMain = join(repoRoot, 'packages/server/dist/cli/main.js');
let REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export function setRedisUrl(url) {
  REDIS_URL = url;
}

const configDir = join(os.tmpdir(), `herald-bench-${process.pid}`);
mkdirSync(configDir, { recursive: true });
const configPath = join(configDir, 'herald.json');
writeFileSync(configPath, JSON.stringify(heraldConfig, null, 2));

/** The orchestrator's environment without anything that would configure the servers behind our back. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      k.startsWith('HERALD_') ||
      k.startsWith('NEXTAUTH') ||
      k === 'REDIS_URL' ||
      k === 'WS_PORT' ||
      k === 'PORT' ||
      k === 'NODE_OPTIONS'
    )
      continue;
    env[k] = v;
  }
  return env;
}

let runCounter = 0;

/**
 * Target definitions. `protocol` tells the load client how to speak to it; `channelPrefix` namespaces channels.
 * `nodes` > 1 only in the multi-node scenario (Redis engines).
 */
export const TARGETS = {
  herald: { protocol: 'herald', channelPrefix: 'bench:', kind: 'herald' },
  // The same server; the load client speaks the protobuf encoding (the `centrifuge-protobuf` subprotocol).
  'herald-protobuf': { protocol: 'herald-protobuf', channelPrefix: 'bench:', kind: 'herald' },
  'herald-history': { protocol: 'herald', channelPrefix: 'benchh:', kind: 'herald' },
  'ws-raw': { protocol: 'raw', channelPrefix: '', kind: 'ws-raw' },
  // ws-raw's protocol, each publication framed once and the same bytes written to every subscriber's socket.
  'ws-preframed': { protocol: 'raw', channelPrefix: '', kind: 'ws-raw', script: 'ws-preframed-server.mjs' },
  socketio: { protocol: 'sio', channelPrefix: '', kind: 'socketio' },
  'socketio-redis': { protocol: 'sio', channelPrefix: '', kind: 'socketio', redis: true },
  'herald-redis': { protocol: 'herald', channelPrefix: 'bench:', kind: 'herald', redis: true },
  // Redis engine, channels keeping 100 publications (a Redis stream per channel, appended by the publish script).
  'herald-redis-history': { protocol: 'herald', channelPrefix: 'benchh:', kind: 'herald', redis: true },
  // No token: the connect proxy (a minimal Node HTTP backend, its own process) names the user from the session cookie
  // the client sends (as an emulated header: the lean client cannot set upgrade headers).
  'herald-connect-proxy': { protocol: 'herald-proxy', channelPrefix: 'bench:', kind: 'herald', connectProxy: true },
};

/** Herald's config for a target with a connect proxy at `port`. */
function connectProxyConfig(port) {
  const path = join(configDir, `herald-connect-proxy-${port}.json`);
  const cfg = {
    ...heraldConfig,
    client: {
      proxy: {
        connect: {
          enabled: true,
          endpoint: `http://127.0.0.1:${port}/connect`,
          timeout: '5s',
          emulated_headers: ['Cookie'],
        },
      },
    },
  };
  writeFileSync(path, JSON.stringify(cfg, null, 2));
  return path;
}

/**
 * Preloaded (`--require`) into every target process when `heapProbe` is set: on SIGUSR2 it runs a full GC
 * (`--expose-gc`) and writes `process.memoryUsage()` to `<BENCH_HEAP_DIR>/<pid>.json` (see `heapAfterGc`).
 */
const heapProbe = join(here, 'heap-probe.cjs');

/** Starts `nodes` processes of a target; resolves when all accept connections. */
export async function startTarget(name, { nodes = 1, cpuProf, heapProbe: withHeapProbe = false } = {}) {
  const def = TARGETS[name];
  if (!def) throw new Error(`unknown target ${name}`);
  const runKey = `bench-${process.pid}-${++runCounter}`;
  const started = [];
  /** The connect proxy's backend: its own process, not counted in the target's CPU (reported apart). */
  let backend;
  try {
    let proxyConfigPath;
    if (def.connectProxy) {
      const port = await freePort();
      const child = spawnNode([join(here, 'connect-proxy-backend.mjs'), String(port)], {
        env: cleanEnv(),
        cwd: repoRoot,
        label: `${name}-backend`,
      });
      backend = { child, pid: child.pid, port };
      await waitPort(port);
      proxyConfigPath = connectProxyConfig(port);
    }
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      const env = { ...cleanEnv(), BENCH_SECRET, NODE_ENV: 'production' };
      let args;
      let path = '/';
      const pre = withHeapProbe ? ['--expose-gc', '--require', heapProbe] : [];
      if (withHeapProbe) env.BENCH_HEAP_DIR = configDir;
      if (def.kind === 'herald') {
        Object.assign(env, {
          WS_PORT: String(port),
          HERALD_HOST: '127.0.0.1',
          HERALD_TOKEN_SECRET: BENCH_SECRET,
          HERALD_API_KEY: 'bench-api-key',
          HERALD_LOG_LEVEL: 'warn',
          HERALD_CONFIG: proxyConfigPath ?? configPath,
          HERALD_NAME: `${runKey}-${i}`,
          // One publisher connection sends every publication: lift the per-connection command rate limit.
          HERALD_COMMAND_RATE: '1000000',
        });
        if (def.redis) Object.assign(env, { HERALD_ENGINE: 'redis', REDIS_URL, HERALD_REDIS_PREFIX: runKey });
        args = [...pre, ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []), heraldMain, 'serve'];
        path = '/connection/websocket';
      } else if (def.kind === 'ws-raw') {
        args = [...pre, join(here, def.script ?? 'ws-raw-server.mjs'), String(port)];
      } else {
        if (def.redis) Object.assign(env, { BENCH_REDIS_URL: REDIS_URL, BENCH_REDIS_KEY: runKey });
        args = [...pre, join(here, 'socketio-server.mjs'), String(port)];
        path = '/socket.io/?EIO=4&transport=websocket';
      }
      const child = spawnNode(args, { env, cwd: repoRoot, label: `${name}#${i}` });
      started.push({ child, pid: child.pid, port, url: `ws://127.0.0.1:${port}${path}` });
    }
    await Promise.all(
      started.map(async (n) => {
        const exited = new Promise((_, reject) =>
          n.child.once('exit', (code) =>
            reject(new Error(`${n.child.label} exited with ${code}: ${n.child.stderrText().slice(0, 2000)}`)),
          ),
        );
        await Promise.race([waitPort(n.port), exited]);
      }),
    );
  } catch (err) {
    await Promise.all(started.map((n) => stopChild(n.child)));
    if (backend) await stopChild(backend.child);
    throw err;
  }
  return {
    name,
    protocol: def.protocol,
    channelPrefix: def.channelPrefix,
    nodes: started,
    pids: started.map((n) => n.pid),
    /** Processes beside the target (the connect proxy's backend), measured apart. */
    backendPids: backend ? [backend.pid] : [],
    urls: started.map((n) => n.url),
    /** Heap after a full GC, per node (only with `heapProbe`): `{ heapUsed, external, arrayBuffers, rss }` bytes. */
    heapAfterGc: () => Promise.all(started.map((n) => heapAfterGc(n.pid))),
    stderr: () => [...started, ...(backend ? [backend] : [])].map((n) => n.child.stderrText()).join(''),
    stop: () => Promise.all([...started, ...(backend ? [backend] : [])].map((n) => stopChild(n.child))),
  };
}

/** Signals a target process started with the heap probe and reads what it wrote (bounded: 10 s). */
async function heapAfterGc(pid) {
  const file = join(configDir, `${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        /* being written: read again */
      }
    }
    await sleep(20);
  }
  throw new Error(`heap probe of ${pid}: no answer in 10 s`);
}
