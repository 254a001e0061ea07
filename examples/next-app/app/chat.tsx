'use client';
import { useState, type FormEvent } from 'react';
import {
  HeraldClientError,
  HeraldProvider,
  useChannel,
  useConnectionState,
  usePresence,
  usePublish,
} from '@herald/react';

const CHANNEL = 'chat:lobby';

interface Message {
  user: string;
  text: string;
}

export function Chat({ user, heraldUrl }: { user: string; heraldUrl: string | undefined }) {
  return (
    <HeraldProvider url={heraldUrl}>
      <Room user={user} />
    </HeraldProvider>
  );
}

function Room({ user }: { user: string }) {
  const state = useConnectionState();
  const members = usePresence(CHANNEL);
  const publish = usePublish();
  const [messages, setMessages] = useState<Message[]>([]);
  const [draft, setDraft] = useState('');
  const [sendError, setSendError] = useState<HeraldClientError>();

  // Publications missed while disconnected are recovered by the SDK and arrive here in order, each once.
  // `error` says why Herald refused the subscription (e.g. 102: the chat namespace is not configured), with the fix.
  const { error } = useChannel(CHANNEL, (pub) => {
    const data = pub.data as { text?: unknown };
    setMessages((prev) => [...prev, { user: pub.info?.user ?? 'server', text: String(data.text ?? '') }]);
  });

  async function send(e: FormEvent) {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setDraft('');
    // A refusal is a HeraldClientError (code, message, fix); the client also prints it once in the console.
    await publish(CHANNEL, { text }).then(
      () => setSendError(undefined),
      (err: unknown) => setSendError(err instanceof HeraldClientError ? err : undefined),
    );
  }

  return (
    <main>
      <header style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'baseline' }}>
        <h1>Herald chat</h1>
        <span>
          {user} ·{' '}
          <span data-testid="connection-state" data-state={state}>
            {state}
          </span>{' '}
          · <a href="/api/auth/signout">sign out</a>
        </span>
      </header>
      {[error, sendError].map(
        (e) =>
          e && (
            <p data-testid="herald-error" data-code={e.code} key={e.operation} role="alert" style={{ color: '#b00' }}>
              {e.message}. {e.fix}
            </p>
          ),
      )}
      <section style={{ display: 'grid', gridTemplateColumns: '1fr 180px', gap: '1rem' }}>
        <div>
          <ul
            data-testid="messages"
            style={{ listStyle: 'none', padding: 0, minHeight: 240, border: '1px solid #ddd', borderRadius: 6 }}
          >
            {messages.map((m, i) => (
              <li data-testid="message" key={i} style={{ padding: '4px 8px' }}>
                <strong>{m.user}</strong>: {m.text}
              </li>
            ))}
          </ul>
          <form onSubmit={send} style={{ display: 'flex', gap: 8 }}>
            <input
              data-testid="message-input"
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              placeholder="Say something"
              style={{ flex: 1 }}
            />
            <button data-testid="message-send" type="submit">
              Send
            </button>
          </form>
        </div>
        <aside>
          <h2 style={{ fontSize: '1rem' }}>Here now</h2>
          <ul data-testid="presence" style={{ listStyle: 'none', padding: 0 }}>
            {members.map((m) => (
              <li data-testid="presence-member" key={m.user}>
                {m.user}
              </li>
            ))}
          </ul>
        </aside>
      </section>
    </main>
  );
}
