// The machine a result was measured on, for every RESULTS.md section.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { sleep } from '../../db/testing/wait.js';
import { loadCpu, serverCpu, taskset } from './processes.js';

export interface Machine {
  nproc: number;
  kernel: string;
  node: string;
  cpu: string;
  memory: string;
  pinning: string;
}

let cached: Machine | undefined;

/** Read once, before the coordinator pins itself to one CPU (after that `nproc` would say 1). */
export function machine(): Machine {
  if (cached) return cached;
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  cached = {
    nproc: Number(execFileSync('nproc').toString().trim()),
    kernel: execFileSync('uname', ['-r']).toString().trim(),
    node: process.version,
    cpu: model.trim(),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    pinning: taskset
      ? `taskset: server under test on CPU ${serverCpu}; load workers, writer, Postgres and the coordinator on CPU ${loadCpu}`
      : 'no pinning (taskset missing or one CPU): server and load share the CPUs',
  };
  return cached;
}

/** One line for RESULTS.md; `pinning: false` for the benchmarks that pin nothing (those that measure Postgres alone). */
export function describeMachine(m: Machine, o: { pinning?: boolean } = {}): string {
  return `nproc ${m.nproc}, kernel ${m.kernel}, Node ${m.node}, ${m.cpu}, ${m.memory} RAM${o.pinning === false ? '' : `; ${m.pinning}`}`;
}

/** Busy and total ticks of all CPUs, or of CPU `index`, from /proc/stat. */
export function cpuTicks(index?: number): { busy: number; total: number } {
  const name = index === undefined ? 'cpu' : `cpu${index}`;
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.split(/\s+/)[0] === name) ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** How busy all CPUs are over `ms` while this run has nothing running: other work on the machine makes tails noisy. */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const a = cpuTicks();
  await sleep(ms);
  const b = cpuTicks();
  return busyPercent(a, b);
}

export function busyPercent(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  return b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * 100 : 0;
}
