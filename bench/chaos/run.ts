// `npm run chaos [-- --profile short|long] [--seconds n] [--record]`: the chaos run from the command line, with its report.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runChaos, type ChaosOptions, type ChaosReport } from './chaos.js';

export const profiles: Record<'short' | 'long', Omit<ChaosOptions, 'log'>> = {
  // inside npm test / CI: every kind of fault, a minute or less
  short: { seconds: 45, writers: 3, subscribers: 12, faultEveryMs: 1500, tokenTtl: 6 },
  // the long run behind RELIABILITY figures: ≥ 100,000 transactions, ≥ 10 relay kills, ≥ 3 Postgres restarts, ≥ 100 client cuts.
  // It ends at 110,000 transactions or after 30 minutes, whichever comes first (before the workload's retention purge,
  // 1,782 s gave 94,257 transactions on this 2-core machine: the growing lists the TanStack clients refetch slowed it)
  long: { seconds: 1800, writers: 6, subscribers: 30, faultEveryMs: 1200, tokenTtl: 8, maxTransactions: 110_000 },
};

/** The report as markdown; `withGoals` adds the long run's goals (a short run is not meant to reach them). */
export function formatReport(r: ChaosReport, command: string, withGoals = false): string {
  const t = r.tally;
  return [
    `Command: \`${command}\``,
    `Machine: ${os.cpus().length} cores, ${os.release()}, Node ${process.version}, PostgreSQL ${r.pgVersion}; ${new Date().toISOString()}`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| duration | ${r.seconds} s |`,
    `| transactions committed (relay.transactions) | ${r.transactions} |`,
    `| writer commits / rollbacks / failed (connection lost) / truncates / oversize rows | ${r.writers.committed} / ${r.writers.rolledBack} / ${r.writers.failed} / ${r.writers.truncates} / ${r.writers.oversize} |`,
    `| relay kills (SIGKILL) | ${r.faults.relay_kill} |`,
    `| Postgres restarts | ${r.faults.pg_restart} |`,
    `| LISTEN backends terminated | ${r.faults.listener_kill} |`,
    `| client TCP connections cut | ${r.faults.client_cut} |`,
    `| subscribers stalled | ${r.faults.stall} |`,
    `| close codes seen by clients | ${Object.entries(r.closes).map(([k, v]) => `${k}×${v}`).join(', ') || '-'} |`,
    `| sockets the relays closed for falling behind (4008, from their logs) | ${r.relayBackpressureCloses} |`,
    `| subscriptions served again after the database went away under them (from the relays' logs) | ${r.relaySubscriptionRetries} |`,
    `| subscriptions checked / expected transactions | ${r.subscriptions} / ${t.expectedTransactions} |`,
    `| lost / duplicated / reordered | ${t.lost} / ${t.duplicated} / ${t.reordered} |`,
    `| wrong change counts / cross-tenant changes | ${t.corrupted} / ${t.crossTenant} |`,
    `| snapshot+stream ≠ table | ${t.stateMismatches} |`,
    `| TanStack caches ≠ fresh query (of ${r.tanstackClients}) | ${r.cacheMismatches} |`,
    `| resets | ${r.resets} |`,
    ...(withGoals ? ['', '| goal of the long run | measured | result |', '| --- | --- | --- |', ...goals(r)] : []),
  ].join('\n');
}

function goals(r: ChaosReport): string[] {
  const t = r.tally;
  const rows: Array<[string, string | number, boolean]> = [
    ['≥ 100,000 committed transactions', r.transactions, r.transactions >= 100_000],
    ['≥ 10 relay kills', r.faults.relay_kill, r.faults.relay_kill >= 10],
    ['≥ 3 Postgres restarts', r.faults.pg_restart, r.faults.pg_restart >= 3],
    ['≥ 100 client cuts', r.faults.client_cut, r.faults.client_cut >= 100],
    ['0 lost, duplicated, reordered, cross-tenant', `${t.lost} / ${t.duplicated} / ${t.reordered} / ${t.crossTenant}`, t.lost + t.duplicated + t.reordered + t.crossTenant === 0],
  ];
  return rows.map(([goal, value, ok]) => `| ${goal} | ${value} | ${ok ? 'PASS' : 'FAIL'} |`);
}

export function failures(r: ChaosReport): string[] {
  const t = r.tally;
  const out: string[] = [];
  for (const [k, v] of Object.entries({ lost: t.lost, duplicated: t.duplicated, reordered: t.reordered, corrupted: t.corrupted, crossTenant: t.crossTenant, stateMismatches: t.stateMismatches, cacheMismatches: r.cacheMismatches })) {
    if (v !== 0) out.push(`${k} = ${v}`);
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const profile = (get('profile') ?? 'short') as 'short' | 'long';
  const options: ChaosOptions = { ...profiles[profile], log: (l) => console.log(l) };
  if (get('seconds')) options.seconds = Number(get('seconds'));
  if (get('pg-bin')) options.pgBinDir = get('pg-bin');
  // Ctrl-C once: stop the workload and faults, settle and report. Twice, or no end long after the planned one: exit
  // (runChaos's exit hook stops the relays and Postgres it started). A run that hangs is a failure, never a wait.
  const abort = new AbortController();
  options.signal = abort.signal;
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    console.error('chaos: stopping early (signal again to exit at once)');
    abort.abort();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  setTimeout(() => {
    console.error(`chaos: FAILED: the run has not ended ${options.seconds + 600} s after it started (a hang)`);
    process.exit(1);
  }, (options.seconds + 600) * 1000).unref();
  const report = await runChaos(options);
  const command = `npm run chaos -- ${args.join(' ')}`.trim();
  const text = formatReport(report, command, profile === 'long');
  console.log(text);
  if (args.includes('--record')) {
    const file = fileURLToPath(new URL('../RESULTS.md', import.meta.url));
    const before = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
    const section = `## Reliability: chaos (${profile} profile)\n\n${text}\n`;
    const re = new RegExp(`## Reliability: chaos \\(${profile} profile\\)\\n[\\s\\S]*?(?=\\n## |$)`);
    writeFileSync(file, re.test(before) ? before.replace(re, section) : `${before.trimEnd()}\n\n${section}`);
  }
  const failed = failures(report);
  if (failed.length) {
    console.error(`chaos: FAILED: ${failed.join(', ')}`);
    process.exit(1);
  }
  process.exit(0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void main();
