import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { Disconnect, ErrorCode, UnsubscribeCode } from '../src/protocol/codes.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/codes.md'), 'utf8');

test('docs/codes.md lists every error, unsubscribe and disconnect code the server defines', () => {
  const codes = [
    ...Object.values(ErrorCode),
    ...Object.values(UnsubscribeCode),
    ...Object.values(Disconnect).map((d) => d.code),
  ];
  for (const code of codes)
    assert.match(doc, new RegExp(`^\\| ${code} \\|`, 'm'), `code ${code} is missing from docs/codes.md`);
});

/**
 * A code written as a number beside the word that carries it (`code: 107`, `code === 3500`, `close(3008, …)`,
 * `new HeraldError(404)`, `"code":100` in a JSON string) instead of a name from protocol/codes.ts. HTTP statuses
 * (`send(res, 404, …)`, `writeHead(503)`) are not protocol codes and do not match.
 */
const codeLiteral =
  /\b(?:code|closeCode|close|report|onEnd|disconnect|HeraldError)\b["']?\s*(?:[:=(]|===|!==|,)\s*(\d{3,4})\b/g;

/**
 * Files allowed to hold code literals: codes.ts defines them; doctor/ is the operator's diagnostic client, which
 * matches the codes a server answered with (and closes its own probe with 1000).
 */
const allowed = (rel: string): boolean => rel === 'protocol/codes.ts' || rel.startsWith('doctor/');

/** Comments name codes in prose ("closes with 3008"); only code counts. */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/\s\/\/ .*$/gm, '');
}

function codeLiterals(text: string): string[] {
  return [...withoutComments(text).matchAll(codeLiteral)].map((m) => m[0]);
}

test('the scan for code literals finds a code written as a number', () => {
  assert.deepEqual(
    codeLiterals(
      'x.close(3008, \'slow\');\nreturn { code: 107, message };\n// closes with code: 3500\nres.end(\'{"error":{"code":100}}\');',
    ),
    ['close(3008', 'code: 107', 'code":100'],
  );
  assert.deepEqual(codeLiterals('send(res, 404, body);\nres.writeHead(503);\nx.close(Disconnect.slow.code);'), []);
});

test('no protocol, unsubscribe or disconnect code is written as a number in the server sources outside codes.ts', () => {
  const src = resolve(import.meta.dirname, '../src');
  const found: string[] = [];
  for (const rel of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts') || allowed(rel.split(sep).join('/'))) continue;
    for (const hit of codeLiterals(readFileSync(join(src, rel), 'utf8'))) found.push(`${rel}: ${hit}`);
  }
  assert.deepEqual(
    found,
    [],
    'use the named constant from packages/server/src/protocol/codes.ts (add one, with its docs/codes.md row)',
  );
});
