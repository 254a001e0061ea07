import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { probeEndpoint } from '../src/probe.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The most this server ever writes to one response, so the test stays bounded even against a probe that never stops. */
const SERVER_CAP_BYTES = 256 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/**
 * Answers every GET with a Next.js-looking head and then an endless body, written as fast as the reader takes it.
 * Reports how many bytes the reader took before it hung up.
 */
async function endlessBodyServer(): Promise<{ port: number; written: Promise<number> }> {
  let report: (n: number) => void = () => {};
  const written = new Promise<number>((r) => (report = r));
  const server = createServer((_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/html', 'x-powered-by': 'Next.js' });
    let total = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      report(total);
    };
    res.on('close', finish);
    const pump = () => {
      while (!res.destroyed && total < SERVER_CAP_BYTES) {
        total += CHUNK.byteLength;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      if (total >= SERVER_CAP_BYTES) res.end(finish);
    };
    res.write('<!DOCTYPE html><html><body><div id="__next"></div>');
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, written };
}

test('the diagnosis probe reads only the head of an endless body, cancels the rest and still recognises Next.js', async () => {
  const { port, written } = await endlessBodyServer();
  const started = Date.now();
  const result = await probeEndpoint(`ws://127.0.0.1:${port}/ws`, { timeoutMs: 20_000 });
  const elapsed = Date.now() - started;
  assert.deepEqual(result, { kind: 'other', status: 200, server: 'nextjs', poweredBy: 'Next.js' });
  // Cancelling the body closes the connection: the server sees the reader hang up after at most the 64 KB read plus
  // what the sockets and the fetch implementation buffer on the way (a few MB on loopback), never the whole stream.
  const took = await written;
  assert.ok(took < 32 * 1024 * 1024, `the server wrote ${took} bytes before the probe hung up`);
  // Generous: reading 64 KB takes milliseconds; an unbounded read runs until the 20 s timeout.
  assert.ok(elapsed < 10_000, `the probe took ${elapsed} ms`);
});
