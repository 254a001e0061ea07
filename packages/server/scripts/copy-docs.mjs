#!/usr/bin/env node
// `prepack` of @herald/server: copies the repository's docs/*.md into packages/server/docs/ (gitignored) so that the
// tarball ships them and every message that names `@herald/server/docs/<file>.md` points at a file a package user can
// open in node_modules. Links out of docs/ are rewritten: to ../src/ (shipped) for the server's sources, else to the
// repository. Each file is replaced by a rename, so two packs at once (tests) never see a half-written page.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPOSITORY = 'https://github.com/herald-rt/herald/blob/main/';
const from = fileURLToPath(new URL('../../../docs/', import.meta.url));
const to = fileURLToPath(new URL('../docs/', import.meta.url));

if (!existsSync(from)) {
  console.error(`copy-docs: ${from} not found: pack @herald/server from the Herald repository`);
  process.exit(1);
}
mkdirSync(to, { recursive: true });
const names = readdirSync(from).filter((n) => n.endsWith('.md'));
for (const name of names) {
  const text = readFileSync(from + name, 'utf8').replace(/\]\(\.\.\/([^)]*)\)/g, (_, path) =>
    path.startsWith('packages/server/') ? `](../${path.slice('packages/server/'.length)})` : `](${REPOSITORY}${path})`,
  );
  const temp = fileURLToPath(new URL(`../.docs-${name}.${process.pid}.tmp`, import.meta.url)); // outside docs/: never packed
  writeFileSync(temp, text);
  renameSync(temp, to + name);
}
// Pages removed from docs/ leave the package too.
for (const name of readdirSync(to))
  if (!names.includes(name) && name.endsWith('.md')) rmSync(to + name, { force: true });
console.error(`copy-docs: ${names.length} files into packages/server/docs/`);
