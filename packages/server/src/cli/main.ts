#!/usr/bin/env node
import { ConfigError } from '../config/index.js';
import { init, initUsage } from './init.js';
import { migrate, migrateUsage } from './migrate.js';
import { doctor, doctorUsage } from './doctor.js';
import { publish, publishUsage } from './publish.js';
import { serve, serveUsage } from './serve.js';
import { token, tokenUsage } from './token.js';
import { HERALD_VERSION } from '../version.js';

type Command = { run: (argv: string[]) => Promise<number>; usage: string };

/** Commands by name; each parses its own argv and calls the public API only. */
export const commands: Record<string, Command> = {
  init: { run: init, usage: initUsage },
  serve: { run: serve, usage: serveUsage },
  token: { run: token, usage: tokenUsage },
  publish: { run: publish, usage: publishUsage },
  doctor: { run: doctor, usage: doctorUsage },
  migrate: { run: migrate, usage: migrateUsage },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    console.log(HERALD_VERSION);
    return 0;
  }
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(
      `herald ${HERALD_VERSION}: real-time server speaking the Centrifugo client protocol\n\n` +
        Object.values(commands)
          .map((c) => c.usage)
          .join('\n\n'),
    );
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`herald: unknown command "${name}". Commands: ${Object.keys(commands).join(', ')}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (
      e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
      e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
    ) {
      console.error(`herald ${name}: ${e.message}\n${cmd.usage}`);
      return 2;
    }
    console.error(`herald ${name}: ${e.message}`);
    // A configuration the command cannot run with (e.g. a driver that is not installed) is a usage error: 2, like
    // every other config error; 1 is for failures at run time.
    return err instanceof ConfigError ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // serve has resolved only after closing everything; do not wait for stray handles (e.g. open keep-alive sockets).
    if (process.argv[2] === 'serve') setTimeout(() => process.exit(code), 50).unref();
  },
  (err: unknown) => {
    // main() catches what its commands throw; this is only a bug in main itself.
    console.error('herald: unexpected failure:', err);
    process.exitCode = 1;
  },
);
