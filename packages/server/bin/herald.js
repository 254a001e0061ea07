#!/usr/bin/env node
// The `herald` command. A committed file (not dist/) so that npm links it at install time even in a fresh clone,
// before the first build: `npx herald …` then works from the repository as well as from an installed package.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error(
    'herald: the CLI is not built yet (no packages/server/dist). Run `npm run build` at the repository root, then try again.',
  );
  process.exit(1);
}
await import(cli.href);
