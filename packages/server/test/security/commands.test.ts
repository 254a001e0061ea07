import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken, RawClient, startHerald, type TestServer } from '../support/herald.js';
import { assertNoStack, assertUnaffected, bystander, securityChannels } from './common.js';

/** docs/security.md, "Frames and messages": bad commands get error replies, then close 3509 after HERALD_MAX_ERRORS. */
const MAX_ERRORS = 6;

describe('malformed commands', { timeout: 60_000 }, () => {
  let s: TestServer;
  let watcher: RawClient;
  before(async () => {
    s = await startHerald({ config: securityChannels, env: { HERALD_MAX_ERRORS: String(MAX_ERRORS) } });
    watcher = await bystander(s, 'cmds');
  });
  after(async () => {
    watcher.close();
    await s.close();
  });

  async function connected(): Promise<RawClient> {
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: await mintToken({ sub: 'mallory' }) } });
    assert.ok((await c.reply(1)).connect);
    return c;
  }

  /** Raw lines (not JSON-encoded by the helper) and the error code each must get. */
  const bad: [string, string, number][] = [
    ['malformed JSON', '{"id":2,"subscribe":', 107],
    ['a JSON array', '[1,2,3]', 107],
    ['a JSON string', '"subscribe"', 107],
    ['an unknown method', '{"id":3,"destroy":{}}', 104],
    ['two methods in one command', '{"id":4,"subscribe":{"channel":"a"},"publish":{"channel":"a","data":1}}', 107],
    ['a negative id', '{"id":-1,"ping":{}}', 107],
    ['a string id', '{"id":"5","ping":{}}', 107],
    ['an id above 2^32', '{"id":4294967296,"ping":{}}', 107],
    ['params that are a string', '{"id":6,"subscribe":"cmds"}', 107],
    ['params that are an array', '{"id":7,"publish":["cmds",1]}', 107],
    ['a numeric channel', '{"id":8,"subscribe":{"channel":42}}', 107],
    ['an object channel', '{"id":9,"history":{"channel":{"$ne":""}}}', 107],
    ['a missing channel', '{"id":10,"presence":{}}', 107],
    ['a string history limit', '{"id":11,"history":{"channel":"cmds","limit":"all"}}', 107],
    [
      'a string offset in recovery',
      '{"id":12,"subscribe":{"channel":"cmds2","recover":true,"offset":"1","epoch":"x"}}',
      107,
    ],
    ['a numeric rpc method', '{"id":13,"rpc":{"method":7,"data":{}}}', 107],
    ['a numeric refresh token', '{"id":14,"refresh":{"token":123}}', 107],
    ['a non-boolean recover flag', '{"id":15,"subscribe":{"channel":"cmds3","recover":"yes"}}', 107],
  ];

  for (const [what, line, code] of bad) {
    test(`${what} gets error ${code} and the connection stays open`, async () => {
      const c = await connected();
      c.send(line);
      await waitForError(c);
      const err = c.messages.find((m) => m.error)!;
      assert.equal(err.error.code, code, JSON.stringify(err));
      assertNoStack(JSON.stringify(err), 'the error reply');
      // Still usable.
      c.send({ id: 99, ping: {} });
      assert.ok((await c.reply(99)).ping !== undefined);
      assert.equal(c.closeCode, undefined);
      c.close();
    });
  }

  test(`exactly ${MAX_ERRORS} bad commands are answered; the next one closes with 3509, and others are unaffected`, async () => {
    const c = await connected();
    const lines = bad.map(([, l]) => l);
    for (let i = 0; i < MAX_ERRORS; i++) c.send(lines[i % lines.length]!);
    await waitForErrors(c, MAX_ERRORS);
    assert.equal(c.closeCode, undefined, 'still open after the allowed number of errors');
    c.send(lines[0]!);
    const closed = await c.closed();
    assert.equal(closed.code, 3509);
    assertNoStack(closed.reason, 'the close reason');
    assert.equal(c.messages.filter((m) => m.error).length, MAX_ERRORS);
    await assertUnaffected(s, watcher, 'cmds');
  });

  test('bad commands sent in one frame count one by one towards 3509', async () => {
    const c = await connected();
    c.send(...Array.from({ length: MAX_ERRORS + 5 }, (_, i) => `{"id":${i + 2},"nope":{}}`));
    assert.equal((await c.closed()).code, 3509);
    assert.equal(c.messages.filter((m) => m.error?.code === 104).length, MAX_ERRORS);
  });

  test('bad lines before connect are answered with errors too, and still end in 3509, never in a crash', async () => {
    const c = await RawClient.open(s.wsUrl);
    for (let i = 0; i <= MAX_ERRORS; i++) c.send('{not json');
    assert.equal((await c.closed()).code, 3509);
    await assertUnaffected(s, watcher, 'cmds');
  });
});

async function waitForErrors(c: RawClient, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (c.messages.filter((m) => m.error).length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} error replies, got ${JSON.stringify(c.messages)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function waitForError(c: RawClient): Promise<void> {
  return waitForErrors(c, 1);
}
