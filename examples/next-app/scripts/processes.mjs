// Starts child processes with prefixed output and stops all of them when one exits or on Ctrl-C.
import { spawn } from 'node:child_process';

export function runAll(specs) {
  const children = [];
  let stopping = false;
  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    setTimeout(() => process.exit(code), 3000).unref();
  };
  for (const { name, cmd, args, env, cwd } of specs) {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = (chunk) => String(chunk).replace(/^(?=.)/gm, `[${name}] `);
    child.stdout.on('data', (c) => process.stdout.write(prefix(c)));
    child.stderr.on('data', (c) => process.stderr.write(prefix(c)));
    child.on('exit', (code) => {
      if (!stopping) console.error(`[${name}] exited with ${code}; stopping the others`);
      stop(code ?? 1);
    });
    children.push(child);
  }
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
}
