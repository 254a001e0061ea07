import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { post } from './api';
import { Live } from './live';
import { Login } from './screens/login';
import { Overview } from './screens/overview';
import { Channels } from './screens/channels';
import { ChannelPage } from './screens/channel';
import { Users } from './screens/users';
import { Integrations } from './screens/integrations';
import { useLive } from './use-live';
import './style.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#/, '') || '/';
}

function Shell(props: { live: Live; insecure: boolean; onLogout: () => void }) {
  const route = useHash();
  const live = useLive(props.live);
  const nav = [
    ['/', 'Overview'],
    ['/channels', 'Channels'],
    ['/users', 'Users'],
    ['/integrations', 'Outbox & webhooks'],
  ] as const;
  let screen;
  if (route.startsWith('/channels/'))
    screen = <ChannelPage live={props.live} channel={decodeURIComponent(route.slice(10))} />;
  else if (route === '/channels') screen = <Channels />;
  else if (route === '/users') screen = <Users />;
  else if (route === '/integrations') screen = <Integrations live={props.live} />;
  else screen = <Overview live={props.live} />;
  return (
    <div className="shell">
      <header>
        <strong>Herald</strong>
        <nav>
          {nav.map(([href, label]) => (
            <a
              key={href}
              href={`#${href}`}
              className={(href === '/' ? route === '/' : route.startsWith(href)) ? 'on' : ''}
            >
              {label}
            </a>
          ))}
        </nav>
        <span className={`state ${live.state}`} data-testid="live-state">
          {live.state}
        </span>
        {props.insecure ? (
          <span className="warn">insecure: no password</span>
        ) : (
          <button type="button" onClick={props.onLogout}>
            Log out
          </button>
        )}
      </header>
      <main>{screen}</main>
    </div>
  );
}

function App() {
  const [session, setSession] = useState<{ authenticated: boolean; insecure: boolean } | undefined>();
  const [live, setLive] = useState<Live | undefined>();
  const [error, setError] = useState('');

  useEffect(() => {
    post<{ authenticated: boolean; insecure: boolean }>('session').then(setSession, (e: Error) => setError(e.message));
  }, []);

  useEffect(() => {
    if (!session?.authenticated) return;
    let l: Live | undefined;
    let cancelled = false;
    post<{ path: string }>('token').then(
      (t) => {
        if (cancelled) return;
        l = new Live(t.path);
        setLive(l);
      },
      (e: Error) => setError(e.message),
    );
    return () => {
      cancelled = true;
      l?.close();
    };
  }, [session?.authenticated]);

  if (error) return <p className="error">{error}</p>;
  if (!session) return <p className="muted">loading…</p>;
  if (!session.authenticated) return <Login onLoggedIn={() => setSession({ ...session, authenticated: true })} />;
  if (!live) return <p className="muted">connecting…</p>;
  return (
    <Shell
      live={live}
      insecure={session.insecure}
      onLogout={() => {
        post('logout')
          .catch(() => {})
          .finally(() => {
            setLive(undefined);
            setSession({ ...session, authenticated: false });
          });
      }}
    />
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
