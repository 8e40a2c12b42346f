// Budgets of the security suite's randomized tests: defaults that keep the whole suite near 90 s on 2 cores, scaled by environment variables for longer runs.
import fc from 'fast-check';
import type pg from 'pg';

function positive(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number; got ${JSON.stringify(raw)}.`);
  return n;
}

/** `PGRELAY_FUZZ_SCALE` (default 1): multiplies every fuzz input count and property run count. */
export const fuzzScale = positive('PGRELAY_FUZZ_SCALE') ?? 1;

/** A count of fuzz inputs: `n` times the scale. */
export function budget(n: number): number {
  return Math.max(1, Math.round(n * fuzzScale));
}

/** Property runs: `PGRELAY_FUZZ_RUNS` when set, else `n` times the scale. */
export function fuzzRuns(n: number): number {
  return Math.round(positive('PGRELAY_FUZZ_RUNS') ?? budget(n));
}

/** `PGRELAY_FUZZ_SEED` replays one fast-check run (fast-check prints the seed of a failing one). */
export function fuzzSeed(): { seed?: number } {
  const seed = process.env.PGRELAY_FUZZ_SEED;
  return seed ? { seed: Number(seed) } : {};
}

/** `PGRELAY_STORM_SIZE` (default `n`): connections per kind in the connection storm. */
export function stormSize(n: number): number {
  return Math.round(positive('PGRELAY_STORM_SIZE') ?? n);
}

/** Prints one line of figures for bench/RESULTS.md (`grep '\[security-suite\]'` in the run's output). */
export function reportFigures(suite: string, figures: Record<string, unknown>): void {
  console.log(`[security-suite] ${suite} ${JSON.stringify(figures)}`);
}

/**
 * Checks a scenario property against the file's database: `run(c, scenario)` for fuzzRuns(`runs`) scenarios on one
 * connection set to UTC (the scenarios write timestamps), with PGRELAY_FUZZ_SEED's seed, stopping without failing after
 * `timeLimitMs`. After each run a transaction a failed write left open is rolled back (the next, shrinking, run starts
 * clean) and `figures.runs` counts the runs that passed; the suite's figures are printed at the end, failed or not.
 */
export async function checkScenarios<S>(
  db: { connect(): Promise<pg.Client> },
  suite: string,
  options: { runs: number; timeLimitMs: number; figures: { runs: number } & Record<string, unknown> },
  scenarios: fc.Arbitrary<S>,
  run: (c: pg.Client, scenario: S) => Promise<void>,
): Promise<void> {
  const c = await db.connect();
  await c.query(`set timezone = 'UTC'`);
  const numRuns = fuzzRuns(options.runs);
  const checked = async (scenario: S) => {
    try {
      await run(c, scenario);
      options.figures.runs++;
    } finally {
      await c.query('rollback').catch(() => undefined);
    }
  };
  try {
    await fc.assert(fc.asyncProperty(scenarios, checked), { numRuns, ...fuzzSeed(), interruptAfterTimeLimit: options.timeLimitMs, markInterruptAsFailure: false });
  } finally {
    await c.end();
    reportFigures(suite, { numRuns, ...options.figures });
  }
}
