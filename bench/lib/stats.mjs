// Small statistics helpers: percentiles of samples, median/min/max of repeats.

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function latencySummary(samples) {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : NaN };
}

export function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** { median, min, max } of repeated measurements of one metric. */
export function summarize(xs) {
  const f = xs.filter(Number.isFinite);
  if (f.length === 0) return null;
  return { median: median(f), min: Math.min(...f), max: Math.max(...f) };
}
