/**
 * Redis Cluster hash slots: a key lives in slot CRC16(tag) mod 16384, where the tag is the part between the first
 * `{` and the next `}` when that part is not empty, else the whole key (the cluster specification's HASH_SLOT).
 * Every key of one channel carries `{channel}` (keys.ts), so a channel's keys share a slot and one script can touch
 * them together. Keys that belong to a slot rather than to a channel (the first-life registry, the lifecycle index)
 * carry the slot's own tag: a short string that hashes to that slot.
 */
export const SLOT_COUNT = 16384;

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster uses. */
function crc16(s: string): number {
  const bytes = Buffer.from(s, 'utf8');
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The slot of a key, as `CLUSTER KEYSLOT` answers it. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % SLOT_COUNT;
  }
  return crc16(key) % SLOT_COUNT;
}

let tags: string[] | undefined;

/**
 * The shortest base-36 counter (0, 1, …, z, 10, …) that hashes to `slot`: the same on every node, so every node
 * names a slot's own keys alike.
 */
export function slotTag(slot: number): string {
  if (!tags) {
    const found: string[] = new Array<string>(SLOT_COUNT);
    let missing = SLOT_COUNT;
    for (let n = 0; missing > 0; n++) {
      const candidate = n.toString(36);
      const s = crc16(candidate) % SLOT_COUNT;
      if (found[s] === undefined) {
        found[s] = candidate;
        missing--;
      }
    }
    tags = found;
  }
  const tag = tags[slot];
  if (tag === undefined) throw new RangeError(`slot ${slot} is not in 0..${SLOT_COUNT - 1}`);
  return tag;
}
