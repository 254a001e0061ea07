import type { Live } from '../live';
import { useLive } from '../use-live';
import { Outbox } from './outbox';

/** Outbox and webhook health from each node's snapshot (the herald_outbox_* and herald_webhook_* metrics). */
export function Integrations(props: { live: Live }) {
  const live = useLive(props.live);
  const nodes = [...live.nodes.values()].sort((a, b) => a.node.name.localeCompare(b.node.name));
  const names = [...new Set(nodes.flatMap((n) => Object.keys(n.integrations)))].sort();
  return (
    <>
      <h1>Outbox and webhooks</h1>
      <h2>Outbox of this node</h2>
      <Outbox />
      <h2>Metrics of every node</h2>
      {names.length === 0 ? (
        <p className="muted">No node runs an outbox or sends webhooks.</p>
      ) : (
        <table data-testid="integrations">
          <thead>
            <tr>
              <th>Metric</th>
              {nodes.map((n) => (
                <th key={n.node.uid}>{n.node.name}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {names.map((name) => (
              <tr key={name}>
                <td className="mono">{name}</td>
                {nodes.map((n) => (
                  <td key={n.node.uid}>{n.integrations[name] ?? ''}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
