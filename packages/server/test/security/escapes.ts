// For tests that run Herald in their own process: the test runner would catch what escapes a listener instead of
// letting the process die, so every uncaught exception and unhandled rejection is recorded (observed, not handled)
// and fails the step that caused it.
import assert from 'node:assert/strict';
import { after } from 'node:test';

/** Starts recording escapes for this test file; `assertNothingEscaped(what)` fails if any happened since the last call. */
export function watchEscapes(): { assertNothingEscaped(what: string): void } {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  process.on('uncaughtExceptionMonitor', onEscape);
  process.on('unhandledRejection', onEscape);
  after(() => {
    process.off('uncaughtExceptionMonitor', onEscape);
    process.off('unhandledRejection', onEscape);
  });
  return {
    assertNothingEscaped(what: string): void {
      const e = escaped.splice(0);
      assert.equal(
        e.length,
        0,
        `nothing escaped Herald's handlers after ${what}: ${e.map((x) => String((x as Error)?.stack ?? x).slice(0, 300)).join(' | ')}`,
      );
    },
  };
}
