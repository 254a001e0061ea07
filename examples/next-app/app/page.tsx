import { redirect } from 'next/navigation';
import { authMode, currentUser } from '@/lib/auth';
import { listMessages, listUsers } from '@/lib/store';
import { Chat } from './chat';

export const dynamic = 'force-dynamic';

/**
 * NEXT_PUBLIC_HERALD_URL is read here, on the server, at request time (through an alias so Next.js does not inline
 * its build-time value), so one build serves every topology. Unset means same origin: /ws on this site, or /ws-2
 * (the second Herald node, `npm run dev -- --cluster`) for `/?node=2`.
 */
function heraldUrl(node: string | undefined): string | undefined {
  const env: Record<string, string | undefined> = process.env;
  return env['NEXT_PUBLIC_HERALD_URL'] || (node === '2' ? '/ws-2' : undefined);
}

export default async function Home({ searchParams }: { searchParams: Promise<{ node?: string | string[] }> }) {
  const user = await currentUser();
  if (!user) redirect('/login');
  const { node } = await searchParams;
  // The stored history first; the page then subscribes and catches up from the last id it has (chat.tsx).
  const [messages, users] = await Promise.all([listMessages({ limit: 50 }), listUsers()]);
  return (
    <Chat
      user={user.id}
      auth={authMode()}
      heraldUrl={heraldUrl(typeof node === 'string' ? node : undefined)}
      initialMessages={messages}
      initialUsers={users}
    />
  );
}
