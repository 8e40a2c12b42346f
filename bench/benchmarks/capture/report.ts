// The capture-overhead benchmark's tables: TPS and ratios against the goals, CPU per transaction, bulk rows/s, where backends waited.
import { BULK, MODE_NAMES, type Mode } from './modes.js';
import { median } from '../../lib/median.js';
import type { Run } from './throughput.js';

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export interface Report {
  text: string;
  /** Each goal with its verdict. */
  goals: Array<{ goal: string; value: string; pass: boolean }>;
}

export function report(runs: Run[], clients: number[], modes: Mode[]): Report {
  const oneRow = runs.filter((r) => r.workload === '1-row');
  const med = (mode: Mode, c: number, pick: (r: Run) => number = (r) => r.tps) => median(oneRow.filter((r) => r.mode === mode && r.clients === c).map(pick));
  const has = (m: Mode) => modes.includes(m);
  const lines: string[] = [];
  const goals: Report['goals'] = [];

  lines.push(`| clients | ${modes.map((m) => MODE_NAMES[m]).join(' | ')} | c/f | s/f | c/b | s/b | c/a |`);
  lines.push(`|---:|${modes.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|`);
  for (const c of clients) {
    const t = Object.fromEntries(modes.map((m) => [m, med(m, c)])) as Record<Mode, number>;
    lines.push(`| ${c} | ${modes.map((m) => fmt(t[m], 0)).join(' | ')} | ${fmt(t.c / t.f)} | ${fmt(t.s / t.f)} | ${fmt(t.c / t.b)} | ${fmt(t.s / t.b)} | ${fmt(t.c / t.a)} |`);
    if (has('c') && has('f')) goals.push({ goal: `writer alone ≥ 0.9× the floor, ${c} client(s)`, value: `c/f = ${fmt(t.c / t.f)}`, pass: t.c / t.f >= 0.9 });
    if (has('s') && has('f')) goals.push({ goal: `system with the relay ≥ 0.75× the floor, ${c} client(s)`, value: `s/f = ${fmt(t.s / t.f)}`, pass: t.s / t.f >= 0.75 });
    if (has('c') && has('b') && (c === 1 || c >= 8)) {
      const want = c === 1 ? 0.8 : 1.2;
      goals.push({ goal: `writer ≥ ${want}× the seed style, ${c} client(s)`, value: `c/b = ${fmt(t.c / t.b)}`, pass: t.c / t.b >= want });
      if (has('s')) goals.push({ goal: `system ≥ ${want}× the seed style, ${c} client(s)`, value: `s/b = ${fmt(t.s / t.b)}`, pass: t.s / t.b >= want });
    }
  }

  // ratios of runs minutes apart at most shrug off the machine's slow drift better than ratios of medians
  lines.push('', 'c/f and s/f of each repeat (the runs of one repeat are adjacent in time):', '');
  for (const c of clients) {
    const per = (m: Mode) => [...new Set(oneRow.map((r) => r.repeat))].map((rep) => {
      const at = (x: Mode) => oneRow.find((r) => r.mode === x && r.clients === c && r.repeat === rep)?.tps ?? NaN;
      return at(m) / at('f');
    });
    lines.push(`- ${c} client(s): c/f ${per('c').map((x) => fmt(x)).join(', ')}; s/f ${per('s').map((x) => fmt(x)).join(', ')}`);
  }
  lines.push('', 'TPS of each repeat:', '');
  for (const c of clients) {
    lines.push(`- ${c} client(s): ${modes.map((m) => `${m} [${oneRow.filter((r) => r.mode === m && r.clients === c).map((r) => r.tps.toFixed(0)).join(', ')}]`).join('; ')}`);
  }

  // CPU: all of Postgres (writers, the seed style's LISTEN backend, the ticker, the relay's LISTEN and reads, WAL
  // writer, checkpointer, autovacuum) per committed transaction, and the relay process's own
  lines.push('', 'Postgres CPU per committed transaction, µs (every server process, from the start of the run until the log was numbered and every notification drained; median of the repeats), and the relay process\'s CPU in mode s:', '');
  lines.push(`| clients | ${modes.map((m) => m).join(' | ')} | relay (s) | s/b Postgres | s/b Postgres + relay |`);
  lines.push(`|---:|${modes.map(() => '---:').join('|')}|---:|---:|---:|`);
  for (const c of clients) {
    const cpu = (m: Mode) => med(m, c, (r) => (r.pgCpu * 1e6) / r.transactions);
    const relay = med('s', c, (r) => (r.relayCpu * 1e6) / r.transactions);
    lines.push(`| ${c} | ${modes.map((m) => fmt(cpu(m), 0)).join(' | ')} | ${fmt(relay, 0)} | ${fmt(cpu('s') / cpu('b'))} | ${fmt((cpu('s') + relay) / cpu('b'))} |`);
    if (has('s') && has('b')) goals.push({ goal: `Postgres CPU per transaction ≤ 1.3× the seed style, ${c} client(s)`, value: `${fmt(cpu('s') / cpu('b'))}×`, pass: cpu('s') / cpu('b') <= 1.3 });
  }

  const bulk = runs.filter((r) => r.workload === 'bulk');
  if (bulk.length > 0) {
    const bm = modes.filter((m) => bulk.some((r) => r.mode === m));
    lines.push('', `Rows captured per second, 1 client, 1000-row statements (INSERT … SELECT generate_series(1,${BULK}) + a ${BULK}-row UPDATE per transaction):`, '');
    lines.push(`| ${bm.map((m) => MODE_NAMES[m]).join(' | ')} |`, `|${bm.map(() => '---:').join('|')}|`);
    lines.push(`| ${bm.map((m) => fmt(median(bulk.filter((r) => r.mode === m).map((r) => r.tps)) * 2 * BULK, 0)).join(' | ')} |`);
  }

  // where pgbench's backends were, summed over the repeats: the share of backend-samples per state or wait event
  lines.push('', 'What pgbench\'s backends were doing (pg_stat_activity every 20 ms during the 1-row runs, all repeats; % of backend-samples; "running" = on CPU or runnable, Client:ClientRead = waiting for pgbench, Lock:object = the NOTIFY queue lock at commit, IO:WALSync/WALWrite = the commit flush):', '');
  const keys = new Map<string, number>();
  for (const r of oneRow) for (const [key, v] of r.waits) keys.set(key, (keys.get(key) ?? 0) + v);
  const shown = [...keys].sort((x, y) => y[1] - x[1]).map(([key]) => key).slice(0, 7);
  lines.push(`| clients | mode | ${shown.join(' | ')} | other |`, `|---:|---|${shown.map(() => '---:').join('|')}|---:|`);
  for (const c of clients) {
    for (const m of modes) {
      const sum = new Map<string, number>();
      for (const r of oneRow) if (r.mode === m && r.clients === c) for (const [key, v] of r.waits) sum.set(key, (sum.get(key) ?? 0) + v);
      const total = [...sum.values()].reduce((x, y) => x + y, 0) || 1;
      const pct = (v: number) => `${((100 * v) / total).toFixed(0)} %`;
      const other = [...sum].filter(([key]) => !shown.includes(key)).reduce((x, [, v]) => x + v, 0);
      lines.push(`| ${c} | ${m} | ${shown.map((key) => pct(sum.get(key) ?? 0)).join(' | ')} | ${pct(other)} |`);
    }
  }
  return { text: lines.join('\n'), goals };
}
