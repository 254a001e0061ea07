import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** One request Herald made to the backend. */
export interface BackendRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

/**
 * What a handler returns: a value answered as JSON with status 200, or a Reply for anything else. `hang` never
 * answers (a backend past its timeout); `raw` sends text as is.
 */
export type Reply =
  | { kind: 'status'; status: number; body?: string }
  | { kind: 'raw'; body: string; contentType?: string }
  | { kind: 'hang' };

export type Handler = (req: BackendRequest) => unknown;

export const status = (s: number, body = ''): Reply => ({ kind: 'status', status: s, body });
export const raw = (body: string, contentType = 'text/html'): Reply => ({ kind: 'raw', body, contentType });
export const hang = (): Reply => ({ kind: 'hang' });

function isReply(v: unknown): v is Reply {
  return typeof v === 'object' && v !== null && 'kind' in v && typeof (v as Reply).kind === 'string';
}

/** A plain Node HTTP server on 127.0.0.1 standing in for the app's proxy endpoints; it records every request. */
export class Backend {
  readonly requests: BackendRequest[] = [];
  private readonly handlers = new Map<string, Handler>();
  private readonly hanging = new Set<ServerResponse>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<Backend> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const b = new Backend(server, (server.address() as AddressInfo).port);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = Buffer.concat(chunks).toString('utf8');
        }
        const r: BackendRequest = { path, headers: req.headers, body };
        b.requests.push(r);
        const h = b.handlers.get(path);
        if (!h) {
          res.writeHead(404).end('no handler');
          return;
        }
        Promise.resolve()
          .then(() => h(r))
          .then(
            (out) => b.respond(res, out),
            (err: unknown) => res.writeHead(500).end(String(err)),
          );
      });
    });
    return b;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  on(path: string, handler: Handler): void {
    this.handlers.set(path, handler);
  }

  /** Requests made to `path` so far. */
  to(path: string): BackendRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  private respond(res: ServerResponse, out: unknown): void {
    if (isReply(out)) {
      if (out.kind === 'hang') {
        this.hanging.add(res);
        return;
      }
      if (out.kind === 'status') {
        res.writeHead(out.status, { 'content-type': 'text/plain' }).end(out.body ?? '');
        return;
      }
      res.writeHead(200, { 'content-type': out.contentType ?? 'text/plain' }).end(out.body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A pino logger at warn writing into `lines` (parsed JSON), to assert on what Herald logged. */
export function capturingLogger(): { logger: Logger; lines: any[] } {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}
