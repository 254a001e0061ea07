/**
 * Fossil delta encoding, the `delta: "fossil"` compression of the client protocol: the SDK rebuilds a publication's
 * payload from the previous one and this patch. Format (fossil-scm.org, www/delta_format.wiki):
 *   <target length>"\n"  then commands  <n>"@"<offset>","  (copy n bytes of the source from offset)
 *   or  <n>":"<n bytes>  (insert literally)  and last  <checksum>";"  (a 32-bit sum of the target).
 * Integers are base 64 with the digit set below, most significant digit first.
 *
 * Herald sends the patch as a JSON string, which the SDK turns back into bytes with TextEncoder, so copies never
 * start or end inside a UTF-8 sequence of the target: every literal run is whole characters and survives the trip.
 *
 * Bounded work: the source's aligned 16-byte blocks go into a hash table, the target is scanned with a rolling
 * hash, and at each position at most MAX_CANDIDATES source blocks are tried. Every candidate tried and every byte
 * compared is counted against a budget of WORK_PER_BYTE per target byte (plus a small constant); once it is spent,
 * the rest of the target is one literal insert. The patch is always valid; a hostile pair of payloads only gets a
 * larger one (then the full payload is sent instead, see fossilPublicationData), never a quadratic amount of CPU.
 */

import { createHash } from 'node:crypto';

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~';
/** Source blocks indexed, and the shortest copy worth a command. */
const BLOCK = 16;
/** Source blocks with the same hash tried at one target position (the most recent ones first). */
export const MAX_CANDIDATES = 8;
/** Work units (candidate tries and compared bytes) allowed per byte of target, and a constant for tiny payloads. */
export const WORK_PER_BYTE = 24;
const WORK_BASE = 4096;

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

/**
 * Rolling hash of a BLOCK-byte window: a = sum of the bytes, b = sum of (BLOCK - k) * byte k. Moving the window one
 * byte right: a' = a - out + in, b' = b - BLOCK * out + a'.
 */
function windowHash(a: number, b: number): number {
  return Math.imul((a & 0xffff) | ((b & 0xffff) << 16), 0x9e3779b1) >>> 0;
}

function isContinuation(b: Uint8Array, i: number): boolean {
  return i < b.length && (b[i]! & 0xc0) === 0x80;
}

/** The patch that turns `source` into `target` (both UTF-8 bytes), in time linear in their lengths. */
export function createFossilDelta(source: Uint8Array, target: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from(`${int64(target.length)}\n`, 'latin1')];
  const literal = (from: number, to: number) => {
    if (to > from) parts.push(Buffer.from(`${int64(to - from)}:`, 'latin1'), Buffer.from(target.subarray(from, to)));
  };

  const blocks = Math.floor(source.length / BLOCK);
  let pending = 0; // start of target bytes not yet emitted
  if (blocks > 0 && target.length >= BLOCK) {
    // Hash table of the source's aligned blocks: head[bucket] is the last block with that hash (+1, 0 = none),
    // next[block] the one before it.
    let size = 1;
    while (size < blocks) size <<= 1;
    const mask = size - 1;
    const head = new Int32Array(size);
    const next = new Int32Array(blocks);
    for (let k = 0; k < blocks; k++) {
      let a = 0;
      let b = 0;
      for (let j = 0; j < BLOCK; j++) {
        const c = source[k * BLOCK + j]!;
        a += c;
        b += (BLOCK - j) * c;
      }
      const h = windowHash(a, b) & mask;
      next[k] = head[h]!;
      head[h] = k + 1;
    }

    let budget = WORK_BASE + WORK_PER_BYTE * target.length;
    let a = 0;
    let b = 0;
    for (let j = 0; j < BLOCK; j++) {
      const c = target[j]!;
      a += c;
      b += (BLOCK - j) * c;
    }
    let i = 0; // the window is target[i, i + BLOCK)
    for (;;) {
      let bestT = 0;
      let bestS = 0;
      let bestN = 0;
      let tries = 0;
      for (let k = head[windowHash(a, b) & mask]!; k !== 0 && tries < MAX_CANDIDATES && budget > 0; k = next[k - 1]!) {
        tries++;
        budget--;
        const s0 = (k - 1) * BLOCK;
        // Extend forwards from the window's start (a hash match is only a hint), then backwards no further than
        // the pending literal.
        let n = 0;
        while (i + n < target.length && s0 + n < source.length && source[s0 + n] === target[i + n]) n++;
        budget -= n;
        if (n < BLOCK) continue;
        let back = 0;
        while (i - back > pending && s0 - back > 0 && source[s0 - back - 1] === target[i - back - 1]) back++;
        budget -= back;
        if (n + back > bestN) {
          bestT = i - back;
          bestS = s0 - back;
          bestN = n + back;
        }
      }
      // Keep copy boundaries on character boundaries of the target.
      while (bestN > 0 && isContinuation(target, bestT)) {
        bestT++;
        bestS++;
        bestN--;
      }
      while (bestN > 0 && isContinuation(target, bestT + bestN)) bestN--;
      let to = i + 1;
      if (bestN >= BLOCK) {
        literal(pending, bestT);
        parts.push(Buffer.from(`${int64(bestN)}@${int64(bestS)},`, 'latin1'));
        to = pending = bestT + bestN;
      }
      if (budget <= 0 || to + BLOCK > target.length) break;
      if (to === i + 1) {
        // Roll the window one byte.
        const out = target[i]!;
        const inb = target[i + BLOCK]!;
        a += inb - out;
        b += a - BLOCK * out;
        budget--;
      } else {
        a = 0;
        b = 0;
        for (let j = 0; j < BLOCK; j++) {
          const c = target[to + j]!;
          a += c;
          b += (BLOCK - j) * c;
        }
        budget -= BLOCK;
      }
      i = to;
    }
  }
  literal(pending, target.length);
  parts.push(Buffer.from(`${int64(checksum(target))};`, 'latin1'));
  return Buffer.concat(parts);
}

