// UserIndex (src/user-index.ts): connections by user, a single connection held without a Set.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UserIndex } from '../src/user-index.js';

describe('UserIndex', () => {
  it('counts and lists a user with one, two, then one connection again', () => {
    const idx = new UserIndex<string>();
    idx.add('alice', 'c1');
    assert.equal(idx.count('alice'), 1);
    assert.deepEqual(idx.list('alice'), ['c1']);
    idx.add('alice', 'c2');
    assert.equal(idx.count('alice'), 2);
    assert.deepEqual(idx.list('alice').sort(), ['c1', 'c2']);
    idx.delete('alice', 'c1');
    assert.deepEqual(idx.list('alice'), ['c2']);
    idx.add('alice', 'c3');
    assert.deepEqual(idx.list('alice').sort(), ['c2', 'c3']);
    assert.equal(idx.size, 1);
  });

  it('forgets a user whose last connection goes, and ignores what it does not hold', () => {
    const idx = new UserIndex<string>();
    idx.add('bob', 'c1');
    idx.delete('bob', 'other');
    idx.delete('carol', 'c1');
    assert.equal(idx.count('bob'), 1);
    idx.delete('bob', 'c1');
    assert.equal(idx.count('bob'), 0);
    assert.deepEqual(idx.list('bob'), []);
    assert.equal(idx.size, 0);
  });

  it('holds a connection added twice once', () => {
    const idx = new UserIndex<string>();
    idx.add('dave', 'c1');
    idx.add('dave', 'c1');
    assert.equal(idx.count('dave'), 1);
    idx.add('dave', 'c2');
    idx.add('dave', 'c2');
    assert.equal(idx.count('dave'), 2);
  });

  it('lists a snapshot that stays whole while connections are removed during the loop', () => {
    const idx = new UserIndex<string>();
    for (const c of ['c1', 'c2', 'c3']) idx.add('erin', c);
    const seen: string[] = [];
    for (const c of idx.list('erin')) {
      seen.push(c);
      idx.delete('erin', c);
    }
    assert.deepEqual(seen.sort(), ['c1', 'c2', 'c3']);
    assert.equal(idx.count('erin'), 0);
  });
});
