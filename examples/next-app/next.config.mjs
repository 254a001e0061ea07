// Topology 1 (same origin, the default): the browser connects to /ws on this app's own origin and Next.js
// proxies the WebSocket upgrade to Herald. HERALD_INTERNAL_URL is where Herald listens as seen from the Next.js
// server; HERALD_INTERNAL_URL_2 (set by `npm run dev -- --cluster`) adds /ws-2 for a second Herald node, which the
// page uses for /?node=2. Rewrites are fixed when `next build` runs. HERALD_REWRITE=0 builds without them (direct and
// nginx topologies, or a custom server that attaches Herald itself: never both a rewrite and an attach on one path).
const heraldInternal = (process.env.HERALD_INTERNAL_URL ?? 'http://127.0.0.1:3002').replace(/\/$/, '');
const heraldInternal2 = process.env.HERALD_INTERNAL_URL_2?.replace(/\/$/, '');
const rewrite = process.env.HERALD_REWRITE !== '0';

/** @type {import('next').NextConfig} */
const config = {
  distDir: process.env.NEXT_DIST_DIR || '.next',
  // Native and driver packages stay plain Node requires on the server instead of being bundled.
  serverExternalPackages: ['better-sqlite3', '@prisma/adapter-better-sqlite3', '@prisma/adapter-pg', 'pg'],
  async rewrites() {
    if (!rewrite) return [];
    return [
      { source: '/ws', destination: `${heraldInternal}/ws` },
      ...(heraldInternal2 ? [{ source: '/ws-2', destination: `${heraldInternal2}/ws` }] : []),
    ];
  },
};

export default config;
