// Reports the built UI's size (every file gzipped, as a browser downloads it) and fails past the budget.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 250 * 1024;
const out = fileURLToPath(new URL('../../server/admin-ui', import.meta.url));

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

let raw = 0;
let gz = 0;
for (const f of files(out)) {
  const body = readFileSync(f);
  const g = gzipSync(body, { level: 9 }).length;
  raw += body.length;
  gz += g;
  console.log(
    `  ${relative(out, f).padEnd(40)} ${(body.length / 1024).toFixed(1).padStart(8)} KB  ${(g / 1024).toFixed(1).padStart(7)} KB gzip`,
  );
}
console.log(
  `admin UI: ${(raw / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB) -> ${relative(process.cwd(), out)}`,
);
if (gz > BUDGET) {
  console.error(`the admin UI is over its budget of ${BUDGET / 1024} KB gzipped: trim a dependency`);
  process.exit(1);
}
