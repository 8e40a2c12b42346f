// Preloaded (`--import`) into every server under test alike: SIGUSR2 runs a full GC (with --expose-gc) and prints the memory use as one numbered JSON line on stderr.
const gc = (globalThis as { gc?: () => void }).gc;
let n = 0;
process.on('SIGUSR2', () => {
  gc?.();
  process.stderr.write(`${JSON.stringify({ benchMemory: process.memoryUsage(), n: ++n })}\n`);
});
