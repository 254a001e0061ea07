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

/** Why a message was refused: the `code` of a refused POST /api/messages, and `data-code` of the page's send-error. */
export type RefusalCode = 'empty' | 'too_long' | 'bad_request' | 'unauthenticated';

/** The body of a refused POST /api/messages. */
export interface ApiError {
  error: { code: RefusalCode; message: string };
}

/**
 * Proxy mode: the publish proxy refuses with the same validation as POST /api/messages, as a Herald error the
 * client's publish rejects with (HeraldClientError: `code`, and the message as `reason`). Codes 400-1999 are the
 * app's own (docs/proxy.md); these map them to and from the route's error codes.
 */
export const PUBLISH_REFUSALS: Readonly<Record<RefusalCode, number>> = {
  empty: 1400,
  bad_request: 1401,
  unauthenticated: 1403,
  too_long: 1413,
};

export function refusalCodeOf(code: number): RefusalCode | undefined {
  return (Object.keys(PUBLISH_REFUSALS) as RefusalCode[]).find((k) => PUBLISH_REFUSALS[k] === code);
}

/** How the page's connection is authenticated: a token from /api/herald/token, or Herald's connect proxy (lib/auth.ts). */
export type AuthMode = 'token' | 'proxy';

/** Proxy mode: what the rpc `online` answers (the users in chat:lobby's presence, sorted). */
export interface OnlineResult {
  users: string[];
}
export const ONLINE_RPC = 'online';

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
