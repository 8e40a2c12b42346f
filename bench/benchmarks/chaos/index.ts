// bench:chaos (npm run chaos): faults of every kind under a writer workload, then every stream and cache checked exactly.
import type { Flags } from '../../lib/args.js';
import type { Benchmark } from '../../lib/benchmark.js';
import { writeSection } from '../../lib/results.js';
import { runChaos, type ChaosOptions } from './chaos.js';
import { profiles } from './profiles.js';
import { failures, formatReport } from './report.js';

async function run(flags: Flags, command: string, signal: AbortSignal): Promise<void> {
  const profile = flags.str('profile', 'short');
  if (profile !== 'short' && profile !== 'long') throw new Error('--profile is short or long');
  const options: ChaosOptions = { ...profiles[profile], log: (l) => console.log(l), signal };
  if (flags.str('seconds')) options.seconds = flags.num('seconds', options.seconds);
  const pgBin = flags.str('pg-bin');
  if (pgBin) options.pgBinDir = pgBin;
  // A run that hangs is a failure, never a wait (runChaos's exit hook stops the relays and Postgres it started).
  setTimeout(() => {
    console.error(`chaos: FAILED: the run has not ended ${options.seconds + 600} s after it started (a hang)`);
    process.exit(1);
  }, (options.seconds + 600) * 1000).unref();
  const report = await runChaos(options);
  const text = formatReport(report, command, profile === 'long');
  console.log(text);
  if (flags.bool('record')) await writeSection(`chaos-${profile}`, `## Reliability: chaos (${profile} profile)\n\n${text}`);
  const failed = failures(report);
  if (failed.length) throw new Error(`chaos: FAILED: ${failed.join(', ')}`);
}

/**
 * Chaos (`npm run chaos`, `npm run bench:chaos`): relays killed, Postgres restarted, clients cut and stalled, tokens
 * expiring, under a writer workload; then every subscription's stream and every TanStack cache checked exactly.
 */
export const chaos: Benchmark = {
  name: 'chaos',
  title: 'Chaos: relay kills, Postgres restarts, cut and stalled clients, expiring tokens; nothing lost, duplicated or reordered',
  usage: `--profile short|long (short: 45 s, the one npm test runs; long: ≥ 100,000 transactions, up to 30 minutes)
--seconds <n> (instead of the profile's)   --pg-bin <dir> (Postgres binaries; default the embedded build)   --record (writes its section)`,
  // Ctrl-C once: the workload and faults stop, the run settles and reports; twice: everything stops at once.
  stopsGracefully: true,
  run: (flags, ctx) => run(flags, ctx.command, ctx.signal),
};
