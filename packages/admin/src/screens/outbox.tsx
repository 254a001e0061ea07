import { useCallback, useEffect, useState } from 'react';
import { post } from '../api';

interface DeadLetter {
  id: string;
  method: string;
  payload: string;
  partition: string;
  created_at: string;
  failed_at: string;
  error: string;
}

interface OutboxState {
  enabled: boolean;
  target?: string;
  summary?: { pending: number; oldest_age_seconds: number | null; dead: number | null };
  dead?: DeadLetter[];
}

function prettyPayload(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** The outbox of the node serving the page: pending rows, the oldest one's age, and its dead letters. */
export function Outbox() {
  const [state, setState] = useState<OutboxState | undefined>();
  const [error, setError] = useState('');
  const [open, setOpen] = useState<string | undefined>();
  const [pending, setPending] = useState<{ action: 'retry' | 'delete'; id: string } | undefined>();
  const [message, setMessage] = useState('');
  const load = useCallback(() => {
    post<OutboxState>('outbox').then(setState, (e: Error) => setError(e.message));
  }, []);
  useEffect(load, [load]);

  const confirm = () => {
    if (!pending) return;
    const p = pending;
    setPending(undefined);
    post(`outbox/${p.action}`, { id: p.id }).then(
      () => {
        setMessage(
          p.action === 'retry' ? `dead letter ${p.id} moved back to the outbox` : `dead letter ${p.id} deleted`,
        );
        load();
        // The consumer takes a retried row within a poll interval: look again shortly.
        setTimeout(load, 1500);
      },
      (e: Error) => setMessage(`refused: ${e.message}`),
    );
  };

  if (error) return <p className="error">{error}</p>;
  if (!state) return <p className="muted">loading…</p>;
  if (!state.enabled) return <p className="muted">This node runs no outbox (HERALD_DATABASE_URL is not set).</p>;
  const s = state.summary!;
  return (
    <>
      <p data-testid="outbox-summary">
        <span className="mono">{state.target}</span>: {s.pending} pending row(s)
        {s.oldest_age_seconds !== null ? `, oldest ${s.oldest_age_seconds}s old` : ''}
        {s.dead !== null ? `, ${s.dead} dead letter(s)` : ', no dead-letter table (herald migrate creates it)'}{' '}
        <button type="button" onClick={load}>
          Reload
        </button>
      </p>
      {pending && (
        <div className="confirm" role="alertdialog" data-testid="confirm">
          {pending.action === 'retry'
            ? `Move dead letter ${pending.id} back into herald_outbox (it is published again, last of its partition)?`
            : `Delete dead letter ${pending.id} for good?`}{' '}
          <button type="button" onClick={confirm}>
            Confirm
          </button>{' '}
          <button type="button" onClick={() => setPending(undefined)}>
            Cancel
          </button>
        </div>
      )}
      {message && <p data-testid="outbox-message">{message}</p>}
      <table data-testid="dead-letters">
        <thead>
          <tr>
            <th>Id</th>
            <th>Partition</th>
            <th>Failed at</th>
            <th>Error</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(state.dead ?? []).map((d) => (
            <tr key={d.id} data-testid="dead-row" data-id={d.id}>
              <td className="mono">{d.id}</td>
              <td>{d.partition}</td>
              <td>{d.failed_at}</td>
              <td>
                {d.error}
                {open === d.id && <pre data-testid="dead-payload">{prettyPayload(d.payload)}</pre>}
              </td>
              <td>
                <button type="button" onClick={() => setOpen(open === d.id ? undefined : d.id)}>
                  {open === d.id ? 'Hide' : 'Inspect'}
                </button>{' '}
                <button type="button" onClick={() => setPending({ action: 'retry', id: d.id })}>
                  Retry…
                </button>{' '}
                <button type="button" onClick={() => setPending({ action: 'delete', id: d.id })}>
                  Delete…
                </button>
              </td>
            </tr>
          ))}
          {(state.dead ?? []).length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                no dead letters
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}
