// Herald's proxies in proxy mode (HERALD_AUTH=proxy): POST /api/herald/proxy/connect, /publish and /rpc, as
// configured by the scripts (scripts/herald-config.mjs). Off (404) in token mode, so the demo secret never opens them.
import { authMode } from '@/lib/auth';
import { proxy } from '@/lib/herald-proxy';

export const dynamic = 'force-dynamic';

const routes: Record<string, (request: Request) => Promise<Response>> = {
  connect: proxy.connect,
  publish: proxy.publish,
  rpc: proxy.rpc,
};

export async function POST(request: Request, { params }: { params: Promise<{ kind: string }> }): Promise<Response> {
  const { kind } = await params;
  const route = Object.hasOwn(routes, kind) ? routes[kind] : undefined;
  if (authMode() !== 'proxy')
    return Response.json(
      { error: 'not found: the proxy routes answer in proxy mode (HERALD_AUTH=proxy)' },
      { status: 404 },
    );
  if (!route)
    return Response.json({ error: `not found: no ${kind} proxy here (connect, publish, rpc)` }, { status: 404 });
  return route(request);
}
