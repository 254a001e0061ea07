import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHerald, type Herald, type HeraldOptions } from '@herald/server';

export const CHAT_NAMESPACE = {
  channel: {
    namespaces: [
      {
        name: 'chat',
        presence: true,
        join_leave: true,
        history_size: 100,
        history_ttl: '300s',
        force_recovery: true,
        allow_subscribe_for_client: true,
        allow_publish_for_subscriber: true,
        allow_presence_for_subscriber: true,
        allow_history_for_subscriber: true,
      },
    ],
  },
};

export async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A port that was free a moment ago and has nothing listening now. */
export async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Running {
  port: number;
  close(): Promise<void>;
}

/** Next.js without a rewrite, as far as a client can tell: GET answers 404 HTML, an upgrade hangs. */
export async function nextLikeServer(): Promise<Running> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html', 'x-powered-by': 'Next.js' });
    res.end(
      '<!DOCTYPE html><html><body><div id="__next">404: This page could not be found.</div><script src="/_next/static/chunks/main.js"></script></body></html>',
    );
  });
  server.on('upgrade', (_req, socket: Socket) => {
    sockets.add(socket);
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An HTTP server that is not Herald: 404 for everything, upgrades included. */
export async function plain404Server(): Promise<Running> {
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  server.on('upgrade', (_req, socket: Socket) =>
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Accepts TCP connections and never sends a byte. */
export async function silentTcpServer(): Promise<Running> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export const SECRET = 'test-secret-for-herald-client-tests-0123456789';

/** A real Herald on a free loopback port with the `chat` namespace (and `extra` options, e.g. hooks). */
export async function startHerald(
  env: Record<string, string> = {},
  extra: Partial<HeraldOptions> = {},
): Promise<{ herald: Herald; port: number; url: string }> {
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: SECRET, ...env },
    fileConfig: CHAT_NAMESPACE,
    logger: false,
    ...extra,
  });
  const addr = await herald.listen(0, '127.0.0.1');
  return { herald, port: addr.port, url: `ws://127.0.0.1:${addr.port}/ws` };
}
