// `npm run dev`: Next.js (next dev) on :3000 and Herald on :3002; the browser reaches Herald through the /ws rewrite.
import { runWithHerald } from './common.mjs';

await runWithHerald('dev');
