// Preloaded into a target process by the idle scenario (`node --expose-gc --require heap-probe.cjs …`), the same for
// every target: on SIGUSR2 it runs a full, synchronous garbage collection and writes process.memoryUsage() (bytes)
// to <BENCH_HEAP_DIR>/<pid>.json (written to a temporary name, then renamed, so a reader never sees half a file).
// A signal listener keeps no handle open; nothing else in the process changes.
'use strict';
const { renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.BENCH_HEAP_DIR;
if (dir && typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    const m = process.memoryUsage();
    const file = join(dir, `${process.pid}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(m));
    renameSync(`${file}.tmp`, file);
  });
}
