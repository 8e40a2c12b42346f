// Runs the `pgrelay` CLI as a child process (the way a user does), reads its JSON log lines, ends it by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { changes, type TestDatabase } from '../../../db/testing/index.js';
import { SECRET } from './relay-harness.js';
import { serverEnv } from './server-under-test.js';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** A running `pgrelay` child (on the server under test unless `env` sets RELAY_SERVER). */
export interface CliProcess {
  child: ChildProcess;
  /** Everything written so far (stdout + stderr). */
  output(): string;
  /** What was written to stdout only. */
  stdout(): string;
  /** What was written to stderr only. */
  stderr(): string;
  /** Resolves with the first log line whose text matches, or rejects on exit/timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or signal name) once the process ends. */
  exited: Promise<number | string>;
  /** Sends a signal to this process only. */
  signal(sig: NodeJS.Signals): void;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'relay/cli.ts', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...serverEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const streams = { stdout: '', stderr: '' };
  const printed = changes();
  const onData = (stream: 'stdout' | 'stderr') => (d: Buffer) => {
    out += d.toString();
    streams[stream] += d.toString();
    printed.changed();
  };
  child.stdout!.on('data', onData('stdout'));
  child.stderr!.on('data', onData('stderr'));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, sig) => {
      resolve(code ?? sig ?? 'unknown');
      printed.changed();
    });
  });
  return {
    child,
    output: () => out,
    stdout: () => streams.stdout,
    stderr: () => streams.stderr,
    exited,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
    async waitFor(pattern, timeoutMs = 30_000) {
      const { line } = await printed.until(() => {
        const line = out.split('\n').find((l) => pattern.test(l));
        if (line !== undefined) return { line };
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`pgrelay exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${out}`);
        return undefined;
      }, { timeoutMs, what: () => `pgrelay to print ${pattern}:\n${out}` });
      return line;
    },
  };
}

/** Runs the CLI to its exit: the exit code (or signal) and everything it wrote, stdout and stderr as a terminal shows them. */
export async function cliOutput(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | string; out: string }> {
  const p = runCli(args, env);
  return { code: await p.exited, out: p.output() };
}

/**
 * The environment of `pgrelay start` as the tests run it: 127.0.0.1:`port`, `db` as the run's relay role, the harness's
 * secret and info logs; `env` adds to it or overrides it.
 */
export function relayEnv(db: Pick<TestDatabase, 'relayUrl'>, port: number, env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { DATABASE_URL: db.relayUrl, PORT: String(port), HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, LOG_LEVEL: 'info', ...env };
}

/** The CLI processes of a test file (or describe block): see {@link useCliProcesses}. */
export interface CliProcesses {
  /** runCli, and the process is killed after the file if it still runs. */
  run(args: string[], env: NodeJS.ProcessEnv): CliProcess;
  /**
   * `pgrelay start` with {@link relayEnv}, resolved once it listens: 60 s, since tsx compiles the CLI at start, slow on a
   * busy 2-core machine.
   */
  startRelay(db: Pick<TestDatabase, 'relayUrl'>, port: number, env?: NodeJS.ProcessEnv): Promise<CliProcess>;
}

/**
 * Starts CLI processes for the file or describe block it is called in, and kills (SIGKILL) each one that still runs
 * after it: a failed test leaves none behind.
 */
export function useCliProcesses(): CliProcesses {
  const started: CliProcess[] = [];
  afterAll(async () => {
    for (const p of started) {
      p.signal('SIGKILL');
      await p.exited;
    }
  });
  const run = (args: string[], env: NodeJS.ProcessEnv) => {
    const p = runCli(args, env);
    started.push(p);
    return p;
  };
  return {
    run,
    async startRelay(db, port, env = {}) {
      const p = run(['start'], relayEnv(db, port, env));
      await p.waitFor(/pgrelay listening on/, 60_000);
      return p;
    },
  };
}
