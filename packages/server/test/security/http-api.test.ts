import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { API_KEY, startHerald, type TestServer } from '../support/herald.js';
import { assertNoStack, securityChannels } from './common.js';

/** docs/security.md, "HTTP API": keys, body size, malformed bodies and the rate limit, with no stack in any answer. */
async function post(
  s: TestServer,
  method: string,
  body: string | Uint8Array,
  headers: Record<string, string> = { 'x-api-key': API_KEY },
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${s.httpUrl}/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  assertNoStack(text, `the ${res.status} body`);
  return { status: res.status, text, headers: res.headers };
}

describe('HTTP API abuse', { timeout: 60_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startHerald({ config: securityChannels, env: { HERALD_API_MAX_BODY: '4096' } });
  });
  after(async () => s.close());

  test('a missing, wrong, empty, prefix-of or differently-cased key is refused with 401', async () => {
    const body = '{"channel":"x","data":1}';
    for (const headers of [
      {},
      { 'x-api-key': 'wrong' },
      { 'x-api-key': '' },
      { 'x-api-key': API_KEY.slice(0, -1) },
      { 'x-api-key': `${API_KEY} ` + 'x' },
      { 'x-api-key': API_KEY.toUpperCase() },
      { authorization: `Bearer ${API_KEY}` },
      { authorization: 'apikey' },
      { authorization: `apikey wrong` },
      { authorization: `apikey${'\t'.repeat(4000)}x` },
    ]) {
      assert.equal(
        (await post(s, 'publish', body, headers as Record<string, string>)).status,
        401,
        JSON.stringify(headers).slice(0, 80),
      );
    }
    assert.equal((await post(s, 'publish', body, { authorization: `apikey ${API_KEY}` })).status, 200);
  });

  test('a body over HERALD_API_MAX_BODY is refused with 413, declared or streamed without a length', async () => {
    const big = JSON.stringify({ channel: 'x', data: 'y'.repeat(5000) });
    assert.equal((await post(s, 'publish', big)).status, 413);
    // Chunked: no Content-Length, so the limit must be counted while reading.
    const status = await new Promise<number>((resolve, reject) => {
      const sock = net.connect(s.port, '127.0.0.1', () => {
        sock.write(
          `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
        );
        for (let i = 0; i < 10; i++) sock.write(`3e8\r\n${'a'.repeat(1000)}\r\n`);
      });
      let got = '';
      sock.on('data', (d) => {
        got += d.toString();
        const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
        if (m) {
          resolve(Number(m[1]));
          sock.destroy();
        }
      });
      sock.on('error', reject);
      sock.on('close', () => resolve(-1));
    });
    assert.equal(status, 413);
    assert.equal((await fetch(`${s.httpUrl}/health`)).status, 200);
  });

  test('malformed JSON and wrong field types are refused with 400', async () => {
    for (const body of [
      '{',
      'not json',
      '{"channel":',
      '\u0000',
      '{"channel":"x","data":1}}',
      '[]',
      '"str"',
      '{"channel":5,"data":1}',
      '{"channel":"x"}',
      '{"channel":"*","data":1}',
    ]) {
      const r = await post(s, 'publish', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
    }
    assert.equal((await post(s, 'broadcast', '{"channels":"x","data":1}')).status, 400);
    // broadcast reports each channel's result: a bad entry is a 107 in its slot, the others are unaffected.
    const mixed = await post(s, 'broadcast', '{"channels":[1,"ok-channel"],"data":1}');
    assert.match(mixed.text, /107/);
    assert.equal((await post(s, 'history', '{"channel":"x","limit":"ten"}')).status, 400);
  });

  test('a GET, PUT or unknown method on /api is refused without running anything', async () => {
    assert.equal((await fetch(`${s.httpUrl}/api/publish`, { headers: { 'x-api-key': API_KEY } })).status, 405);
    assert.equal((await post(s, 'constructor', '{}')).status, 404);
    assert.equal((await post(s, '__proto__', '{}')).status, 404);
  });
});

test(
  'over HERALD_API_RATE the API answers 429 with Retry-After, also for wrong keys, and recovers once the bucket refills',
  { timeout: 30_000 },
  async () => {
    const s = await startHerald({ config: securityChannels, env: { HERALD_API_RATE: '5' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await post(s, 'info', '{}')).status);
      assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200], statuses.join(','));
      assert.ok(statuses.slice(5).includes(429), statuses.join(','));
      const limited = await post(s, 'info', '{}');
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '1');
      // Guessing keys spends the same budget: no free brute force.
      assert.equal((await post(s, 'info', '{}', { 'x-api-key': 'guess' })).status, 429);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await post(s, 'info', '{}')).status, 200, 'the bucket refilled');
      assert.equal((await fetch(`${s.httpUrl}/health`)).status, 200, '/health is not rate limited');
    } finally {
      await s.close();
    }
  },
);
