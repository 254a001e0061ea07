import type { Claim } from './consumer.js';

/** The claimed rows, in id order, up to the batch's byte budget (a row too large to read costs nothing; the first always fits). */
export function withinBudget<R extends { bytes: number | string }>(
  rows: R[],
  claim: Pick<Claim, 'maxRowBytes' | 'maxBatchBytes'>,
): (Omit<R, 'bytes'> & { bytes: number; payload?: string })[] {
  const out: (Omit<R, 'bytes'> & { bytes: number; payload?: string })[] = [];
  let total = 0;
  for (const r of rows) {
    const bytes = Number(r.bytes);
    const cost = bytes > claim.maxRowBytes ? 0 : bytes;
    if (out.length > 0 && total + cost > claim.maxBatchBytes) break;
    total += cost;
    out.push({ ...r, bytes });
  }
  return out;
}
