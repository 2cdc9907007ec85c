// A hand-rolled SVG chart of the gateway benchmark: two panels of horizontal grouped bars, one row
// per contender: requests/s at saturation (zero-latency upstream, non-streaming and streaming) and
// p99 at the fixed offered load (non-streaming, zero and fixed upstream latency).
import type { GatewayRow } from '../gateway.ts';
import { reqPerSec } from './load.ts';

interface Series {
  label: string;
  color: string;
  value: (contender: string) => number | undefined;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(
  x0: number,
  title: string,
  unit: string,
  contenders: string[],
  series: Series[],
  width: number,
): string {
  const labelW = 170;
  const barH = 11;
  const groupH = series.length * barH + 10;
  const top = 46;
  const plotW = width - labelW - 60;
  const max = Math.max(1, ...contenders.flatMap((c) => series.map((s) => s.value(c) ?? 0)));
  const out: string[] = [
    `<text x="${x0}" y="18" font-weight="bold">${esc(title)}</text>`,
    ...series.map(
      (s, i) =>
        `<rect x="${x0 + i * 150}" y="28" width="10" height="10" fill="${s.color}"/><text x="${x0 + 14 + i * 150}" y="37" font-size="11">${esc(s.label)}</text>`,
    ),
  ];
  contenders.forEach((c, ci) => {
    const y = top + ci * groupH;
    out.push(`<text x="${x0 + labelW - 6}" y="${y + groupH / 2}" text-anchor="end">${esc(c)}</text>`);
    series.forEach((s, si) => {
      const v = s.value(c);
      const by = y + si * barH;
      if (v === undefined || Number.isNaN(v)) {
        out.push(`<text x="${x0 + labelW + 4}" y="${by + 9}" font-size="10" fill="#888">not measured</text>`);
        return;
      }
      const w = Math.max(1, (v / max) * plotW);
      out.push(
        `<rect x="${x0 + labelW}" y="${by}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${s.color}"/>`,
        `<text x="${(x0 + labelW + w + 4).toFixed(1)}" y="${by + 8}" font-size="10">${v.toLocaleString('en-US', { maximumFractionDigits: unit === 'ms' ? 1 : 0 })}${unit === 'ms' ? ' ms' : ''}</text>`,
      );
    });
  });
  return out.join('\n');
}

export function svgChart(rows: GatewayRow[], opts: { rate: number; latencyMs: number }): string {
  const contenders = [...new Set(rows.map((r) => r.contender))];
  const get = (lat: number, body: string, f: (r: GatewayRow) => number | undefined) => (c: string) => {
    const r = rows.find((x) => x.contender === c && x.upstreamLatencyMs === lat && x.body === body);
    return r && !r.skipped ? f(r) : undefined;
  };
  const rps = reqPerSec;
  const p99 = (r: GatewayRow) => r.fixedRate?.p99;
  const panelW = 520;
  const height = 46 + contenders.length * (2 * 11 + 10) + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${panelW * 2}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${panel(
  10,
  'Requests/s at saturation (upstream 0 ms)',
  'req/s',
  contenders,
  [
    { label: 'non-streaming', color: '#3b6ea5', value: get(0, 'non-streaming', rps) },
    { label: 'streaming', color: '#8fb3d9', value: get(0, 'streaming', rps) },
  ],
  panelW,
)}
${panel(
  panelW + 10,
  `p99 at ${opts.rate} req/s offered, non-streaming (lower is better)`,
  'ms',
  contenders,
  [
    { label: 'upstream 0 ms', color: '#c0504d', value: get(0, 'non-streaming', p99) },
    {
      label: `upstream ${opts.latencyMs} ms`,
      color: '#e6a19f',
      value: get(opts.latencyMs, 'non-streaming', p99),
    },
  ],
  panelW,
)}
</svg>
`;
}
