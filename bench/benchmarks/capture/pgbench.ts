// pgbench of PostgreSQL 15 against a throwaway server: one run's TPS, transactions and mean latency.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { track } from '../../lib/processes.js';
import { PG15_BIN, type BenchServer } from '../../lib/throwaway-postgres.js';

export interface PgbenchResult {
  tps: number;
  transactions: number;
  latencyMs: number;
}

/** Runs the PG 15 pgbench against `server` (simple protocol) and reads its summary; failed transactions are an error. */
export async function pgbench(server: BenchServer, script: string, clients: number, seconds: number, database = 'bench'): Promise<PgbenchResult> {
  const args = [
    '-n', '-h', server.host, '-p', String(server.port), '-U', server.user,
    '-c', String(clients), '-j', String(Math.min(clients, os.cpus().length)), '-T', String(seconds), '-f', script, database,
  ];
  const out = await new Promise<string>((resolve, reject) => {
    const child = track(spawn(path.join(PG15_BIN, 'pgbench'), args, {
      env: { ...process.env, PGPASSWORD: server.password }, stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`pgbench exited with ${code}:\n${text}`))));
  });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  const n = /number of transactions actually processed: (\d+)/.exec(out);
  const lat = /latency average = ([\d.]+) ms/.exec(out);
  const failed = /number of failed transactions: (\d+)/.exec(out);
  if (!tps || !n) throw new Error(`cannot read pgbench output:\n${out}`);
  if (failed && Number(failed[1]) > 0) throw new Error(`pgbench reported failed transactions:\n${out}`);
  return { tps: Number(tps[1]), transactions: Number(n[1]), latencyMs: lat ? Number(lat[1]) : NaN };
}
