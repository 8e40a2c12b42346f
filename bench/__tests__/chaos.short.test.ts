// The short chaos profile inside npm test: every fault kind, then exact accounting with no loss, duplicate, reorder or leak.
import { describe, expect, it } from 'vitest';
import { runChaos } from '../benchmarks/chaos/chaos.js';
import { profiles } from '../benchmarks/chaos/profiles.js';
import { failures, formatReport } from '../benchmarks/chaos/report.js';

describe('chaos (short profile)', () => {
  it('loses, duplicates and reorders nothing through relay kills, Postgres restarts, cut and stalled clients and expiring tokens', async () => {
    const report = await runChaos({ ...profiles.short, seconds: Number(process.env.PGRELAY_CHAOS_SECONDS ?? 35), ...(process.env.TEST_PG_BIN ? { pgBinDir: process.env.TEST_PG_BIN } : {}) });
    console.log(formatReport(report, 'vitest bench/__tests__/chaos.short.test.ts'));
    expect(failures(report)).toEqual([]);
    expect(report.tally.expectedTransactions).toBeGreaterThan(1000);
    expect(report.faults.relay_kill).toBeGreaterThanOrEqual(1);
    expect(report.faults.pg_restart).toBeGreaterThanOrEqual(1);
    expect(report.faults.listener_kill).toBeGreaterThanOrEqual(1);
    expect(report.faults.client_cut).toBeGreaterThanOrEqual(1);
    expect(report.faults.stall).toBeGreaterThanOrEqual(1);
    expect(report.closes['4001'] ?? 0).toBeGreaterThanOrEqual(1); // tokens expired mid-stream
    // a stalled subscriber was dropped and resumed: counted on the relay's side, since a close frame queued behind
    // megabytes the stalled peer never read may reach it only as a cut
    expect(report.relayBackpressureCloses).toBeGreaterThanOrEqual(1);
  }, 240_000);
});
