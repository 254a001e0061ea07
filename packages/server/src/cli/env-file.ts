import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * The environment a command runs with: `--env-file`'s NAME=value lines (what `herald init` writes to herald.env)
 * under the process environment, which wins, as with `node --env-file`. Throws a message naming the file.
 */
export function environmentWith(envFile: string | undefined): Record<string, string | undefined> {
  if (envFile === undefined) return { ...process.env };
  let text: string;
  try {
    text = readFileSync(envFile, 'utf8');
  } catch (err) {
    throw new Error(
      `--env-file ${envFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); herald init writes herald.env`,
    );
  }
  return { ...parseEnv(text), ...process.env };
}
