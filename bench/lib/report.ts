// The opening lines every RESULTS.md section carries: what ran, where, when, on which Postgres.
import { describeMachine, machine } from './machine.js';
import { titles, writeSection } from './results.js';
import type { RunContext } from './session.js';

export interface Goal {
  name: string;
  value: string;
  ok: boolean | undefined;
}

const baselinesLine = '- Targets: pgrelay (`relay/cli.ts start`); A = Express + Socket.IO 4 + pg-listen (`bench/baselines/socketio-server.ts`); B = raw `ws` + pg-listen (`bench/baselines/ws-server.ts`); ratios are pgrelay / baseline from this same run. "pgrelay, ticker polling" (when run) is pgrelay on a database with `relay.wake = off`, where its ticker looks every 1–5 ms instead of sleeping, as pgrelay 0.2 did.';

/** `targets` replaces the line naming pgrelay and the baselines (the `--servers` mode has no baselines). */
export function sectionHeader(id: keyof typeof titles, command: string, ctx: RunContext, targets = baselinesLine): string {
  return [
    titles[id]!,
    '',
    `- Command: \`${command}\``,
    targets,
    `- Machine: ${describeMachine(machine())}`,
    `- Postgres: ${ctx.pg.description}`,
    `- Date: ${new Date().toISOString()}`,
    `- Background: CPUs ${ctx.background.toFixed(0)} % busy with other work just before the run${ctx.background > 10 ? ' — the machine was not idle: tails are noisy, rerun on a quiet machine' : ''}`,
  ].join('\n');
}

export function goalsTable(goals: Goal[]): string {
  const rows = goals.map((g) => `| ${g.name} | ${g.value} | ${g.ok === undefined ? 'n/a' : g.ok ? 'PASS' : 'FAIL'} |`);
  return ['| goal | measured | result |', '| --- | --- | --- |', ...rows].join('\n');
}

/** Prints a section to the console as it goes to RESULTS.md. */
export function show(markdown: string): void {
  process.stdout.write(`\n${markdown.trim()}\n\n`);
}

/** Writes a section of RESULTS.md (unless the run is a dry run) and prints it. */
export async function publish(id: string, markdown: string): Promise<void> {
  await writeSection(id, markdown);
  show(markdown);
}
