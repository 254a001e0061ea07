// A plain Node HTTP server on 127.0.0.1 standing in for the application's webhook endpoint: it records every POST
// (raw body, headers, parsed events) and answers what `answer` says.
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** `answer` values: close the connection without an answer, or never answer. */
export const DROP = -1;
export const HANG = -2;

export interface ReceivedPost {
  headers: IncomingHttpHeaders;
  body: string;
  events: { id: string; type: string; time: number; [field: string]: unknown }[];
  /** The status this POST was answered with. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  posts: ReceivedPost[];
  /** Every event received, in arrival order (a retried batch appears once per POST). */
  events(): ReceivedPost['events'];
  /** The status for the n-th POST (0-based). @default 200 */
  answer: (n: number) => number;
  close(): Promise<void>;
}

/** With `tls` (PEM key and certificate) the receiver speaks https. */
export async function startReceiver(
  path = '/herald/webhook',
  tls?: { key: string; cert: string },
): Promise<WebhookReceiver> {
  const posts: ReceivedPost[] = [];
  const receiver: WebhookReceiver = {
    url: '',
    posts,
    events: () => posts.flatMap((p) => p.events),
    answer: () => 200,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = receiver.answer(posts.length);
      let events: ReceivedPost['events'] = [];
      try {
        events = (JSON.parse(body) as { events: ReceivedPost['events'] }).events;
      } catch {
        events = [];
      }
      posts.push({ headers: req.headers, body, events, status });
      if (status === HANG) return;
      if (status === DROP) {
        req.socket.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'failed');
    });
  };
  const server: Server = tls ? createTlsServer(tls, handle) : createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  server.keepAliveTimeout = 1000;
  receiver.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  const close = receiver.close;
  receiver.close = () => {
    server.closeAllConnections();
    return close();
  };
  return receiver;
}
