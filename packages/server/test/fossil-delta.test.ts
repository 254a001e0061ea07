import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFossilDelta, fossilPublicationData } from '../src/protocol/fossil-delta.js';

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~';

/** A strict reader of the fossil delta format (www/delta_format.wiki), as the SDK applies it. */
function applyDelta(source: Buffer, delta: Buffer): Buffer {
  let pos = 0;
  const int = (): number => {
    let v = 0;
    let d: number;
    const start = pos;
    while (pos < delta.length && (d = DIGITS.indexOf(String.fromCharCode(delta[pos]!))) >= 0) {
      v = v * 64 + d;
      pos++;
    }
    assert.ok(pos > start, `integer expected at ${start}`);
    return v;
  };
  const char = () => String.fromCharCode(delta[pos++]!);
  const size = int();
  assert.equal(char(), '\n');
  const out: Buffer[] = [];
  for (;;) {
    const n = int();
    const op = char();
    if (op === '@') {
      const offset = int();
      assert.equal(char(), ',');
      assert.ok(offset + n <= source.length, 'copy inside the source');
      out.push(source.subarray(offset, offset + n));
    } else if (op === ':') {
      out.push(delta.subarray(pos, pos + n));
      pos += n;
    } else {
      assert.equal(op, ';');
      assert.equal(pos, delta.length, 'checksum ends the delta');
      const target = Buffer.concat(out);
      assert.equal(target.length, size);
      let sum = 0;
      for (let i = 0; i < target.length; i += 4) {
        sum =
          (sum +
            (((target[i]! << 24) |
              ((target[i + 1] ?? 0) << 16) |
              ((target[i + 2] ?? 0) << 8) |
              (target[i + 3] ?? 0)) >>>
              0)) >>>
          0;
      }
      assert.equal(n, sum, 'checksum');
      return target;
    }
  }
}

function roundTrip(source: string, target: string): Buffer {
  const delta = createFossilDelta(Buffer.from(source), Buffer.from(target));
  // The patch travels as a JSON string and the SDK re-encodes it with TextEncoder: it must be valid UTF-8.
  assert.deepEqual(Buffer.from(delta.toString('utf8')), delta);
  assert.equal(applyDelta(Buffer.from(source), delta).toString('utf8'), target);
  return delta;
}

test('a fossil delta rebuilds the target from the source, edge cases included', () => {
  roundTrip('', '');
  roundTrip('', 'new');
  roundTrip('short', 'shorter');
  roundTrip('x'.repeat(100), '');
  const same = 'the same text, long enough to be copied in blocks'.repeat(3);
  assert.ok(roundTrip(same, same).length < 20);
});

test('a small edit to a large payload gives a small patch', () => {
  const a = JSON.stringify({ counter: 1, payload: 'a'.repeat(500) });
  const b = JSON.stringify({ counter: 2, payload: 'a'.repeat(500) });
  assert.ok(roundTrip(a, b).length < 40);
});

test('copies never split a multi-byte character, so the patch survives the JSON string round trip', () => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const alphabet = ['a', 'b', 'é', '€', '😀', '世'];
  const text = (n: number) => Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join('');
  for (let k = 0; k < 300; k++) {
    const source = text(rand(400));
    let target = source;
    for (let e = rand(5); e > 0; e--) {
      const at = rand(target.length + 1);
      target = target.slice(0, at) + text(rand(8)) + target.slice(at + rand(8));
    }
    target = Buffer.from(target).toString('utf8'); // drop a surrogate half cut by slice
    roundTrip(source, target);
  }
});

test('publication data for a delta subscriber is a JSON string: full without a base, a patch only when smaller', () => {
  const full = fossilPublicationData(undefined, '{"a":1}');
  assert.deepEqual(full, { data: JSON.stringify('{"a":1}'), delta: false });
  assert.equal(fossilPublicationData('{"b":2}', '{"a":1}').delta, false);
  const big = (n: number) => JSON.stringify({ n, text: 'lorem ipsum '.repeat(50) });
  const d = fossilPublicationData(big(1), big(2));
  assert.equal(d.delta, true);
  assert.equal(applyDelta(Buffer.from(big(1)), Buffer.from(JSON.parse(d.data) as string)).toString(), big(2));
});
