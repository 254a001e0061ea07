import { useState, type FormEvent } from 'react';
import { call, post, type Connection } from '../api';

type Pending =
  | { kind: 'disconnect'; user: string; client?: string }
  | { kind: 'unsubscribe'; user: string; client: string; channel: string };

const CODES: [number, string][] = [
  [3503, 'force disconnect (no reconnect)'],
  [3011, 'force reconnect'],
  [3500, 'invalid token (no reconnect)'],
  [4000, 'app-defined 4000 (reconnect)'],
  [4500, 'app-defined 4500 (no reconnect)'],
];

function since(ms: number): string {
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function Users() {
  const [user, setUser] = useState('');
  const [searched, setSearched] = useState<string | undefined>();
  const [conns, setConns] = useState<Connection[]>([]);
  const [node, setNode] = useState('');
  const [pending, setPending] = useState<Pending | undefined>();
  const [code, setCode] = useState(3503);
  const [reason, setReason] = useState('disconnected by an operator');
  const [message, setMessage] = useState('');

  const find = (u: string) => {
    setMessage('');
    post<{ connections: Connection[]; node: string }>('connections', { user: u }).then(
      (r) => {
        setConns(r.connections);
        setNode(r.node);
        setSearched(u);
      },
      (e: Error) => setMessage(e.message),
    );
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    find(user);
  };
  const confirm = () => {
    if (!pending) return;
    const p = pending;
    setPending(undefined);
    const done = (what: string) => {
      setMessage(what);
      setTimeout(() => find(searched ?? ''), 300);
    };
    const failed = (e: Error) => setMessage(`refused: ${e.message}`);
    if (p.kind === 'disconnect')
      call('disconnect', { user: p.user, ...(p.client ? { client: p.client } : {}), code, reason }).then(
        () => done(`disconnected ${p.client ? `client ${p.client}` : `every connection of ${p.user}`} with ${code}`),
        failed,
      );
    else
      call('unsubscribe', { user: p.user, client: p.client, channel: p.channel }).then(
        () => done(`unsubscribed ${p.user} from ${p.channel}`),
        failed,
      );
  };

  return (
    <>
      <h1>Users and connections</h1>
      <form className="row" onSubmit={submit}>
        <input
          name="user"
          aria-label="user id"
          value={user}
          onChange={(e) => setUser(e.target.value)}
          placeholder="user id (empty: everyone on this node)"
        />
        <button type="submit">Find</button>
        {searched && searched !== '' && (
          <button type="button" onClick={() => setPending({ kind: 'disconnect', user: searched })}>
            Disconnect {searched} everywhere…
          </button>
        )}
      </form>
      <div className="row">
        <label>
          Close code{' '}
          <select aria-label="close code" value={code} onChange={(e) => setCode(Number(e.target.value))}>
            {CODES.map(([c, label]) => (
              <option key={c} value={c}>
                {c} {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Reason <input aria-label="reason" value={reason} onChange={(e) => setReason(e.target.value)} />
        </label>
      </div>
      {pending && (
        <div className="confirm" role="alertdialog" data-testid="confirm">
          {pending.kind === 'disconnect'
            ? `Disconnect ${pending.client ? `client ${pending.client} of ` : 'every connection of '}${pending.user} with code ${code} (${reason})?`
            : `Unsubscribe ${pending.user} (client ${pending.client}) from ${pending.channel}?`}{' '}
          <button type="button" onClick={confirm}>
            Confirm
          </button>{' '}
          <button type="button" onClick={() => setPending(undefined)}>
            Cancel
          </button>
        </div>
      )}
      {message && <p data-testid="users-message">{message}</p>}
      {searched !== undefined && (
        <p className="muted">
          Connections on node {node} (the node this page is served by; a disconnect reaches every node).
        </p>
      )}
      <table data-testid="connections">
        <thead>
          <tr>
            <th>User</th>
            <th>Client</th>
            <th>Node</th>
            <th>Transport</th>
            <th>Connected for</th>
            <th>Subscriptions</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {conns.map((c) => (
            <tr key={c.client} data-testid="connection-row">
              <td>{c.user || <span className="muted">anonymous</span>}</td>
              <td className="mono">{c.client}</td>
              <td>{c.node}</td>
              <td>
                {c.transport}/{c.encoding}
              </td>
              <td>{since(c.connected_at)}</td>
              <td>
                {c.subscriptions.map((ch) => (
                  <button
                    type="button"
                    className="chip"
                    key={ch}
                    title="unsubscribe…"
                    onClick={() => setPending({ kind: 'unsubscribe', user: c.user, client: c.client, channel: ch })}
                  >
                    {ch} ×
                  </button>
                ))}
              </td>
              <td>
                <button
                  type="button"
                  onClick={() => setPending({ kind: 'disconnect', user: c.user, client: c.client })}
                >
                  Disconnect…
                </button>
              </td>
            </tr>
          ))}
          {searched !== undefined && conns.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">
                no connection on this node
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}
