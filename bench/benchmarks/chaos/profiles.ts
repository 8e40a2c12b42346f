// The chaos run's two profiles: short (inside npm test and CI) and long (the figures in RESULTS.md).
import type { ChaosOptions } from './chaos.js';

export const profiles: Record<'short' | 'long', Omit<ChaosOptions, 'log'>> = {
  // inside npm test / CI: every kind of fault, a minute or less
  short: { seconds: 45, writers: 3, subscribers: 12, faultEveryMs: 1500, tokenTtl: 6 },
  // the long run behind RELIABILITY figures: ≥ 100,000 transactions, ≥ 10 relay kills, ≥ 3 Postgres restarts, ≥ 100 client cuts.
  // It ends at 110,000 transactions or after 30 minutes, whichever comes first (before the workload's retention purge,
  // 1,782 s gave 94,257 transactions on this 2-core machine: the growing lists the TanStack clients refetch slowed it)
  long: { seconds: 1800, writers: 6, subscribers: 30, faultEveryMs: 1200, tokenTtl: 8, maxTransactions: 110_000 },
};
