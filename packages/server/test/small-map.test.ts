// SmallMap (src/small-map.ts): a Map that holds its first entry without a hash table; it must answer like a Map.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SmallMap } from '../src/small-map.js';

describe('SmallMap', () => {
  it('answers every sequence of set, delete, clear and reads as a Map does, in the same order', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 4 }), value: fc.integer() }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ kind: fc.constant('clear' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const small = new SmallMap<number, number>();
        const map = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            assert.equal(small.set(o.key, o.value), small);
            map.set(o.key, o.value);
          } else if (o.kind === 'delete') assert.equal(small.delete(o.key), map.delete(o.key));
          else {
            small.clear();
            map.clear();
          }
          assert.equal(small.size, map.size);
          assert.deepEqual([...small], [...map]);
          assert.deepEqual([...small.keys()], [...map.keys()]);
          assert.deepEqual([...small.values()], [...map.values()]);
          for (let k = 0; k <= 4; k++) {
            assert.equal(small.has(k), map.has(k));
            assert.equal(small.get(k), map.get(k));
          }
          const seen: [number, number][] = [];
          small.forEach((v, k, m) => {
            assert.equal(m, small);
            seen.push([k, v]);
          });
          assert.deepEqual(seen, [...map.entries()]);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('replaces the value of its one key without making a Map, and keeps an undefined value apart from no entry', () => {
    const m = new SmallMap<string, number | undefined>();
    m.set('a', 1).set('a', 2);
    assert.equal(m.size, 1);
    assert.equal(m.get('a'), 2);
    m.set('a', undefined);
    assert.equal(m.has('a'), true);
    assert.equal(m.has('b'), false);
    assert.equal(Object.prototype.toString.call(m), '[object SmallMap]');
  });
});
