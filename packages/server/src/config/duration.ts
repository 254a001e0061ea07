/** Parses Go-style durations as Centrifugo configs write them ("300s", "1m30s", "500ms", "1h"); numbers are seconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;

export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  let rest = value.trim();
  if (rest === '0') return 0;
  if (/^\d+(?:\.\d+)?$/.test(rest)) return Number(rest) * 1000;
  if (rest.length === 0 || rest.length > 64) return undefined;
  let total = 0;
  while (rest.length > 0) {
    const m = PART.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}
