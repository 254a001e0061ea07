// The lint rules that keep the house in order are checked to catch what they exist for: a rule that silently
// stopped applying (a glob typo, a plugin update) would leave `npm test` green while the boundary is gone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

async function ruleIds(text: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(text, { filePath });
  assert.ok(result, 'eslint returned a result');
  return result.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

test('importing ws outside transport/ is a lint error', async () => {
  assert.deepEqual(
    await ruleIds("import { WebSocket } from 'ws';\nexport const w = WebSocket;\n", 'packages/server/src/hub.ts'),
    ['no-restricted-imports'],
  );
});

test('importing ws inside transport/ is allowed', async () => {
  assert.deepEqual(
    await ruleIds(
      "import { WebSocket } from 'ws';\nexport const w = WebSocket;\n",
      'packages/server/src/transport/websocket.ts',
    ),
    [],
  );
});

test('importing ioredis outside engine/redis/ is a lint error', async () => {
  assert.deepEqual(
    await ruleIds("import { Redis } from 'ioredis';\nexport const r = Redis;\n", 'packages/server/src/session.ts'),
    ['no-restricted-imports'],
  );
});

test('importing pg or better-sqlite3 outside the outbox stores is a lint error', async () => {
  assert.deepEqual(
    await ruleIds("import pg from 'pg';\nexport const p = pg;\n", 'packages/server/src/outbox/consumer.ts'),
    ['no-restricted-imports'],
  );
  assert.deepEqual(
    await ruleIds(
      "import Database from 'better-sqlite3';\nexport const d = Database;\n",
      'packages/server/src/outbox/postgres.ts',
    ),
    ['no-restricted-imports'],
  );
});

test('reading process.env outside config/ and cli/ is a lint error', async () => {
  const text = 'export const port = process.env.WS_PORT;\n';
  assert.deepEqual(await ruleIds(text, 'packages/server/src/outbox/serve-extension.ts'), ['no-restricted-properties']);
  assert.deepEqual(await ruleIds(text, 'packages/server/src/config/index.ts'), []);
  assert.deepEqual(await ruleIds(text, 'packages/server/src/cli/serve.ts'), []);
});

test('a promise left floating, even behind void, is a lint error', async () => {
  const text = 'async function work(): Promise<void> {}\nexport function go(): void {\n  void work();\n  work();\n}\n';
  assert.deepEqual(await ruleIds(text, 'packages/server/src/hub.ts'), [
    '@typescript-eslint/no-floating-promises',
    '@typescript-eslint/no-floating-promises',
  ]);
});

test('a promise with a catch is accepted', async () => {
  const text = 'async function work(): Promise<void> {}\nexport function go(): void {\n  work().catch(() => {});\n}\n';
  assert.deepEqual(await ruleIds(text, 'packages/server/src/hub.ts'), []);
});

test('an async function handed to an event listener is a lint error', async () => {
  const text =
    "import { EventEmitter } from 'node:events';\nexport function go(e: EventEmitter): void {\n  e.on('data', async () => {});\n}\n";
  assert.deepEqual(await ruleIds(text, 'packages/server/src/hub.ts'), ['@typescript-eslint/no-misused-promises']);
});

test('an import cycle is a lint error', async () => {
  // session.ts imports protocol/codes.ts; codes.ts importing session.ts back closes a cycle.
  const text = "import { Session } from '../session.js';\nexport const s = Session;\n";
  assert.deepEqual(await ruleIds(text, 'packages/server/src/protocol/codes.ts'), ['import-x/no-cycle']);
});
