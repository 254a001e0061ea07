// The open-files limit (src/fd-limit.ts): past it new connections are closed at once without an error, so Herald
// warns (log code open_files_near_limit) before a node gets there.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig } from '../src/config/index.js';
import { createMemoryEngine } from '../src/engine/memory/index.js';
import { OpenFilesWatch, openFilesLimit } from '../src/fd-limit.js';
import { HeraldNode } from '../src/node.js';
import type { ClientTransport } from '../src/transport/connection.js';
import { SECRET } from './support/herald.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('openFilesLimit', () => {
  it('reads the soft limit from /proc/self/limits', () => {
    assert.equal(
      openFilesLimit(() => LIMITS),
      1024,
    );
  });

  it('answers undefined when the file cannot be read or says unlimited', () => {
    assert.equal(
      openFilesLimit(() => {
        throw new Error('ENOENT');
      }),
      undefined,
    );
    assert.equal(
      openFilesLimit(() => LIMITS.replace('1024                 524288', 'unlimited            unlimited')),
      undefined,
    );
  });

  it('reads this process limit on Linux', () => {
    const limit = openFilesLimit();
    assert.ok(limit !== undefined && limit > 0, `got ${limit}`);
  });
});

describe('OpenFilesWatch', () => {
  it('warns once at 90% of the limit, and again only after falling below 80%', () => {
    const warned: number[] = [];
    const w = new OpenFilesWatch(100, (n) => warned.push(n));
    for (const n of [10, 89, 90, 95, 85, 80, 90, 79, 91]) w.check(n);
    assert.deepEqual(warned, [90, 91]);
  });
});

describe('HeraldNode', () => {
  const nodes: HeraldNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.close()));
  });

  it('logs open_files_near_limit on its tick once its connections reach 90% of the limit', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const { warnings: _w, ...config } = loadConfig({ env: { HERALD_TOKEN_SECRET: SECRET } });
    const node = new HeraldNode({
      config,
      engine: createMemoryEngine(),
      log: pino({ level: 'warn' }, sink),
      tickIntervalMs: 0,
      openFilesLimit: 10,
    });
    nodes.push(node);
    const transport: ClientTransport = {
      remoteAddress: '127.0.0.1',
      send() {},
      sendShared() {},
      pause() {},
      resume() {},
      close() {},
    };
    const open = () =>
      node.openSession(transport, { headers: {}, remoteAddress: '127.0.0.1', url: '/connection/websocket' });
    for (let i = 0; i < 8; i++) open();
    node.tick(Date.now());
    await new Promise((r) => setImmediate(r));
    assert.equal(lines.filter((l) => l.code === 'open_files_near_limit').length, 0, 'not at 8 of 10');
    open();
    node.tick(Date.now());
    node.tick(Date.now());
    await new Promise((r) => setImmediate(r));
    const warn = lines.filter((l) => l.code === 'open_files_near_limit');
    assert.equal(warn.length, 1);
    assert.equal(warn[0]!.connections, 9);
    assert.equal(warn[0]!.limit, 10);
    assert.match(String(warn[0]!.msg), /LimitNOFILE/);
  });
});
