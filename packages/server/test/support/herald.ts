import { once } from 'node:events';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { Centrifuge, type Options as CentrifugeOptions } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import { createHerald, type Herald, type HeraldOptions } from '../../src/index.js';
import type { Engine } from '../../src/engine/engine.js';
import { engineFactories } from './engines.js';

export const SECRET = 'conformance-secret';
export const API_KEY = 'conformance-api-key';

export interface TestServer {
  herald: Herald;
  port: number;
  wsUrl: string;
  httpUrl: string;
  close(): Promise<void>;
}

/** Starts Herald on an ephemeral loopback port with a test secret and API key; `engine` picks the backend. */
export async function startHerald(opts: HeraldOptions & { engineName?: string } = {}): Promise<TestServer> {
  let engine: Engine | undefined = opts.engine;
  if (!engine && opts.engineName) engine = await engineFactories[opts.engineName]!();
  const herald = createHerald({
    logger: false,
    ...opts,
    engine,
    env: { HERALD_TOKEN_SECRET: SECRET, HERALD_API_KEY: API_KEY, ...opts.env },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  return {
    herald,
    port: addr.port,
    wsUrl: `ws://127.0.0.1:${addr.port}/connection/websocket`,
    httpUrl: `http://127.0.0.1:${addr.port}`,
    close: () => herald.close(),
  };
}

export async function mintToken(
  claims: Record<string, unknown>,
  opts: { secret?: string; ttlSec?: number | null; alg?: string } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuedAt();
  if (opts.ttlSec !== null) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (opts.ttlSec ?? 3600));
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

/** The client protocol's encodings: the SDK's default build speaks JSON, `centrifuge/build/protobuf` protobuf. */
export type Encoding = 'json' | 'protobuf';

/** The encodings the conformance suite runs its cases in (HERALD_TEST_ENCODINGS=json,protobuf). */
export const encodings: Encoding[] = (process.env.HERALD_TEST_ENCODINGS ?? 'json,protobuf')
  .split(',')
  .map((e) => e.trim())
  .filter((e): e is Encoding => e === 'json' || e === 'protobuf');

/**
 * What the application hands the SDK as data: JSON values in the JSON build, bytes in the protobuf build (an app
 * speaking protobuf to Herald sends JSON text as bytes, docs/protocol.md "Mixed channels").
 */
export function wire(encoding: Encoding, value: unknown): unknown {
  return encoding === 'json' ? value : new TextEncoder().encode(JSON.stringify(value));
}

/** The JSON value of data the SDK delivered: as is from the JSON build, parsed from the protobuf build's bytes. */
export function payload(data: unknown): unknown {
  return data instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(data)) : data;
}

/** The official SDK in `encoding` (its protobuf build has the same API; only data are bytes). */
export function newClient(
  url: string,
  options: Partial<CentrifugeOptions> = {},
  encoding: Encoding = 'json',
): Centrifuge {
  const Sdk = encoding === 'json' ? Centrifuge : (CentrifugeProtobuf as unknown as typeof Centrifuge);
  return new Sdk(url, {
    websocket: WebSocket as unknown as CentrifugeOptions['websocket'],
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
    ...options,
  });
}

export async function api(
  server: TestServer,
  method: string,
  body: unknown,
  key = API_KEY,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.httpUrl}/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/** Polls `check` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw WebSocket speaking the JSON protocol, for what the SDK never sends. */
export class RawClient {
  readonly messages: any[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      for (const line of data.toString().split('\n')) if (line.trim()) this.messages.push(JSON.parse(line));
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    ws.on('error', () => {});
  }
  static async open(url: string, options: WebSocket.ClientOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(url, options);
    const c = new RawClient(ws);
    await once(ws, 'open');
    return c;
  }
  send(...commands: unknown[]): void {
    this.ws.send(commands.map((c) => (typeof c === 'string' ? c : JSON.stringify(c))).join('\n'));
  }
  async reply(id: number, timeoutMs = 3000): Promise<any> {
    return waitFor(() => this.messages.find((m) => m.id === id), `reply ${id}`, timeoutMs);
  }
  async closed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    await waitFor(() => this.closeCode !== undefined, 'close', timeoutMs);
    return { code: this.closeCode!, reason: this.closeReason };
  }
  close(): void {
    this.ws.terminate();
  }
}
