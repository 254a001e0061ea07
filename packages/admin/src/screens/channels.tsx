import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { call } from '../api';

export function Channels() {
  const [pattern, setPattern] = useState('*');
  const [rows, setRows] = useState<[string, number][]>([]);
  const [error, setError] = useState('');
  const search = useCallback((p: string) => {
    setError('');
    call<{ channels: Record<string, { num_clients: number }> }>('channels', { pattern: p }).then(
      (r) =>
        setRows(
          Object.entries(r.channels)
            .map(([name, c]): [string, number] => [name, c.num_clients])
            .filter(([name]) => !name.startsWith('$admin:'))
            .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
        ),
      (e: Error) => setError(e.message),
    );
  }, []);
  useEffect(() => search('*'), [search]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    search(pattern);
  };
  return (
    <>
      <h1>Channels</h1>
      <form className="row" onSubmit={submit}>
        <input
          aria-label="pattern"
          name="pattern"
          value={pattern}
          onChange={(e) => setPattern(e.target.value)}
          placeholder="chat:*"
        />
        <button type="submit">Search</button>
        <span className="muted">* matches any run of characters; most subscribers first</span>
      </form>
      {error && <p className="error">{error}</p>}
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          const ch = new FormData(e.currentTarget).get('open');
          if (typeof ch === 'string' && ch) location.hash = `#/channels/${encodeURIComponent(ch)}`;
        }}
      >
        <input name="open" aria-label="channel name" placeholder="open a channel by name" />
        <button type="submit">Open</button>
      </form>
      <table data-testid="channels">
        <thead>
          <tr>
            <th>Channel</th>
            <th>Subscribers (this node)</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([name, n]) => (
            <tr key={name} data-testid="channel-row">
              <td>
                <a href={`#/channels/${encodeURIComponent(name)}`}>{name}</a>
              </td>
              <td>{n}</td>
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={2} className="muted">
                no channel with subscribers matches
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}
