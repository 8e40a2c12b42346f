// The shape every benchmark has, and what the runner (bench/run.ts) hands it: `npm run bench:<name> [-- flags]`.
import type { Flags } from './args.js';
import type { BenchPostgres } from './postgres.js';
import type { RunContext } from './session.js';

/** One benchmark, registered in bench/benchmarks/index.ts and run by bench/run.ts. */
export interface Benchmark {
  /** `npm run bench:<name>`, `node --import tsx bench/run.ts <name>`. */
  readonly name: string;
  /** One line for `--help`: what it measures. */
  readonly title: string;
  /** Its flags with their defaults, for `--help`; every line starts with a flag. */
  readonly usage: string;
  /** Measures, prints, and (unless the run is a dry run) writes its section of bench/RESULTS.md. */
  run(flags: Flags, ctx: BenchContext): Promise<void>;
  /**
   * On the first Ctrl-C, `ctx.signal` aborts and the benchmark ends by itself (and still reports); a second Ctrl-C
   * stops everything. Without it, the first Ctrl-C stops everything this run started.
   */
  readonly stopsGracefully?: boolean;
}

/** What the runner gives a benchmark. */
export interface BenchContext {
  /** The command as RESULTS.md shows it, e.g. `npm run bench:latency -- --quick`. */
  readonly command: string;
  /** Aborted on the first Ctrl-C (see {@link Benchmark.stopsGracefully}). */
  readonly signal: AbortSignal;
  /**
   * The run's Postgres, started on first use and shared by every benchmark of the run: `--database-url` or
   * TEST_DATABASE_URL when given, else an embedded server pinned to the load CPU (`--pin-postgres false`: any CPU).
   */
  postgres(): Promise<BenchPostgres>;
  /**
   * The side-by-side session on that Postgres (a JWT secret, the machine's background load, `--verbose`), with this
   * process pinned to the load CPU, away from the server under test.
   */
  session(): Promise<RunContext>;
}

/** The `run` of a side-by-side benchmark: `measure` on the run's session, with the command RESULTS.md shows. */
export function onSession(measure: (session: RunContext, flags: Flags, command: string) => Promise<void>): Benchmark['run'] {
  return async (flags, ctx) => measure(await ctx.session(), flags, ctx.command);
}
