// Every process a benchmark starts: pinned to a CPU, with a raised file limit, tracked by pid, and stopped by pid on exit, error or Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** `taskset` pins the server under test to CPU 0 and everything else to CPU 1, so they do not steal from each other. */
export const taskset = has('taskset') && cpuCount() >= 2;
// A parent-death signal takes children down even when this process is SIGKILLed and gets no chance to clean up.
const setpriv = has('setpriv') && spawnSync('setpriv', ['--pdeathsig', 'SIGKILL', 'true'], { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;

export const serverCpu = 0;
export const loadCpu = 1;

export function cpuCount(): number {
  return os.availableParallelism();
}

const hardLimit = (() => {
  const raw = spawnSync('sh', ['-c', 'ulimit -Hn']).stdout.toString().trim();
  return raw === 'unlimited' ? Infinity : Number(raw) || 1024;
})();
// Root may raise the hard limit only with CAP_SYS_RESOURCE, which containers often drop: try it once.
const canRaise = isRoot && spawnSync('sh', ['-c', `ulimit -n ${Math.min(hardLimit + 1, 1 << 20)}`], { stdio: 'ignore' }).status === 0;

/** The open-files limit a child may be given: up to `fs.nr_open` where the hard limit can be raised, else the hard limit. */
export function fileLimit(wanted: number): number {
  if (canRaise) {
    const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || wanted;
    return Math.min(wanted, nrOpen);
  }
  return Math.min(wanted, hardLimit);
}

/** One process started by a benchmark. */
export interface Spawned {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The last 64 kB of stdout + stderr. */
  output(): string;
  /** Resolves with the first output line that matches; rejects when the process exits first or on timeout. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  readonly exited: Promise<number | string>;
  readonly alive: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Node flags before the script, after `--import tsx` (always first, so that further `--import`s may be .ts). */
  nodeArgs?: string[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** CPU to pin to when `taskset` exists. */
  cpu?: number;
  /** Open-files limit (`ulimit -n`). */
  nofile?: number;
  /** Open an IPC channel (for load workers and the writer). */
  ipc?: boolean;
  /** Echo output lines to our stderr, prefixed with the name. */
  echo?: boolean;
}

const running = new Map<number, Spawned>();
/** Children started otherwise (pg_ctl, pgbench, a forked listener): SIGTERMed by pid at cleanup if still running. */
const tracked = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void> | void> = [];

/** Tracks a child started with `spawn` or `fork` so that {@link cleanup} ends it (by its pid) if it is still running. */
export function track<C extends ChildProcess>(child: C): C {
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  return child;
}

/** Runs `script` (a .ts file under the repo) with Node and tsx, wrapped so that pinning, limits and the death signal keep its pid. */
export function spawnNode(script: string, o: SpawnOptions): Spawned {
  if (cleaning) throw new Error(`Not starting ${o.name}: the run is stopping.`);
  const node = [process.execPath, '--import', 'tsx', ...(o.nodeArgs ?? []), script, ...(o.args ?? [])];
  const pinned = taskset && o.cpu !== undefined ? ['taskset', '-c', String(o.cpu), ...node] : node;
  // `exec` at every step keeps one pid, so /proc/<pid> is the Node process itself.
  const limited = o.nofile ? ['sh', '-c', `ulimit -n ${fileLimit(o.nofile)} && exec "$@"`, 'sh', ...pinned] : pinned;
  const argv = setpriv ? ['setpriv', '--pdeathsig', 'SIGKILL', '--', ...limited] : limited;
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(o.ipc ? (['ipc'] as const) : [])],
  });
  if (child.pid === undefined) throw new Error(`Could not start ${o.name} (${script}).`);
  const pid = child.pid;
  let out = '';
  const waiters = new Set<() => void>();
  let partial = '';
  const onData = (d: Buffer) => {
    const s = d.toString();
    out = (out + s).slice(-65536);
    if (o.echo) {
      const lines = (partial + s).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) process.stderr.write(`[${o.name}] ${l}\n`);
    }
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | string>((resolve) => {
    // 'close', not 'exit': the output is complete by then.
    child.once('close', (code, sig) => {
      running.delete(pid);
      resolve(code ?? sig ?? 'unknown');
      for (const w of waiters) w();
    });
  });
  const isAlive = () => child.exitCode === null && child.signalCode === null;
  const spawned: Spawned = {
    name: o.name,
    pid,
    child,
    output: () => out,
    exited,
    get alive() {
      return isAlive();
    },
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = out.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) return finish(() => resolve(line));
          if (!isAlive()) finish(() => reject(new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${tail(out)}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`${o.name} did not print ${pattern} within ${timeoutMs} ms:\n${tail(out)}`))), timeoutMs);
        const finish = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 5000) {
      if (!isAlive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => isAlive() && child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.set(pid, spawned);
  return spawned;
}

function tail(s: string): string {
  return s.split('\n').slice(-20).join('\n');
}

/** Registers work to undo at the end (stop Postgres, drop a database); run last-in first-out by {@link cleanup}. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

let cleaning: Promise<void> | undefined;

/** True once cleanup has begun (Ctrl-C, an error, or the end): nothing new starts and no result is written. */
export const isStopping = (): boolean => cleaning !== undefined;

/** Stops every process still running (by pid), then runs the registered cleanups. Once: a second caller (Ctrl-C during the normal end) waits for the same work. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of tracked) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all([...running.values()].map((p) => p.stop(3000)));
    while (cleanups.length) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  })();
  return cleaning;
}

/**
 * On Ctrl-C, SIGTERM or a crash: stop what we started, then exit. On any exit: SIGKILL whatever is left. With `graceful`,
 * the first signal only aborts it (the benchmark ends by itself and reports) and a second one stops everything.
 */
export function installExitHandlers(graceful?: AbortController): void {
  let stopping = false;
  const onSignal = (code: number) => {
    if (graceful && !graceful.signal.aborted) {
      process.stderr.write('\nstopping early (the same signal again stops everything at once)...\n');
      return graceful.abort();
    }
    bail(code);
  };
  const bail = (code: number) => {
    if (stopping) return;
    stopping = true;
    process.exitCode = code;
    process.stderr.write('\nstopping the processes this run started...\n');
    const hard = setTimeout(() => process.exit(code), 20_000);
    hard.unref();
    void cleanup().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal(130));
  process.on('SIGTERM', () => onSignal(143));
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${err.stack ?? String(err)}\n`);
    bail(1);
  });
  process.on('exit', () => {
    for (const p of running.values()) if (p.alive) p.child.kill('SIGKILL');
  });
}

/** Pins an already running process (and its threads) to a CPU; used for Postgres and for this coordinator. */
export function pin(pid: number, cpu: number): void {
  if (taskset) spawnSync('taskset', ['-a', '-c', '-p', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Lets a pinned process (and its threads, and what it starts from now on) use every CPU again. */
export function unpin(pid: number): void {
  if (taskset) spawnSync('taskset', ['-a', '-c', '-p', `0-${os.cpus().length - 1}`, String(pid)], { stdio: 'ignore' });
}

/** The children of `pid`, from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/** CPU seconds a process has used so far in user space and in the kernel (utime, stime); 0 when it is gone. */
export function cpuSplit(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / clockTicks, system: Number(fields[12]) / clockTicks };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const file = `/proc/${pid}/status`;
  if (!existsSync(file)) return 0;
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
