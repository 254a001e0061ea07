'use client';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { HeraldClientError } from '@herald/client';
import { HeraldProvider, useChannel, useConnectionState, useHerald, usePresence } from '@herald/react';
import {
  CHANNEL,
  MAX_MESSAGE_LENGTH,
  ONLINE_RPC,
  refusalCodeOf,
  type ApiError,
  type AuthMode,
  type ChatEvent,
  type ChatMessage,
  type ChatUser,
  type OnlineResult,
} from '@/lib/chat';

interface ChatProps {
  user: string;
  /** 'proxy': connect without a token (Herald's connect proxy reads the session cookie) and publish through Herald. */
  auth: AuthMode;
  heraldUrl: string | undefined;
  /** The stored history, read from the database when the page was rendered. */
  initialMessages: ChatMessage[];
  initialUsers: ChatUser[];
}

export function Chat({ heraldUrl, ...room }: ChatProps) {
  return (
    // tokenUrl false: no token route at all; the connect carries no token and Herald asks the connect proxy.
    <HeraldProvider url={heraldUrl} {...(room.auth === 'proxy' ? { tokenUrl: false } : {})}>
      <Room {...room} />
    </HeraldProvider>
  );
}

/**
 * The messages on the page: the stored history, then live publications, each once. Messages are merged by their
 * database id. Whenever the subscription starts without Herald recovering what was missed (the first subscribe after
 * the page load, or Herald restarted), the page asks the database for everything after the last id it got in order,
 * so a message stored between the page's render and the subscription (or while Herald was down) is neither lost nor
 * shown twice. When Herald recovers a reconnect itself (`recovered`), nothing is fetched.
 */
function useRoom(initialMessages: ChatMessage[], initialUsers: ChatUser[]) {
  const client = useHerald();
  const [messages, setMessages] = useState(initialMessages);
  const [users, setUsers] = useState(() => new Map(initialUsers.map((u) => [u.id, u])));
  // The highest id up to which this page has every message: history, catch-up and live publications move it; the
  // page's own POST answers do not (another user's message may come before it).
  const synced = useRef(initialMessages.reduce((max, m) => Math.max(max, m.id), 0));

  const merge = useCallback((incoming: ChatMessage[], inOrder: boolean) => {
    if (inOrder) for (const m of incoming) synced.current = Math.max(synced.current, m.id);
    setMessages((prev) => {
      const known = new Set(prev.map((m) => m.id));
      const fresh = incoming.filter((m) => !known.has(m.id));
      return fresh.length === 0 ? prev : [...prev, ...fresh].sort((a, b) => a.id - b.id);
    });
  }, []);

  const seen = useCallback((u: ChatUser) => {
    setUsers((prev) => {
      const old = prev.get(u.id);
      if (old?.lastSeen && u.lastSeen && old.lastSeen >= u.lastSeen) return prev;
      return new Map(prev).set(u.id, u);
    });
  }, []);

  const { error } = useChannel(CHANNEL, (pub) => {
    const event = pub.data as ChatEvent;
    if (event.type === 'message') merge([event.message], true);
    else if (event.type === 'last_seen') seen(event.user);
  });

  useEffect(() => {
    if (!client) return;
    const { sub, release } = client.retain(CHANNEL);
    let alive = true;
    const catchUp = async () => {
      const res = await fetch(`/api/messages?after=${synced.current}`, { cache: 'no-store' });
      if (!res.ok || !alive) return;
      merge(((await res.json()) as { messages: ChatMessage[] }).messages, true);
    };
    const onSubscribed = (ctx: { recovered: boolean }) => {
      if (!ctx.recovered) void catchUp().catch(() => {});
    };
    sub.on('subscribed', onSubscribed);
    if (sub.state === 'subscribed') void catchUp().catch(() => {});
    return () => {
      alive = false;
      sub.off('subscribed', onSubscribed);
      release();
    };
  }, [client, merge]);

  return { messages, users, error, merge };
}

