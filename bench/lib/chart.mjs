// A hand-written SVG bar chart: server CPU microseconds per delivery at fan-out saturation (median, min-max whisker).

const COLORS = {
  herald: '#2f7d32',
  'herald-history': '#66a86a',
  'ws-raw': '#5c6bc0',
  socketio: '#ef6c00',
  'socketio-redis': '#c62828',
  'herald-redis': '#00838f',
};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** bars: [{ label, median, min, max }] */
export function barChartSvg({ title, subtitle, unit, bars }) {
  const W = 640;
  const rowH = 44;
  const left = 150;
  const right = 90;
  const top = 64;
  const H = top + bars.length * rowH + 40;
  const maxV = Math.max(...bars.map((b) => b.max ?? b.median), 1e-9) * 1.1;
  const x = (v) => left + ((W - left - right) * v) / maxV;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="16" y="26" font-size="17" font-weight="bold" fill="#222">${esc(title)}</text>`,
    `<text x="16" y="46" font-size="12" fill="#555">${esc(subtitle)}</text>`,
  ];
  // grid lines
  const step = niceStep(maxV / 5);
  for (let v = 0; v <= maxV; v += step) {
    parts.push(
      `<line x1="${x(v).toFixed(1)}" y1="${top - 6}" x2="${x(v).toFixed(1)}" y2="${H - 34}" stroke="#e4e4e4"/>`,
    );
    parts.push(
      `<text x="${x(v).toFixed(1)}" y="${H - 18}" font-size="11" fill="#777" text-anchor="middle">${+v.toFixed(2)}</text>`,
    );
  }
  parts.push(`<text x="${W - right + 10}" y="${H - 18}" font-size="11" fill="#777">${esc(unit)}</text>`);
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const color = COLORS[b.label] ?? '#888';
    parts.push(
      `<text x="${left - 10}" y="${y + 21}" font-size="13" fill="#222" text-anchor="end">${esc(b.label)}</text>`,
    );
    parts.push(
      `<rect x="${left}" y="${y + 6}" width="${(x(b.median) - left).toFixed(1)}" height="22" fill="${color}" rx="2"/>`,
    );
    if (b.min !== undefined && b.max !== undefined) {
      parts.push(
        `<line x1="${x(b.min).toFixed(1)}" y1="${y + 17}" x2="${x(b.max).toFixed(1)}" y2="${y + 17}" stroke="#222" stroke-width="1.5"/>`,
      );
      parts.push(
        `<line x1="${x(b.min).toFixed(1)}" y1="${y + 11}" x2="${x(b.min).toFixed(1)}" y2="${y + 23}" stroke="#222" stroke-width="1.5"/>`,
      );
      parts.push(
        `<line x1="${x(b.max).toFixed(1)}" y1="${y + 11}" x2="${x(b.max).toFixed(1)}" y2="${y + 23}" stroke="#222" stroke-width="1.5"/>`,
      );
    }
    parts.push(
      `<text x="${(Math.max(x(b.max ?? b.median), x(b.median)) + 6).toFixed(1)}" y="${y + 21}" font-size="12" fill="#222">${+b.median.toFixed(2)}${b.note ? ' ' + esc(b.note) : ''}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}
