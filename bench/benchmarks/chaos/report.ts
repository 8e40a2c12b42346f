// The chaos run's report: its figures as a markdown table, the long run's goals, and what counts as a failure.
import os from 'node:os';
import type { ChaosReport } from './chaos.js';

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
