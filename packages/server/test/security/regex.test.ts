import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { check } from 'recheck';
import { scanRegexes } from './regex-scan.js';
import { channelNameProblem } from '../../src/channels/name.js';
import { decodeFrame } from '../../src/protocol/codec.js';
import { parseDurationMs } from '../../src/config/duration.js';
import { checkOrigin } from '../../src/transport/origin.js';

/**
 * docs/security.md, "Auth and authorization": every regular expression in packages/<pkg>/src is judged by recheck
 * (automaton and fuzz checkers, offline). The verdict is the pass/fail condition; times are only logged.
 */
const root = resolve(import.meta.dirname, '../../../..');
const found = scanRegexes(root);

test(`the source scan finds the regular expressions (${found.length}), including known ones`, () => {
  assert.ok(found.length >= 20, `only ${found.length} found`);
  assert.ok(
    found.some((r) => r.file.endsWith('api/http.ts') && r.source.startsWith('^apikey')),
    'the API key header regex is among them',
  );
});

test('no regular expression is built from a non-literal pattern (those could not be judged)', () => {
  assert.deepEqual(
    found.filter((r) => r.dynamic).map((r) => `${r.file}:${r.line}`),
    [],
  );
});

test(
  'recheck judges every regular expression in packages/*/src safe from catastrophic backtracking',
  { timeout: 120_000 },
  async () => {
    const unsafe: string[] = [];
    for (const r of found) {
      const d = await check(r.source, r.flags, { timeout: 10_000 });
      if (d.status !== 'safe')
        unsafe.push(
          `${r.file}:${r.line} /${r.source}/${r.flags}: ${d.status}${d.status === 'vulnerable' ? ` (${d.complexity.summary})` : ''}`,
        );
    }
    assert.deepEqual(unsafe, []);
  },
);

test('the regex-using validators handle 5 KB hostile inputs (times logged, a bound that cannot flake)', () => {
  const inputs = [
    'a'.repeat(5000),
    '/'.repeat(5000),
    `apikey${' '.repeat(5000)}\n`,
    `${'1'.repeat(5000)}.`,
    `http://${'a'.repeat(5000)}/`,
    '\t'.repeat(5000),
    `{"id":1,${'"a":1,'.repeat(800)}}`,
  ];
  for (const input of inputs) {
    const started = performance.now();
    channelNameProblem(input);
    decodeFrame(input);
    try {
      parseDurationMs(input);
    } catch {
      /* refused: fine */
    }
    checkOrigin(input, { host: input }, undefined, false);
    checkOrigin(input, { host: 'x' }, [input], true);
    const ms = performance.now() - started;
    console.log(`# validators on ${JSON.stringify(input.slice(0, 12))}… (${input.length} chars): ${ms.toFixed(3)} ms`);
    assert.ok(ms < 250, `${ms} ms`);
  }
});
