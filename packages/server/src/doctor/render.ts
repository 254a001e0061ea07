/** Text and JSON output of a doctor run. Colour only when asked (the CLI asks on a TTY without NO_COLOR). */
import type { Finding, StepId } from './finding.js';
import { stepNumbers, stepTitles } from './finding.js';
import type { DoctorReport } from './run.js';

const ALL_STEPS: StepId[] = ['tcp', 'http', 'upgrade', 'connect', 'roundtrip'];

const paint = (on: boolean, code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

function label(f: Finding, colour: boolean): string {
  switch (f.status) {
    case 'pass':
      return paint(colour, '32')('ok  ');
    case 'fail':
      return paint(colour, '1;31')('FAIL');
    case 'warn':
      return paint(colour, '33')('warn');
    case 'skip':
      return paint(colour, '2')('skip');
  }
}

function indent(text: string, pad: string): string {
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

export function renderHeader(url: string, origin: string | undefined): string {
  return `herald doctor ${url}${origin ? ` (Origin: ${origin})` : ''}\n`;
}

export function renderFinding(f: Finding, colour: boolean): string {
  const head = `${label(f, colour)} ${stepNumbers[f.step]} ${stepTitles[f.step].padEnd(10)} ${f.saw}`;
  const lines = [head];
  const pad = '                  ';
  if (f.means && f.status !== 'pass') lines.push(`${pad}${paint(colour, '1')('Means:')} ${f.means}`);
  else if (f.means) lines.push(`${pad}${f.means}`);
  if (f.fix && f.status !== 'pass') lines.push(`${pad}${paint(colour, '1')('Fix:')}\n${indent(f.fix, pad + '  ')}`);
  return lines.join('\n');
}

export function renderSummary(r: DoctorReport, colour: boolean): string {
  const done = new Set(r.steps.map((s) => s.step));
  const notRun = ALL_STEPS.filter((s) => !done.has(s)).map(
    (s) => `${paint(colour, '2')('-   ')} ${stepNumbers[s]} ${stepTitles[s].padEnd(10)} not run`,
  );
  const out = notRun.length > 0 ? [notRun.join('\n'), ''] : [''];
  if (r.failed) {
    out.push(
      `Stopped at step ${stepNumbers[r.failed.step]} (${stepTitles[r.failed.step]}): ${r.failed.code}. ` +
        `Every diagnosis is explained in @herald/server/docs/doctor.md#${r.failed.code}`,
    );
  } else {
    const last = r.steps[r.steps.length - 1];
    if (last?.code === 'round_trip_ok')
      out.push(paint(colour, '32')('Every step passed: a browser can connect, subscribe and receive.'));
    else if (last?.status === 'warn')
      out.push(paint(colour, '33')('No step failed, but the round trip could not be tested: see the warning above.'));
    else
      out.push(
        paint(
          colour,
          '32',
        )('No step failed: a browser can connect and subscribe; delivery was not tested (see step 5).'),
      );
  }
  return out.join('\n');
}

export function renderJson(r: DoctorReport): string {
  return JSON.stringify(
    {
      ok: r.ok,
      exitCode: r.ok ? 0 : 1,
      url: r.url,
      origin: r.origin ?? null,
      failed: r.failed ? { step: r.failed.step, code: r.failed.code } : null,
      steps: r.steps,
    },
    null,
    2,
  );
}
