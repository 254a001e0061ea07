/**
 * Raw HTTP/1.1 over node:net and node:tls for the probes. The doctor writes request bytes itself and reads the
 * answer byte by byte, because the failures it diagnoses are exactly the answers an HTTP client library hides:
 * no answer at all (the Next.js hang), bytes that are not HTTP ("Internal Server Error" written raw by Next's
 * proxy when its upstream is down), a TLS server spoken to in clear text, or a 101 whose socket we keep.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface WireTarget {
  /** Host name as written in the URL (Host header, TLS SNI). */
  host: string;
  /** The address step 1 connected to (skips a second DNS answer that might differ). */
  address: string;
  port: number;
  secure: boolean;
}

export interface HttpResponse {
  httpVersion: string;
  status: number;
  statusText: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

export type ExchangeOutcome =
  /** A complete (or, for a 101, header-only) HTTP answer. For a 101 the socket stays open. */
  | { kind: 'response'; response: HttpResponse; ms: number; socket?: net.Socket; rest?: Buffer }
  /** Connected, sent the request, nothing came back before the deadline. */
  | { kind: 'no_answer'; ms: number }
  /** Bytes came back that are not an HTTP answer (or the peer closed mid-answer). */
  | { kind: 'not_http'; raw: string; ms: number }
  /** The peer closed the connection without sending a byte. */
  | { kind: 'closed'; ms: number }
  | { kind: 'connect_error'; code: string; message: string; ms: number }
  | { kind: 'tls_error'; code: string; message: string; ms: number };

const MAX_READ = 256 * 1024;

/** Parses the head of an HTTP answer; undefined until the blank line has arrived or when it is not HTTP. */
export function parseResponseHead(buf: Buffer): { head: Omit<HttpResponse, 'body'>; bodyStart: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { head: { httpVersion: m[1]!, status: Number(m[2]), statusText: m[3] ?? '', headers }, bodyStart: end + 4 };
}

/** Whether the bytes could still become an HTTP answer (used to tell "not HTTP" from "not finished"). */
export function looksLikeHttpStart(buf: Buffer): boolean {
  const s = buf.subarray(0, 5).toString('latin1');
  return 'HTTP/'.startsWith(s) || s.startsWith('HTTP/');
}

/** Decodes a chunked body; `complete` is false while the terminating chunk has not arrived. */
export function decodeChunked(buf: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return { body: Buffer.concat(parts), complete: false };
    const size = parseInt(buf.subarray(pos, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: true };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    const start = eol + 2;
    if (buf.length < start + size) {
      parts.push(buf.subarray(start));
      return { body: Buffer.concat(parts), complete: false };
    }
    parts.push(buf.subarray(start, start + size));
    pos = start + size + 2;
  }
}

/** The body once complete per Content-Length / chunked, or undefined while more bytes are expected. */
function bodyIfComplete(head: Omit<HttpResponse, 'body'>, rest: Buffer, ended: boolean): string | undefined {
  const noBody = head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200);
  if (noBody) return '';
  if (/chunked/i.test(head.headers['transfer-encoding'] ?? '')) {
    const d = decodeChunked(rest);
    return d.complete || ended ? d.body.toString('utf8') : undefined;
  }
  const len = Number(head.headers['content-length']);
  if (Number.isFinite(len) && head.headers['content-length'] !== undefined) {
    return rest.length >= len ? rest.subarray(0, len).toString('utf8') : ended ? rest.toString('utf8') : undefined;
  }
  return ended ? rest.toString('utf8') : undefined;
}

/** One line: OpenSSL messages carry a multi-line trace; its `reason` ("wrong version number") is what matters. */
function errMessage(err: unknown): string {
  const e = err as Error & { reason?: string };
  return e.reason ?? (e.message ?? String(err)).split('\n')[0]!.trim();
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { library?: string; reason?: string };
  return e.code ?? 'ERROR';
}

/** A TLS failure rather than a TCP one: OpenSSL codes, certificate checks, or a peer that hung up mid-handshake. */
function isTlsFailure(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? '';
  return (
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|EPROTO/.test(code) ||
    /SSL|TLS|certificate|wrong version number|packet length/i.test(e.message ?? '')
  );
}

export interface ExchangeOptions {
  timeoutMs: number;
  /** For an upgrade: stop at the head of a 101 and hand over the socket. */
  keepUpgraded?: boolean;
}

