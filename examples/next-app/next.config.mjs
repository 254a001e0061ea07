// Topology 1 (same origin, the default): the browser connects to /ws on this app's own origin and Next.js
// proxies the WebSocket upgrade to Herald. HERALD_INTERNAL_URL is where Herald listens as seen from the Next.js
// server. Rewrites are fixed when `next build` runs. HERALD_REWRITE=0 builds without the rewrite (direct and
// nginx topologies, or a custom server that attaches Herald itself: never both a rewrite and an attach on one path).
const heraldInternal = (process.env.HERALD_INTERNAL_URL ?? 'http://127.0.0.1:3002').replace(/\/$/, '');
const rewrite = process.env.HERALD_REWRITE !== '0';

/** @type {import('next').NextConfig} */
const config = {
  distDir: process.env.NEXT_DIST_DIR || '.next',
  async rewrites() {
    return rewrite ? [{ source: '/ws', destination: `${heraldInternal}/ws` }] : [];
  },
};

export default config;