/** Pairs smaller than this (source plus target bytes) are encoded each time: cheaper than hashing them. */
const CACHE_MIN_BYTES = 8192;
/** What the cache of computed patches may hold (UTF-16 code units of patch text, about 2 bytes each). */
const CACHE_MAX_UNITS = 8 * 1024 * 1024;

/**
 * Patches computed for large payloads, by a SHA-256 of the (previous, next) pair, least recently used first. A
 * patch is a pure function of the two payloads, so one entry serves every subscriber, channel and node path that
 * needs it: the live feed and every later recovery of the same publications (which otherwise recomputes the
 * whole chain for each recovering subscriber). `undefined` records that the patch was not smaller than the payload.
 */
const cache = new Map<string, string | undefined>();
let cacheUnits = 0;
const stats = { encoded: 0, reused: 0 };

/** Patches encoded and patches served from the cache since the process started (for tests and diagnostics). */
export function fossilDeltaStats(): { encoded: number; reused: number } {
  return { ...stats };
}

function cacheKey(prev: string, data: string): string {
  return createHash('sha256').update(`${prev.length}:${data.length}:`).update(prev).update(data).digest('base64');
}

function cachePut(key: string, patchJson: string | undefined): void {
  const units = key.length + (patchJson?.length ?? 0);
  if (units > CACHE_MAX_UNITS) return;
  cache.set(key, patchJson);
  cacheUnits += units;
  for (const [k, v] of cache) {
    if (cacheUnits <= CACHE_MAX_UNITS) break;
    cache.delete(k);
    cacheUnits -= k.length + (v?.length ?? 0);
  }
}

/**
 * The `data` field of a publication sent to a subscriber that negotiated fossil delta: always a JSON string, either
 * the full payload text (`delta: false`) or, when `prev` (the payload the subscriber last decoded) is known and the
 * patch is smaller, the patch (`delta: true`).
 */
export function fossilPublicationData(prev: string | undefined, data: string): { data: string; delta: boolean } {
  if (prev !== undefined) {
    const key = prev.length + data.length >= CACHE_MIN_BYTES ? cacheKey(prev, data) : undefined;
    if (key !== undefined && cache.has(key)) {
      const patchJson = cache.get(key);
      cache.delete(key);
      cache.set(key, patchJson);
      stats.reused++;
      return patchJson === undefined ? { data: JSON.stringify(data), delta: false } : { data: patchJson, delta: true };
    }
    const target = Buffer.from(data, 'utf8');
    const patch = createFossilDelta(Buffer.from(prev, 'utf8'), target);
    stats.encoded++;
    const patchJson = patch.length < target.length ? JSON.stringify(patch.toString('utf8')) : undefined;
    if (key !== undefined) cachePut(key, patchJson);
    if (patchJson !== undefined) return { data: patchJson, delta: true };
  }
  return { data: JSON.stringify(data), delta: false };
}
