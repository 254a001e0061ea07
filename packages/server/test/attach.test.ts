// herald.attach(): each attached server keeps the WebSocket paths it was attached with (issue #13: attaching a
// second server with another path used to replace the first one's path, leaving its upgrades hanging).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createHerald } from '../src/index.js';
import { mintToken, SECRET } from './support/herald.js';

/** Opens a WebSocket and runs a connect command; rejects when the upgrade or the reply takes over 5 s (a hang). */
async function connectsOn(url: string): Promise<{ client: string }> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const token = await mintToken({ sub: 'attach-user' });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${url}: no connect reply within 5 s (upgrade left unanswered?)`)),
        5000,
      );
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`${url}: upgrade answered ${res.statusCode}`));
      });
      ws.once('open', () => ws.send(JSON.stringify({ id: 1, connect: { token } })));
      ws.once('message', (data) => {
        clearTimeout(timer);
        resolve(JSON.parse(data.toString()).connect);
      });
    });
  } finally {
    ws.terminate();
  }
}

async function listening(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('herald.attach on several servers', { timeout: 30_000 }, () => {
  const herald = createHerald({ logger: false, env: { HERALD_TOKEN_SECRET: SECRET } });
  const first = createServer((req, res) => herald.handleRequest(req, res));
  const second = createServer((req, res) => herald.handleRequest(req, res));
  after(async () => {
    await herald.close();
    first.close();
    second.close();
  });

  it('a server attached with one path keeps serving it after a second server is attached with another path', async () => {
    herald.attach(first, { path: '/first-ws' });
    herald.attach(second, { path: '/second-ws' });
    const [a, b] = [await listening(first), await listening(second)];
    const onFirst = await connectsOn(`ws://127.0.0.1:${a}/first-ws`);
    assert.equal(typeof onFirst.client, 'string');
    const onSecond = await connectsOn(`ws://127.0.0.1:${b}/second-ws`);
    assert.equal(typeof onSecond.client, 'string');
  });

  it('attaching leaves config.wsPaths as configured', () => {
    assert.deepEqual(herald.config.wsPaths, ['/ws', '/connection/websocket']);
  });
});
