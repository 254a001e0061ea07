// Run as its own process (its file-descriptor limit raised by the parent's shell): opens many sockets against a
// Herald that never complete a session, and reports how and when the server ended each of them.
//   node --import tsx idle-flood.ts <port> <silent> <trickle> <upgraded>
// silent:   TCP connections that send nothing;
// trickle:  an upgrade request whose headers arrive one line per second and never end (slowloris);
// upgraded: a completed WebSocket upgrade that never sends `connect`.
// Prints JSON lines: {"opened":...} once every socket is open, then {"done":...} with the results.
import net from 'node:net';
import { ServerFrames } from './raw-ws.js';

type Kind = 'silent' | 'trickle' | 'upgraded';
interface Result {
  kind: Kind;
  openedAt: number;
  closedAt?: number;
  status?: number;
  closeCode?: number;
  error?: string;
  lateError?: string;
}

const [port, ...counts] = process.argv.slice(2).map(Number);
const plan: [Kind, number][] = [
  ['silent', counts[0]!],
  ['trickle', counts[1]!],
  ['upgraded', counts[2]!],
];
const results: Result[] = [];
const trickling = new Set<net.Socket>();
const t0 = performance.now();
const now = () => performance.now() - t0;

function open(kind: Kind): Promise<void> {
  return new Promise((resolve) => {
    const r: Result = { kind, openedAt: 0 };
    results.push(r);
    const s = net.connect({ port: port!, host: '127.0.0.1' });
    let head = '';
    const frames = new ServerFrames();
    s.on('connect', () => {
      r.openedAt = now();
      if (kind === 'trickle') {
        s.write('GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        trickling.add(s);
      } else if (kind === 'upgraded') {
        s.write(
          'GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
      }
      resolve();
    });
    const answerClose = () => {
      if (frames.closeCode === undefined || r.closeCode !== undefined) return;
      // Answer the server's close frame as a client does (masked, same code), so the server can end the socket.
      r.closeCode = frames.closeCode;
      r.closedAt = now();
      const reply = Buffer.from([0x88, 0x82, 0, 0, 0, 0, frames.closeCode >> 8, frames.closeCode & 255]);
      s.end(reply);
    };
    s.on('data', (chunk) => {
      if (r.status === 101) {
        frames.push(chunk);
        return answerClose();
      }
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      r.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (r.status === 101) {
        frames.push(Buffer.from(head.slice(end + 4), 'latin1'));
        answerClose();
      }
    });
    s.on('error', (err) => {
      // Only a failure to connect counts as an error; a reset after the server gave up on the socket is an end.
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      if (s.connecting) r.error = code;
      else r.lateError = code;
      resolve();
    });
    s.on('close', () => {
      r.closedAt ??= now();
      trickling.delete(s);
    });
  });
}

const trickle = setInterval(() => {
  let n = 0;
  for (const s of trickling) s.write(`X-Slow-${n++ % 1000}: ${'a'.repeat(10)}\r\n`);
}, 1000);

const batch = 500;
for (const [kind, count] of plan) {
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => open(kind)));
  }
}
const openFailures = results.filter((r) => r.error).length;
process.stdout.write(JSON.stringify({ opened: results.length, openFailures, at: now() }) + '\n');

const deadline = performance.now() + 40_000;
while (results.some((r) => r.closedAt === undefined) && performance.now() < deadline)
  await new Promise((r) => setTimeout(r, 100));
clearInterval(trickle);

const summary: Record<string, unknown> = {};
for (const [kind] of plan) {
  const rs = results.filter((r) => r.kind === kind);
  const lifetimes = rs
    .filter((r) => r.closedAt !== undefined && !r.error)
    .map((r) => r.closedAt! - r.openedAt)
    .sort((a, b) => a - b);
  const by = (f: (r: Result) => unknown) =>
    rs.reduce<Record<string, number>>((acc, r) => {
      const k = String(f(r));
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {});
  summary[kind] = {
    count: rs.length,
    stillOpen: rs.filter((r) => r.closedAt === undefined).length,
    errors: by((r) => r.error ?? 'none'),
    // A reset before any answer (status 'none') means the kernel dropped the handshake: the accept queue overflowed.
    lateErrorsWithoutAnswer: by((r) => (r.status === undefined ? (r.lateError ?? 'closed') : 'answered')),
    statuses: by((r) => r.status ?? 'none'),
    closeCodes: by((r) => r.closeCode ?? 'none'),
    minLifetimeMs: Math.round(lifetimes[0] ?? -1),
    maxLifetimeMs: Math.round(lifetimes[lifetimes.length - 1] ?? -1),
  };
}
process.stdout.write(JSON.stringify({ done: summary, at: now() }) + '\n');
process.exit(0);
