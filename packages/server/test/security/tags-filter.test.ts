// A subscribe's tags filter (`tf`, map and stream subscriptions with allow_tags_filter) is client input that the
// server keeps and runs on every publication: its size and nesting are bounded, and past the bounds it is a 107.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, HeraldError } from '../../src/protocol/codes.js';
import { matchesTags, parseTagsFilter } from '../../src/protocol/tags-filter.js';

const leaf = { key: 'k', cmp: 'eq', val: 'v' };

function nested(depth: number): unknown {
  let f: unknown = leaf;
  for (let i = 0; i < depth; i++) f = { op: 'not', nodes: [f] };
  return f;
}

function refused(raw: unknown, message: RegExp): void {
  assert.throws(
    () => parseTagsFilter(raw),
    (err: unknown) => err instanceof HeraldError && err.code === ErrorCode.badRequest && message.test(err.message),
  );
}

describe('tags filter bounds', () => {
  it('takes a filter nested 16 deep and refuses one nested 17 deep with 107', () => {
    assert.equal(matchesTags(parseTagsFilter(nested(16)), { k: 'v' }), true);
    refused(nested(17), /nested deeper than 16/);
  });

  it('takes 256 nodes and refuses 257 with 107', () => {
    const many = (n: number) => ({ op: 'or', nodes: Array.from({ length: n }, () => leaf) });
    assert.equal(matchesTags(parseTagsFilter(many(255)), { k: 'v' }), true);
    refused(many(256), /more than 256 nodes/);
  });

  it('refuses a filter nested 100,000 deep with 107 without overflowing the stack', () => {
    refused(nested(100_000), /nested deeper than 16/);
  });
});
