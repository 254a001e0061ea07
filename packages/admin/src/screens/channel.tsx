import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { call, type ClientEntry, type Publication } from '../api';
import type { Live } from '../live';
import { useLive } from '../use-live';

interface TailItem {
  at: number;
  offset: number | undefined;
  data: unknown;
}

function pretty(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

export function ChannelPage(props: { live: Live; channel: string }) {
  const { channel } = props;
  const live = useLive(props.live);
  const [presence, setPresence] = useState<ClientEntry[] | string>([]);
  const [history, setHistory] = useState<{ pubs: Publication[]; offset: number; epoch: string } | string>('');
  const [tail, setTail] = useState<TailItem[]>([]);
  const [draft, setDraft] = useState('{\n  "text": "hello"\n}');
  const [sent, setSent] = useState('');

  const load = useCallback(() => {
    call<{ presence: Record<string, ClientEntry> }>('presence', { channel }).then(
      (r) => setPresence(Object.values(r.presence)),
      (e: Error) => setPresence(e.message),
    );
    call<{ publications?: Publication[]; offset?: number; epoch?: string }>('history', {
      channel,
      limit: 50,
      reverse: true,
    }).then(
      (r) => setHistory({ pubs: r.publications ?? [], offset: r.offset ?? 0, epoch: r.epoch ?? '' }),
      (e: Error) => setHistory(e.message),
    );
  }, [channel]);

  useEffect(() => {
    load();
    setTail([]);
    return live.tail(channel, (ctx) =>
      setTail((t) => [{ at: Date.now(), offset: ctx.offset, data: ctx.data as unknown }, ...t].slice(0, 200)),
    );
  }, [channel, live, load]);

  let parsed: { ok: true; value: unknown } | { ok: false; error: string };
  try {
    parsed = { ok: true, value: JSON.parse(draft) as unknown };
  } catch (e) {
    parsed = { ok: false, error: (e as Error).message };
  }

  const publish = (e: FormEvent) => {
    e.preventDefault();
    if (!parsed.ok) return;
    setSent('');
    call<{ offset?: number; epoch?: string }>('publish', { channel, data: parsed.value }).then(
      (r) => {
        setSent(r.offset ? `published at offset ${r.offset}` : 'published');
        load();
      },
      (err: Error) => setSent(`refused: ${err.message}`),
    );
  };

  return (
    <>
      <h1>
        <a href="#/channels">Channels</a> / <span data-testid="channel-name">{channel}</span>
      </h1>
      <div className="grid2">
        <section>
          <h2>Publish</h2>
          <form onSubmit={publish}>
            <textarea
              aria-label="publication data (JSON)"
              name="data"
              rows={6}
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              className={parsed.ok ? '' : 'invalid'}
            />
            <div className="row">
              <button type="submit" disabled={!parsed.ok}>
                Publish
              </button>
              {!parsed.ok && (
                <span className="error" data-testid="json-error">
                  not JSON: {parsed.error}
                </span>
              )}
              {sent && <span data-testid="publish-result">{sent}</span>}
            </div>
          </form>
          <h2>Presence</h2>
          {typeof presence === 'string' ? (
            <p className="muted">{presence}</p>
          ) : (
            <table data-testid="presence">
              <thead>
                <tr>
                  <th>User</th>
                  <th>Client</th>
                  <th>Info</th>
                </tr>
              </thead>
              <tbody>
                {presence.map((p) => (
                  <tr key={p.client}>
                    <td>{p.user}</td>
                    <td className="mono">{p.client}</td>
                    <td className="mono">{p.conn_info === undefined ? '' : JSON.stringify(p.conn_info)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section>
          <h2>
            Live tail{' '}
            <span className="muted" data-testid="tail-status">
              {live.serverSubs.has(channel) ? 'live' : 'starting…'}
            </span>
          </h2>
          <ol className="pubs" data-testid="tail">
            {tail.map((t, i) => (
              <li key={`${t.at}-${i}`} data-testid="tail-item">
                <span className="muted">
                  {new Date(t.at).toLocaleTimeString()}
                  {t.offset ? ` · offset ${t.offset}` : ''}
                </span>
                <pre>{pretty(t.data)}</pre>
              </li>
            ))}
            {tail.length === 0 && <li className="muted">waiting for publications…</li>}
          </ol>
          <h2>
            History <span className="muted">(newest first)</span>{' '}
            <button type="button" onClick={load}>
              Reload
            </button>
          </h2>
          {typeof history === 'string' ? (
            <p className="muted">{history}</p>
          ) : (
            <>
              <p className="muted" data-testid="history-position">
                top offset {history.offset}, epoch {history.epoch}
              </p>
              <ol className="pubs" data-testid="history">
                {history.pubs.map((p, i) => (
                  <li key={p.offset ?? i} data-testid="history-item">
                    <span className="muted">offset {p.offset ?? '?'}</span>
                    <pre>{pretty(p.data)}</pre>
                  </li>
                ))}
              </ol>
            </>
          )}
        </section>
      </div>
    </>
  );
}
