// The database side of the chat: every write that others must see goes into herald_outbox in the same transaction,
// and Herald (`herald serve` with HERALD_DATABASE_URL) publishes it. Nothing here talks to Herald directly.
import type { Prisma } from './generated/sqlite/client';
import { getDb, type Tx } from './db';
import { CHANNEL, type ChatEvent, type ChatMessage, type ChatUser } from './chat';

const toMessage = (m: { id: number; userId: string; text: string; createdAt: Date }): ChatMessage => ({
  id: m.id,
  user: m.userId,
  text: m.text,
  createdAt: m.createdAt.toISOString(),
});

const toUser = (u: { id: string; name: string; lastSeen: Date | null }): ChatUser => ({
  id: u.id,
  name: u.name,
  lastSeen: u.lastSeen?.toISOString() ?? null,
});

/** The outbox row: Herald publishes `payload` (the body of its publish API) to every subscriber of the channel. */
function publish(tx: Tx, event: ChatEvent, idempotencyKey: string) {
  return tx.heraldOutbox.create({
    // ChatEvent is plain JSON (interfaces lack the index signature Prisma's JSON input type asks for).
    data: {
      payload: { channel: CHANNEL, data: event as unknown as Prisma.InputJsonObject, idempotency_key: idempotencyKey },
    },
  });
}

/** Stores the message and its publication together: both commit, or neither does. */
export async function postMessage(user: { id: string; name: string }, text: string): Promise<ChatMessage> {
  return getDb().$transaction(async (tx) => {
    await tx.user.upsert({ where: { id: user.id }, create: { id: user.id, name: user.name }, update: {} });
    const message = toMessage(await tx.message.create({ data: { userId: user.id, text } }));
    await publish(tx, { type: 'message', message }, `chat-message-${message.id}`);
    return message;
  });
}

/**
 * Proxy mode: the publish proxy stores the message before it answers "allow", and Herald publishes the answer itself
 * (no outbox row: the publication is Herald's reply to the browser's publish). See the README's trade-off.
 */
export async function storeMessage(userId: string, text: string): Promise<ChatMessage> {
  return getDb().$transaction(async (tx) => {
    await tx.user.upsert({ where: { id: userId }, create: { id: userId, name: userId }, update: {} });
    return toMessage(await tx.message.create({ data: { userId, text } }));
  });
}

/** The latest `limit` messages, oldest first; with `after`, the messages after that id (a page catching up). */
export async function listMessages({ after, limit = 50 }: { after?: number; limit?: number } = {}) {
  if (after !== undefined) {
    const rows = await getDb().message.findMany({ where: { id: { gt: after } }, orderBy: { id: 'asc' }, take: limit });
    return rows.map(toMessage);
  }
  const rows = await getDb().message.findMany({ orderBy: { id: 'desc' }, take: limit });
  return rows.reverse().map(toMessage);
}

export async function listUsers(): Promise<ChatUser[]> {
  return (await getDb().user.findMany({ orderBy: { id: 'asc' } })).map(toUser);
}

/** NextAuth's signIn event: the user exists in the database from their first sign-in on. */
export async function upsertUser(id: string, name: string): Promise<void> {
  await getDb().user.upsert({ where: { id }, create: { id, name }, update: { name } });
}

/**
 * Herald's disconnect webhook: the user's connection ended at `at`. Webhooks come at least once and in no fixed
 * order, so only a later time moves lastSeen (a repeated or older event changes nothing and publishes nothing).
 */
export async function markLastSeen(userId: string, at: Date): Promise<boolean> {
  return getDb().$transaction(async (tx) => {
    const user = await tx.user.findUnique({ where: { id: userId } });
    if (!user || (user.lastSeen && user.lastSeen >= at)) return false;
    const updated = toUser(await tx.user.update({ where: { id: userId }, data: { lastSeen: at } }));
    await publish(tx, { type: 'last_seen', user: updated }, `chat-last-seen-${userId}-${at.getTime()}`);
    return true;
  });
}
