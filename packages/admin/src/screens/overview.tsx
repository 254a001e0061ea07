import { LineChart, fmt, type Series } from '../chart';
import type { Live, Point } from '../live';
import { useLive } from '../use-live';

function keyed(points: Point[], pick: (p: Point) => Record<string, number>, always: string[] = []): Series[] {
  const names = new Set<string>(always);
  for (const p of points) for (const k of Object.keys(pick(p))) names.add(k);
  return [...names].sort().map((name) => ({ name, values: points.map((p) => pick(p)[name] ?? 0) }));
}

function uptime(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function Overview(props: { live: Live }) {
  const live = useLive(props.live);
  const nodes = [...live.nodes.values()].sort((a, b) => a.node.name.localeCompare(b.node.name));
  const pts = live.points;
  const total = nodes.reduce((t, n) => t + n.node.num_clients, 0);
  const errorSeries = [
    ...keyed(pts, (p) => p.errors).map((s) => ({ ...s, name: `error ${s.name}` })),
    ...keyed(pts, (p) => p.disconnects).map((s) => ({ ...s, name: `close ${s.name}` })),
  ];
  return (
    <>
      <h1>
        Overview <span className="muted">{nodes.length} node(s), </span>
        <span data-testid="total-connections">{total}</span>
        <span className="muted"> connections</span>
      </h1>
      <table data-testid="nodes">
        <thead>
          <tr>
            <th>Node</th>
            <th>Version</th>
            <th>Uptime</th>
            <th>Connections</th>
            <th>Users</th>
            <th>Channels</th>
            <th>Subscriptions</th>
            <th>In/s</th>
            <th>Out/s</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.node.uid} data-testid="node-row" data-node={n.node.name}>
              <td>{n.node.name}</td>
              <td>{n.node.version}</td>
              <td>{uptime(n.node.uptime)}</td>
              <td data-testid="node-connections">{n.node.num_clients}</td>
              <td>{n.node.num_users}</td>
              <td>{n.node.num_channels}</td>
              <td>{n.node.num_subs}</td>
              <td>{fmt(n.messages_in)}</td>
              <td>{fmt(n.messages_out)}</td>
            </tr>
          ))}
          {nodes.length === 0 && (
            <tr>
              <td colSpan={9} className="muted">
                waiting for the first snapshot…
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <div className="charts">
        <LineChart
          title="Connections"
          testId="chart-connections"
          points={120}
          series={[{ name: 'connections', values: pts.map((p) => p.connections) }]}
        />
        <LineChart
          title="Messages per second"
          testId="chart-messages"
          points={120}
          series={[
            { name: 'in', values: pts.map((p) => p.messagesIn) },
            { name: 'out', values: pts.map((p) => p.messagesOut) },
          ]}
        />
        <LineChart
          title="Publications per second, by source"
          testId="chart-publications"
          points={120}
          series={keyed(pts, (p) => p.publications, ['api', 'server', 'outbox', 'client'])}
        />
        <LineChart
          title="Errors and disconnects per second, by code"
          testId="chart-errors"
          points={120}
          series={errorSeries}
        />
      </div>
    </>
  );
}
