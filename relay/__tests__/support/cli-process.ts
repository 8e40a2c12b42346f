// Runs the `pgrelay` CLI as a child process (the way a user does), reads its JSON log lines, ends it by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { changes } from '../../../db/testing/index.js';
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
