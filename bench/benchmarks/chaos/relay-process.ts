// One relay as a child process (`pgrelay start`), killable by pid and restartable on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

export class RelayProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<unknown> = Promise.resolve();
  log = '';
  /** Sockets this relay closed for falling behind (4008), over all its starts: counted from its log lines. */
  backpressureCloses = 0;
  /** Snapshots and resumes this relay served again after losing the database under them, from its log lines. */
  subscriptionRetries = 0;
  #partial = '';

  constructor(readonly port: number, private readonly env: Record<string, string>) {}

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts and resolves once the relay listens (or rejects after `timeoutMs`). */
  async start(timeoutMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'relay/cli.ts', 'start'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, RELAY_SERVER: process.env.RELAY_SERVER, LOG_LEVEL: 'info', ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.#partial = '';
    this.#exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`relay on ${this.port} did not start:\n${this.log.slice(-2000)}`)), timeoutMs);
      const onData = (d: Buffer) => {
        const text = d.toString();
        this.#count(text);
        this.log = (this.log + text).slice(-200_000);
        if (this.log.includes('pgrelay listening on')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`relay on ${this.port} exited (${code ?? sig}) while starting:\n${this.log.slice(-2000)}`));
      });
    });
    // keep draining output so the child never blocks on a full pipe
    this.log = '';
  }

  #count(text: string): void {
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop()!;
    for (const line of lines) {
      if (line.includes('closed a socket that fell behind')) this.backpressureCloses++;
      if (line.includes('serving a subscription failed')) this.subscriptionRetries++;
    }
  }

  /** The running relay's pid. */
  get pid(): number | undefined {
    return this.running ? this.#child!.pid : undefined;
  }

  /** SIGKILL: no shutdown at all, as a crash or an OOM kill. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child!.kill('SIGKILL');
    await this.#exited;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.#child!.kill('SIGTERM');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), 6000);
    await this.#exited;
    clearTimeout(timer);
  }
}
