import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../src/protocol/codes.js';
import { startHerald, type TestServer } from './support/herald.js';

let s: TestServer | undefined;
after(() => s?.close());

test('a path Herald does not serve answers HTTP 404 with the protocol code for not found (104), not the HTTP status', async () => {
  s = await startHerald({});
  const res = await fetch(`${s.httpUrl}/no-such-endpoint`);
  assert.equal(res.status, 404);
  const body = (await res.json()) as { error: { code: number; message: string }; server: string };
  assert.deepEqual(body, {
    error: { code: ErrorCode.methodNotFound, message: 'not found: /no-such-endpoint' },
    server: 'herald',
  });
});