/** Connects, writes `request`, and reads one HTTP answer (or whatever came instead). Never throws. */
export function exchange(target: WireTarget, request: string, opts: ExchangeOptions): Promise<ExchangeOutcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let socket: net.Socket;
    let connected = false;
    let done = false;
    let buf = Buffer.alloc(0);
    const finish = (o: ExchangeOutcome, keep = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      // A kept (upgraded) socket is paused so no frame is dropped before its new reader attaches.
      if (keep) socket.pause();
      else socket.destroy();
      resolve(o);
    };
    const settle = (ended: boolean) => {
      if (buf.length === 0) {
        if (ended) finish({ kind: 'closed', ms: ms() });
        return;
      }
      const parsed = parseResponseHead(buf);
      if (!parsed) {
        if (ended || !looksLikeHttpStart(buf) || buf.length > MAX_READ) {
          finish({ kind: 'not_http', raw: buf.subarray(0, 400).toString('latin1'), ms: ms() });
        }
        return;
      }
      const rest = buf.subarray(parsed.bodyStart);
      if (parsed.head.status === 101 && opts.keepUpgraded) {
        finish({ kind: 'response', response: { ...parsed.head, body: '' }, ms: ms(), socket, rest }, true);
        return;
      }
      const body = bodyIfComplete(parsed.head, rest, ended || buf.length > MAX_READ);
      if (body !== undefined) finish({ kind: 'response', response: { ...parsed.head, body }, ms: ms() });
    };
    let tcpConnected = false;
    const onTimeout = () => {
      // TCP up but the TLS handshake unanswered is the same silence as an unanswered request.
      if (!connected && tcpConnected) return finish({ kind: 'no_answer', ms: ms() });
      if (!connected) {
        finish({
          kind: 'connect_error',
          code: 'ETIMEDOUT',
          message: `no TCP connection within ${opts.timeoutMs} ms`,
          ms: ms(),
        });
        return;
      }
      if (buf.length === 0) return finish({ kind: 'no_answer', ms: ms() });
      const parsed = parseResponseHead(buf);
      if (parsed) {
        finish({
          kind: 'response',
          response: { ...parsed.head, body: buf.subarray(parsed.bodyStart).toString('utf8') },
          ms: ms(),
        });
      } else {
        finish({ kind: 'not_http', raw: buf.subarray(0, 400).toString('latin1'), ms: ms() });
      }
    };
    const timer = setTimeout(onTimeout, opts.timeoutMs);

    if (target.secure) {
      socket = tls.connect({
        host: target.address,
        port: target.port,
        servername: net.isIP(target.host) ? undefined : target.host,
        ALPNProtocols: ['http/1.1'],
      });
      socket.once('connect', () => {
        tcpConnected = true;
      });
      socket.once('secureConnect', () => {
        connected = true;
        socket.write(request);
      });
    } else {
      socket = net.connect({ host: target.address, port: target.port });
      socket.once('connect', () => {
        connected = true;
        socket.write(request);
      });
    }
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      settle(false);
    });
    socket.on('end', () => settle(true));
    socket.on('close', () => settle(true));
    socket.on('error', (err) => {
      if (done) return;
      if (target.secure && !connected && (isTlsFailure(err) || (err as NodeJS.ErrnoException).code === 'ECONNRESET')) {
        finish({ kind: 'tls_error', code: errCode(err), message: errMessage(err), ms: ms() });
      } else if (!connected) {
        finish({ kind: 'connect_error', code: errCode(err), message: errMessage(err), ms: ms() });
      } else {
        settle(true);
      }
    });
  });
}

/** Whether a TLS handshake succeeds on the port (tells "you spoke ws:// to a wss:// port"). */
export function tlsHandshakes(
  target: WireTarget,
  timeoutMs: number,
): Promise<{ ok: boolean; code?: string; message?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: target.address,
      port: target.port,
      servername: net.isIP(target.host) ? undefined : target.host,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => done({ ok: false, code: 'ETIMEDOUT' }), timeoutMs);
    const done = (r: { ok: boolean; code?: string; message?: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.once('secureConnect', () => done({ ok: true }));
    socket.once('error', (err) => done({ ok: false, code: errCode(err), message: errMessage(err) }));
    socket.once('close', () => done({ ok: false, code: 'CLOSED' }));
  });
}

/** The request line and headers of a plain GET (what a browser's fetch of the endpoint sends, minus cookies). */
export function plainGetRequest(
  host: string,
  port: number,
  defaultPort: number,
  path: string,
  origin?: string,
): string {
  const hostHeader = port === defaultPort ? host : `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: herald-doctor\r\nAccept: */*\r\n` +
    (origin ? `Origin: ${origin}\r\n` : '') +
    'Connection: close\r\n\r\n'
  );
}
