import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Disconnect, ErrorCode, UnsubscribeCode } from '../src/protocol/codes.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/codes.md'), 'utf8');

test('docs/codes.md lists every error, unsubscribe and disconnect code the server defines', () => {
  const codes = [
    ...Object.values(ErrorCode),
    ...Object.values(UnsubscribeCode),
    ...Object.values(Disconnect).map((d) => d.code),
  ];
  for (const code of codes) assert.match(doc, new RegExp(`^\\| ${code} \\|`, 'm'), `code ${code} is missing from docs/codes.md`);
});