/** What the page shows under the input when a message is refused. */
interface SendError {
  code: string;
  message: string;
}

/**
 * Proxy mode: the message is published through Herald; its publish proxy validates and stores it, and Herald
 * delivers the stored message (with its id) to every subscriber, this page included. A refusal rejects with a
 * HeraldClientError: the proxy's code (lib/chat.ts, PUBLISH_REFUSALS) and its message as `reason`.
 */
async function publishThroughHerald(client: ReturnType<typeof useHerald>, text: string): Promise<SendError | null> {
  if (!client) return { code: 'unavailable', message: 'Not connected to Herald yet.' };
  try {
    await client.publish(CHANNEL, { text });
    return null;
  } catch (err) {
    if (err instanceof HeraldClientError) {
      const code = refusalCodeOf(err.code);
      return code ? { code, message: err.reason } : { code: String(err.code), message: err.message };
    }
    return { code: 'unavailable', message: `Sending failed: ${String(err)}` };
  }
}

/** The app's route: the server validates, stores the message and its outbox row; Herald publishes it. */
async function postToApp(text: string): Promise<SendError | ChatMessage> {
  try {
    const res = await fetch('/api/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    const body = (await res.json().catch(() => ({}))) as Partial<ApiError> & { message?: ChatMessage };
    if (res.ok && body.message) return body.message;
    return body.error ?? { code: 'bad_request', message: `Sending failed (HTTP ${res.status}).` };
  } catch {
    return { code: 'bad_request', message: 'Sending failed: the app could not be reached.' };
  }
}

/** Proxy mode: the rpc `online`, answered by the app's rpc proxy from Herald's presence. */
function OnlineRpc() {
  const client = useHerald();
  const [online, setOnline] = useState<{ users: string[] } | { error: string }>();
  async function ask() {
    if (!client) return;
    try {
      const { data } = await client.centrifuge.rpc(ONLINE_RPC, {});
      setOnline({ users: (data as OnlineResult).users });
    } catch (err) {
      setOnline({ error: err instanceof Error ? err.message : `RPC failed: ${JSON.stringify(err)}` });
    }
  }
  return (
    <div className="online-rpc">
      <button type="button" data-testid="online-ask" onClick={() => void ask()} disabled={!client}>
        Who is online?
      </button>
      {online && 'users' in online && (
        <p data-testid="online-result" data-users={online.users.join(',')} aria-live="polite">
          Online (rpc {ONLINE_RPC}): {online.users.join(', ') || 'nobody'}
        </p>
      )}
      {online && 'error' in online && (
        <p className="error" data-testid="online-error" role="alert">
          {online.error}
        </p>
      )}
    </div>
  );
}

function Room({ user, auth, initialMessages, initialUsers }: Omit<ChatProps, 'heraldUrl'>) {
  const client = useHerald();
  const state = useConnectionState();
  const members = usePresence(CHANNEL);
  const { messages, users, error, merge } = useRoom(initialMessages, initialUsers);
  const [draft, setDraft] = useState('');
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState<SendError>();
  const list = useRef<HTMLOListElement>(null);

  useEffect(() => {
    list.current?.lastElementChild?.scrollIntoView({ block: 'end' });
  }, [messages.length]);

  async function send(e: FormEvent) {
    e.preventDefault();
    setSending(true);
    try {
      // The server validates (empty, too long) and refuses with a message to show; no check is skipped here.
      if (auth === 'proxy') {
        const refused = await publishThroughHerald(client, draft);
        if (!refused) setDraft('');
        setSendError(refused ?? undefined);
        return;
      }
      const result = await postToApp(draft);
      if ('id' in result) {
        setDraft('');
        setSendError(undefined);
        // Shown at once, stored already; the same message from Herald is merged by id.
        merge([result], false);
      } else {
        setSendError(result);
      }
    } finally {
      setSending(false);
    }
  }

  const online = new Set(members.map((m) => m.user));
  const people = [...new Set([...users.keys(), ...online])].sort();
  const length = [...draft.trim()].length;

  return (
    <div className="app">
      <header className="topbar">
        <h1>Herald chat</h1>
        <div className="me">
          <span className="visually-hidden">Connection: </span>
          <span className="state" data-testid="connection-state" data-state={state}>
            {state}
          </span>
          <span className="who">{user}</span>
          <span className="mode" data-testid="auth-mode" data-mode={auth}>
            {auth === 'proxy' ? 'connect proxy' : 'token'}
          </span>
          <a href="/api/auth/signout">Sign out</a>
        </div>
      </header>
      {error && (
        <p className="banner" data-testid="herald-error" data-code={error.code} role="alert">
          {error.message}. {error.fix}
        </p>
      )}
      <main className="room">
        <section className="conversation" aria-labelledby="room-title">
          <h2 id="room-title" className="visually-hidden">
            Messages in #lobby
          </h2>
          <ol
            className="messages"
            data-testid="messages"
            ref={list}
            role="log"
            aria-live="polite"
            aria-label="Messages"
          >
            {messages.length === 0 && <li className="empty">No messages yet. Say hello.</li>}
            {messages.map((m) => (
              <li className="message" data-testid="message" data-id={m.id} data-user={m.user} key={m.id}>
                <span className="avatar" aria-hidden="true">
                  {m.user.slice(0, 1).toUpperCase()}
                </span>
                <div>
                  <p className="meta">
                    <strong>{m.user}</strong>{' '}
                    <time dateTime={m.createdAt} suppressHydrationWarning>
                      {new Date(m.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
                    </time>
                  </p>
                  <p className="text" data-testid="message-text">
                    {m.text}
                  </p>
                </div>
              </li>
            ))}
          </ol>
          <form className="composer" onSubmit={send} aria-label="Send a message" noValidate>
            <label htmlFor="message-input" className="visually-hidden">
              Message
            </label>
            <input
              id="message-input"
              data-testid="message-input"
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              placeholder="Write a message"
              autoComplete="off"
              aria-invalid={sendError ? true : undefined}
              aria-describedby={sendError ? 'send-error' : undefined}
            />
            <button data-testid="message-send" type="submit" disabled={sending}>
              Send
            </button>
          </form>
          {length > MAX_MESSAGE_LENGTH * 0.8 && (
            <p className="counter" aria-live="polite">
              {length} / {MAX_MESSAGE_LENGTH}
            </p>
          )}
          {sendError && (
            <p className="error" id="send-error" data-testid="send-error" data-code={sendError.code} role="alert">
              {sendError.message}
            </p>
          )}
        </section>
        <aside className="people" aria-labelledby="people-title">
          <h2 id="people-title">People</h2>
          {auth === 'proxy' && <OnlineRpc />}
          <ul data-testid="presence">
            {people.map((id) =>
              online.has(id) ? (
                <li key={id} data-testid="presence-member" data-user={id}>
                  <span className="dot online" aria-hidden="true" />
                  <span className="name">{id}</span>
                  <span className="status">online</span>
                </li>
              ) : (
                <li key={id} data-testid="offline-member" data-user={id}>
                  <span className="dot" aria-hidden="true" />
                  <span className="name">{id}</span>
                  <LastSeen at={users.get(id)?.lastSeen ?? null} />
                </li>
              ),
            )}
          </ul>
        </aside>
      </main>
    </div>
  );
}

function LastSeen({ at }: { at: string | null }) {
  if (!at) return <span className="status">offline</span>;
  const d = new Date(at);
  const sameDay = d.toDateString() === new Date().toDateString();
  const when = sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return (
    <span className="status" data-testid="last-seen">
      last seen{' '}
      <time dateTime={at} suppressHydrationWarning>
        {when}
      </time>
    </span>
  );
}
