// What the page, the routes and Herald's publications share: no server-only imports here (the chat component uses it).

/** The one chat room. Its namespace, `chat`, is configured in herald.config.json. */
export const CHANNEL = 'chat:lobby';
/** Longest message the server accepts, in characters after trimming. */
export const MAX_MESSAGE_LENGTH = 500;

export interface ChatMessage {
  /** The database id: the page merges stored history and live publications by it (each shown once). */
  id: number;
  user: string;
  text: string;
  /** ISO-8601. */
  createdAt: string;
}

export interface ChatUser {
  id: string;
  name: string;
  /** ISO-8601: when the user's last connection to Herald ended (Herald's disconnect webhook); null if never. */
  lastSeen: string | null;
}

/** A publication on CHANNEL: written to herald_outbox by the app, published by Herald. */
export type ChatEvent = { type: 'message'; message: ChatMessage } | { type: 'last_seen'; user: ChatUser };

/** The body of a refused POST /api/messages. */
export interface ApiError {
  error: { code: 'empty' | 'too_long' | 'bad_request' | 'unauthenticated'; message: string };
}

/** Server-side validation of a message's text (the route runs it; the page shows the message it returns). */
export function validateText(input: unknown): { text: string } | ApiError {
  if (typeof input !== 'string') return { error: { code: 'bad_request', message: 'Send JSON: { "text": "…" }.' } };
  const text = input.trim();
  if (text === '') return { error: { code: 'empty', message: 'Write something before sending.' } };
  const length = [...text].length;
  if (length > MAX_MESSAGE_LENGTH)
    return {
      error: {
        code: 'too_long',
        message: `Messages are at most ${MAX_MESSAGE_LENGTH} characters; this one has ${length}.`,
      },
    };
  return { text };
}
