// CPU time of a whole Postgres server (postmaster, every backend, and every backend that already exited) and of one process, from /proc.
import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';

const TICKS = 100; // USER_HZ: clock ticks per second in /proc/<pid>/stat on Linux

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name may hold spaces: fields start after its closing parenthesis
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a live process, seconds (fields 14 and 15 of /proc/<pid>/stat). */
export function processCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / TICKS : NaN;
}

/**
 * All CPU the server has used: the postmaster's own, the children it already reaped (cutime, cstime: backends that
 * exited, such as pgbench's when a run ends), and every live child (backends, walwriter, checkpointer, autovacuum).
 */
export function serverCpuSeconds(postmaster: number): number {
  const own = statFields(postmaster);
  if (!own) return NaN;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS;
}

/** The postmaster's pid: the parent of this session's backend (NaN for a server on another machine). */
export async function postmasterPid(c: pg.Client): Promise<number> {
  const pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const f = statFields(pid);
  return f ? Number(f[1]) : NaN;
}
