/**
 * Fossil delta encoding, the `delta: "fossil"` compression of the client protocol: the SDK rebuilds a publication's
 * payload from the previous one and this patch. Format (fossil-scm.org, www/delta_format.wiki):
 *   <target length>"\n"  then commands  <n>"@"<offset>","  (copy n bytes of the source from offset)
 *   or  <n>":"<n bytes>  (insert literally)  and last  <checksum>";"  (a 32-bit sum of the target).
 * Integers are base 64 with the digit set below, most significant digit first.
 *
 * Herald sends the patch as a JSON string, which the SDK turns back into bytes with TextEncoder, so copies never
 * start or end inside a UTF-8 sequence of the target: every literal run is whole characters and survives the trip.
 */

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~';
/** Source blocks indexed, and the shortest copy worth a command. */
const BLOCK = 16;

function int64(n: number): string {
  if (n === 0) return '0';
  let s = '';
  while (n > 0) {
    s = DIGITS[n & 63] + s;
    n = Math.floor(n / 64);
  }
  return s;
}

/** Sum of the target's big-endian 32-bit words (a short tail padded with zeros), modulo 2^32. */
function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 4) {
    const word = ((b[i]! << 24) | ((b[i + 1] ?? 0) << 16) | ((b[i + 2] ?? 0) << 8) | (b[i + 3] ?? 0)) >>> 0;
    sum = (sum + word) >>> 0;
  }
  return sum;
}

function blockKey(b: Uint8Array, at: number): string {
  return Buffer.from(b.buffer, b.byteOffset + at, BLOCK).toString('latin1');
}

function isContinuation(b: Uint8Array, i: number): boolean {
  return i < b.length && (b[i]! & 0xc0) === 0x80;
}

/** The patch that turns `source` into `target` (both UTF-8 bytes). */
export function createFossilDelta(source: Uint8Array, target: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from(`${int64(target.length)}\n`, 'latin1')];
  const literal = (from: number, to: number) => {
    if (to > from) parts.push(Buffer.from(`${int64(to - from)}:`, 'latin1'), Buffer.from(target.subarray(from, to)));
  };

  // Index the source's aligned blocks; a target window equal to one of them seeds a copy.
  const index = new Map<string, number[]>();
  for (let at = 0; at + BLOCK <= source.length; at += BLOCK) {
    const key = blockKey(source, at);
    const list = index.get(key);
    if (list) list.push(at);
    else index.set(key, [at]);
  }

  let pending = 0; // start of target bytes not yet emitted
  let i = 0;
  while (index.size > 0 && i + BLOCK <= target.length) {
    const candidates = index.get(blockKey(target, i));
    if (!candidates) {
      i++;
      continue;
    }
    // Extend each candidate both ways (backwards no further than the pending literal) and keep the longest.
    let best = { t: 0, s: 0, n: 0 };
    for (const s0 of candidates) {
      let back = 0;
      while (i - back > pending && s0 - back > 0 && source[s0 - back - 1] === target[i - back - 1]) back++;
      let n = back + BLOCK;
      while (i - back + n < target.length && s0 - back + n < source.length && source[s0 - back + n] === target[i - back + n]) n++;
      if (n > best.n) best = { t: i - back, s: s0 - back, n };
    }
    // Keep copy boundaries on character boundaries of the target.
    let { t, s, n } = best;
    while (n > 0 && isContinuation(target, t)) {
      t++;
      s++;
      n--;
    }
    while (n > 0 && isContinuation(target, t + n)) n--;
    if (n < BLOCK) {
      i++;
      continue;
    }
    literal(pending, t);
    parts.push(Buffer.from(`${int64(n)}@${int64(s)},`, 'latin1'));
    i = pending = t + n;
  }
  literal(pending, target.length);
  parts.push(Buffer.from(`${int64(checksum(target))};`, 'latin1'));
  return Buffer.concat(parts);
}

/**
 * The `data` field of a publication sent to a subscriber that negotiated fossil delta: always a JSON string, either
 * the full payload text (`delta: false`) or, when `prev` (the payload the subscriber last decoded) is known and the
 * patch is smaller, the patch (`delta: true`).
 */
export function fossilPublicationData(prev: string | undefined, data: string): { data: string; delta: boolean } {
  if (prev !== undefined) {
    const target = Buffer.from(data, 'utf8');
    const patch = createFossilDelta(Buffer.from(prev, 'utf8'), target);
    if (patch.length < target.length) return { data: JSON.stringify(patch.toString('utf8')), delta: true };
  }
  return { data: JSON.stringify(data), delta: false };
}
