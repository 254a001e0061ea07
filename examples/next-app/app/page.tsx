import { getServerSession } from 'next-auth';
import { redirect } from 'next/navigation';
import { authOptions } from '@/lib/auth';
import { Chat } from './chat';

export const dynamic = 'force-dynamic';

/**
 * NEXT_PUBLIC_HERALD_URL is read here, on the server, at request time (through an alias so Next.js does not inline
 * its build-time value), so one build serves every topology. Unset means same origin: /ws on this site.
 */
function heraldUrl(): string | undefined {
  const env: Record<string, string | undefined> = process.env;
  return env['NEXT_PUBLIC_HERALD_URL'] || undefined;
}

export default async function Home() {
  const session = await getServerSession(authOptions);
  if (!session?.user?.name) redirect('/login');
  return <Chat user={session.user.name} heraldUrl={heraldUrl()} />;
}
