/** A small hand-written SVG line chart: one line per series, the y axis from 0 to the largest value shown. */

export interface Series {
  name: string;
  values: number[];
}

const COLORS = ['#4f9cf9', '#f5a524', '#17c964', '#f31260', '#9353d3', '#06b7db', '#ff7eb6', '#a3a3a3'];

export function colorOf(i: number): string {
  return COLORS[i % COLORS.length]!;
}

function nice(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (max <= m * p) return m * p;
  return 10 * p;
}

export function LineChart(props: { title: string; series: Series[]; points: number; testId: string; unit?: string }) {
  const W = 460;
  const H = 140;
  const PAD = { l: 40, r: 8, t: 8, b: 18 };
  const max = nice(Math.max(0, ...props.series.flatMap((s) => s.values)));
  const n = Math.max(2, props.points);
  const x = (i: number, len: number) => PAD.l + ((W - PAD.l - PAD.r) * (n - len + i)) / (n - 1);
  const y = (v: number) => H - PAD.b - ((H - PAD.t - PAD.b) * v) / max;
  const last = (s: Series) => s.values[s.values.length - 1] ?? 0;
  return (
    <figure className="chart" data-testid={props.testId}>
      <figcaption>
        {props.title}
        <span className="legend">
          {props.series.map((s, i) => (
            <span key={s.name} data-series={s.name} data-last={last(s)}>
              <i style={{ background: colorOf(i) }} /> {s.name} <b>{fmt(last(s))}</b>
              {props.unit ?? ''}
            </span>
          ))}
          {props.series.length === 0 && <span className="muted">nothing yet</span>}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line className="grid" x1={PAD.l} x2={W - PAD.r} y1={y(max * f)} y2={y(max * f)} />
            <text className="axis" x={PAD.l - 4} y={y(max * f) + 4} textAnchor="end">
              {fmt(max * f)}
            </text>
          </g>
        ))}
        <text className="axis" x={W - PAD.r} y={H - 4} textAnchor="end">
          now
        </text>
        <text className="axis" x={PAD.l} y={H - 4}>
          -{n}s
        </text>
        {props.series.map((s, i) => (
          <polyline
            key={s.name}
            fill="none"
            stroke={colorOf(i)}
            strokeWidth={1.6}
            points={s.values.map((v, j) => `${x(j, s.values.length).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        ))}
      </svg>
    </figure>
  );
}

export function fmt(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
