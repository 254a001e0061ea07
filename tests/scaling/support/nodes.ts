// Herald nodes as real processes (`herald serve` from the build) on the Redis engine.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { spawnServe } from '../../support/herald-child.js';
import { freePort, waitFor } from './util.js';
export const SECRET = 'scaling-test-secret';
export const API_KEY = 'scaling-test-key';

/** Channels `room:*`: history, forced recovery, presence and join/leave; any client may subscribe. */
function writeConfig(dir: string): string {
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      channel: {
        namespaces: [
          {
            name: 'room',
            history_size: 10_000,
            history_ttl: '600s',
            force_recovery: true,
            presence: true,
            join_leave: true,
            allow_subscribe_for_client: true,
            allow_presence_for_subscriber: true,
            allow_history_for_subscriber: true,
            allow_publish_for_subscriber: true,
          },
        ],
      },
    }),
  );
  return file;
}

export interface ApiAnswer {
  status: number;
  result?: any;
  error?: { code: number; message: string; temporary?: boolean };
}

export interface HeraldNode {
  name: string;
  port: number;
  wsUrl: string;
  child: ChildProcess;
  logs: Record<string, any>[];
  stderr(): string;
  /** POST /api/<method>; never throws for an HTTP or API error (a fault test looks at both). */
  api(method: string, body: unknown, timeoutMs?: number): Promise<ApiAnswer>;
  ready(): Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  alive(): boolean;
}

export class Cluster {
  readonly nodes: HeraldNode[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'herald-scaling-'));
  private readonly config = writeConfig(this.dir);

  constructor(
    readonly redisUrl: string,
    readonly prefix: string,
    private readonly env: Record<string, string> = {},
  ) {}

  /** Starts a node and waits for /ready 200 (or, with `until: 'health'`, only for /health 200). */
  async start(
    name: string,
    env: Record<string, string> = {},
    until: 'ready' | 'health' = 'ready',
  ): Promise<HeraldNode> {
    const port = await freePort();
    const { child, logs, stderr, exited } = spawnServe({
      NODE_ENV: 'production',
      WS_PORT: String(port),
      HERALD_HOST: '127.0.0.1',
      HERALD_NAME: name,
      HERALD_ENGINE: 'redis',
      REDIS_URL: this.redisUrl,
      HERALD_REDIS_PREFIX: this.prefix,
      HERALD_REDIS_TIMEOUT: '1s',
      HERALD_TOKEN_SECRET: SECRET,
      HERALD_API_KEY: API_KEY,
      HERALD_CONFIG: this.config,
      HERALD_LOG_LEVEL: 'info',
      ...this.env,
      ...env,
    });
    const node: HeraldNode = {
      name,
      port,
      wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
      child,
      logs,
      stderr,
      async api(method, body, timeoutMs = 5000) {
        const res = await fetch(`http://127.0.0.1:${port}/api/${method}`, {
          method: 'POST',
          headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        let json: any = {};
        try {
          json = JSON.parse(text);
        } catch {
          json = { error: { code: -1, message: text } };
        }
        return { status: res.status, result: json.result, error: json.error };
      },
      async ready() {
        const r = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) }).catch(
          () => undefined,
        );
        return r?.status ?? 0;
      },
      alive: () => child.exitCode === null && child.signalCode === null,
      async kill(signal = 'SIGKILL') {
        if (node.alive()) {
          child.kill(signal);
          await exited;
        }
      },
    };
    this.nodes.push(node);
    await waitFor(
      async () => {
        if (!node.alive()) throw new Error(`herald ${name} exited at start: ${stderr().slice(-2000)}`);
        if (until === 'ready') return (await node.ready()) === 200;
        const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).catch(
          () => undefined,
        );
        return r?.status === 200;
      },
      `herald ${name} on :${port} /${until} 200`,
      20_000,
    );
    return node;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function token(user: string, ttlSec = 3600): Promise<string> {
  return new SignJWT({ sub: user })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
    .sign(new TextEncoder().encode(SECRET));
}
