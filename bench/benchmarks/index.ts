// Every benchmark, in the order `--help` lists them: the list bench/run.ts reads (`npm run bench:<name>` runs one).
import type { Benchmark } from '../lib/benchmark.js';
import { capture } from './capture/index.js';
import { captureInstructions } from './capture-instructions.js';
import { catchup } from './catchup.js';
import { chaos } from './chaos/index.js';
import { fanout } from './fanout/index.js';
import { herd } from './herd.js';
import { latency } from './latency.js';
import { memory } from './memory.js';
import { presence } from './presence.js';
import { refused } from './refused.js';
import { relays } from './relays.js';
import { rest } from './rest.js';
import { resume } from './resume.js';
import { size } from './size.js';
import { sse } from './sse.js';
import { tick } from './tick.js';

export const benchmarks: readonly Benchmark[] = [
  latency, fanout, memory, resume, rest, size,
  sse, presence, relays, herd, refused,
  capture, captureInstructions, tick, catchup, chaos,
];

/** `npm run bench`: the side-by-side suite, in this order. */
export const suite = ['latency', 'fanout', 'memory', 'resume', 'rest', 'size'];

/** `npm run bench -- --servers uws,ws`: the benchmarks that compare pgrelay's two server implementations. */
export const serverSuite = ['latency', 'fanout', 'memory'];
