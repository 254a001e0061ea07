// The publish path: the browser POSTs here; the text is validated on the server; the message row and its outbox row
// are written in one Prisma transaction; Herald publishes the outbox row to every subscriber of chat:lobby.
import { currentUser } from '@/lib/auth';
import { validateText, type ApiError } from '@/lib/chat';
import { listMessages, postMessage } from '@/lib/store';

export const dynamic = 'force-dynamic';

const unauthenticated = (): Response =>
  Response.json({ error: { code: 'unauthenticated', message: 'Sign in to chat.' } } satisfies ApiError, {
    status: 401,
  });

export async function POST(request: Request): Promise<Response> {
  const user = await currentUser();
  if (!user) return unauthenticated();
  const body: unknown = await request.json().catch(() => undefined);
  const checked = validateText((body as { text?: unknown } | undefined)?.text);
  if ('error' in checked) return Response.json(checked, { status: 400 });
  const message = await postMessage(user, checked.text);
  return Response.json({ message }, { status: 201 });
}

/** GET /api/messages?after=<id>: the stored messages after that id (the page catching up after a subscribe). */
export async function GET(request: Request): Promise<Response> {
  if (!(await currentUser())) return unauthenticated();
  const after = Number(new URL(request.url).searchParams.get('after') ?? '0');
  if (!Number.isSafeInteger(after) || after < 0)
    return Response.json({ error: { code: 'bad_request', message: 'after must be a message id' } } satisfies ApiError, {
      status: 400,
    });
  return Response.json({ messages: await listMessages({ after, limit: 500 }) });
}
