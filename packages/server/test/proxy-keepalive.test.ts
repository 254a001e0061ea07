import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Subscription } from 'centrifuge';
import { mintToken, newClient, startHerald, type TestServer } from './support/herald.js';

/**
 * A backend that closes an idle kept-alive connection just as Herald reuses it (what Node's and Next.js's 5 s
 * keep-alive timeout does at the wrong moment) must not turn a proxy call into an error: the request never reached the
 * backend's handler, so Herald sends it again once on a new connection.
 */

/** Answers the first request of each TCP connection with keep-alive, then resets the connection on the next one. */
class ResettingBackend {
  requests = 0;
  resets = 0;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<ResettingBackend> {
    const server = createServer();
    const backend = new ResettingBackend(server);
    server.on('connection', (socket) => backend.serve(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return backend;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/subscribe`;
  }

  private serve(socket: Socket): void {
    let buffered = Buffer.alloc(0);
    let served = false;
    socket.on('data', (chunk: Buffer) => {
      if (served) {
        this.resets++;
        socket.destroy();
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const head = buffered.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(buffered.subarray(0, head).toString('latin1'))?.[1] ?? 0);
      if (buffered.length < head + 4 + length) return;
      served = true;
      this.requests++;
      const body = '{"result":{}}';
      socket.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`,
      );
    });
    socket.on('error', () => {});
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

function outcome(sub: Subscription): Promise<string> {
  return new Promise((resolve) => {
    sub.once('subscribed', () => resolve('subscribed'));
    sub.once('error', (ctx) => {
      resolve(`error ${ctx.error.code}: ${ctx.error.message}`);
      sub.unsubscribe();
    });
    sub.subscribe();
  });
}

describe('proxy calls over kept-alive connections', { timeout: 30_000 }, () => {
  let backend: ResettingBackend;
  let s: TestServer;

  before(async () => {
    backend = await ResettingBackend.start();
    s = await startHerald({
      fileConfig: {
        channel: {
          proxy: { subscribe: { endpoint: backend.url, timeout: '2s' } },
          namespaces: [{ name: 'room', subscribe_proxy_enabled: true }],
        },
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });

  test('a kept-alive connection the backend resets as it is reused is retried once on a new one, and the subscribe succeeds', async () => {
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'alice' }) });
    c.connect();
    assert.equal(await outcome(c.newSubscription('room:first')), 'subscribed');
    assert.equal(await outcome(c.newSubscription('room:second')), 'subscribed');
    assert.equal(await outcome(c.newSubscription('room:third')), 'subscribed');
    c.disconnect();
    assert.deepEqual({ requests: backend.requests, resets: backend.resets }, { requests: 3, resets: 2 });
  });
});
