// bench:refused: what a refused token costs the relay, answered with HTTP 401 or explained in-band, and a flood past the in-band budget.
import http from 'node:http';
import { SignJWT } from 'jose';
import { freePort } from '../../client/shared/free-port.js';
import { sleep } from '../../db/testing/wait.js';
import { IN_BAND_REFUSALS_PER_SECOND } from '../../relay/edge/refusals.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { int, table } from '../lib/format.js';
import { describeMachine, machine } from '../lib/machine.js';
import { median } from '../lib/median.js';
import type { BenchPostgres } from '../lib/postgres.js';
import { cpuSeconds, rssBytes } from '../lib/processes.js';
import { writeSection } from '../lib/results.js';
import { prepareDatabase, spawnRelay } from '../lib/targets.js';

const SECRET = 'refused-upgrades-secret-refused-upgrades-secret';
const KEY = Buffer.from('pgrelay-bench-key!').toString('base64');

/** One upgrade; resolves with the HTTP status (101 when upgraded) once the relay has answered and the socket is closed. */
function upgrade(port: number, protocols: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/ws', agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': KEY, 'sec-websocket-protocol': protocols } });
    req.on('upgrade', (res, socket, head) => {
      // wait for the relay's first frame (welcome, or the 4401 close), so its whole cost is in the measurement;
      // it may have come in the same packet as the 101 (then it is `head`)
      socket.once('close', () => resolve(res.statusCode ?? 101));
      if (head.length > 0) socket.destroy();
      else socket.once('data', () => socket.destroy());
      setTimeout(() => socket.destroy(), 5000).unref();
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function run(flags: Flags, postgres: BenchPostgres): Promise<void> {
  const n = flags.num('n', 600);
  const rate = flags.num('rate', 150);
  const flood = flags.num('flood', 3000);
  const rounds = flags.num('rounds', 3);
  const box = machine();
  const url = await postgres.createDatabase('refused_upgrades');
  await prepareDatabase(url, 'pgrelay');
  const port = await freePort();
  const relay = spawnRelay({ name: 'relay', databaseUrl: url, port, secret: SECRET });
  await relay.waitFor(/pgrelay listening on/, 60_000);
  const sign = (secret: string) => new SignJWT({ tenant_id: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
  const good = await sign(SECRET);
  const bad = await sign('not-the-relay-secret-not-the-relay-secret-00');
  const modes = [
    { name: 'good token (control)', protocols: `pgrelay.v1, bearer.${good}` },
    { name: 'refused: HTTP 401', protocols: `pgrelay.v1, bearer.${bad}` },
    { name: 'refused in-band: 4401 + reason', protocols: `pgrelay.v1, pgrelay.reasons, bearer.${bad}` },
  ];
  // warm-up: the first upgrades compile the handlers
  for (const m of modes) for (let i = 0; i < 50; i++) await upgrade(port, m.protocols);
  await sleep(1100);
  // rounds × kinds, interleaved so that the machine's other load falls on every kind alike; the median round per kind is reported
  const samples = new Map<string, Array<{ cpuUs: number; rssKb: number; statuses: Map<number, number> }>>();
  for (let round = 0; round < rounds; round++) {
    for (const m of modes) {
      const rss0 = rssBytes(relay.pid);
      const cpu0 = cpuSeconds(relay.pid);
      const statuses = new Map<number, number>();
      const t0 = performance.now();
      const pending: Array<Promise<void>> = [];
      for (let i = 0; i < n; i++) {
        // paced under the in-band budget, so every in-band refusal is explained
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        pending.push(upgrade(port, m.protocols).then((st) => void statuses.set(st, (statuses.get(st) ?? 0) + 1)));
      }
      await Promise.all(pending);
      await sleep(300);
      const list = samples.get(m.name) ?? [];
      list.push({ cpuUs: ((cpuSeconds(relay.pid) - cpu0) / n) * 1e6, rssKb: (rssBytes(relay.pid) - rss0) / 1024, statuses });
      samples.set(m.name, list);
      await sleep(1100); // let the in-band budget refill
    }
  }
  const rows: string[][] = [];
  const perUpgrade: Record<string, number> = {};
  for (const m of modes) {
    const list = samples.get(m.name)!;
    const cpus = list.map((x) => x.cpuUs).sort((a, b) => a - b);
    perUpgrade[m.name] = median(cpus);
    const answers = new Map<number, number>();
    for (const x of list) for (const [st, c] of x.statuses) answers.set(st, (answers.get(st) ?? 0) + c);
    rows.push([m.name, int(n * rounds), [...answers].map(([st, c]) => `${st}×${c}`).join(', '), `${perUpgrade[m.name]!.toFixed(0)} µs (rounds: ${cpus.map((c) => c.toFixed(0)).join(', ')})`, `${Math.max(...list.map((x) => x.rssKb)).toFixed(0)} kB`]);
  }
  // a flood: as fast as 20 connections in flight allow; past the budget refusals become plain 401s
  const floodStatuses = new Map<number, number>();
  const cpu0 = cpuSeconds(relay.pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < flood) {
      next++;
      const s = await upgrade(port, modes[2]!.protocols);
      floodStatuses.set(s, (floodStatuses.get(s) ?? 0) + 1);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const floodCpu = cpuSeconds(relay.pid) - cpu0;
  const logLines = relay.output().split('\n').filter((l) => l.includes('refused a WebSocket upgrade')).length;
  await relay.stop();

  const report = [
    table(['upgrade', 'count', 'answers (101 = upgraded)', 'relay CPU per upgrade, median round', 'largest relay RSS change in a round'], rows),
    '',
    `Flood: ${int(flood)} in-band refusals in ${seconds.toFixed(1)} s (${int(flood / seconds)}/s, 20 in flight): answers ${[...floodStatuses].map(([s, c]) => `${s}×${c}`).join(', ')}; ` +
      `relay CPU ${((floodCpu / flood) * 1e6).toFixed(0)} µs per refusal; ${logLines} refusal log lines in the whole run ` +
      `(one per reason per 10 s). In-band budget: ${IN_BAND_REFUSALS_PER_SECOND}/s: even at its full in-band cost, a refusal flood spends at most ` +
      `${((IN_BAND_REFUSALS_PER_SECOND * perUpgrade['refused in-band: 4401 + reason']!) / 1e4).toFixed(1)} % of one core on in-band refusals; the rest are plain 401s.`,
  ].join('\n');
  console.log(report);
  await writeSection('refusedUpgrades', [
    '## Refused upgrades: what explaining them costs',
    '',
    `\`npm run bench:refused -- --n ${n} --rate ${rate} --rounds ${rounds} --flood ${flood}\`, ${new Date().toISOString().slice(0, 10)}. ` +
      `A relay process (HS256, pinned to its own CPU) takes ${rounds} rounds of ${int(n)} upgrades per kind, interleaved, at ${rate}/s from one client process on the same machine; each waits for the relay's first frame ` +
      `(welcome or the close) or HTTP answer, then drops the connection. CPU from /proc/<pid>/stat (10 ms ticks: ± 10 ms over the run).`,
    '',
    `Machine: ${describeMachine(box)}. Postgres: ${postgres.description}.`,
    '',
    report,
  ].join('\n'));
}

/**
 * What a refused token costs the relay (`npm run bench:refused`): relay CPU per upgrade for a good token (control), a
 * refusal answered with HTTP 401, and a refusal explained in-band (pgrelay.reasons: accepted, then closed with 4401); and
 * what a flood of in-band refusals gets once past the in-band budget (IN_BAND_REFUSALS_PER_SECOND, then plain HTTP).
 */
export const refused: Benchmark = {
  name: 'refused',
  title: 'What a refused token costs the relay: CPU per upgrade, good token vs HTTP 401 vs in-band 4401, and a flood past the in-band budget',
  usage: '--n 600 --rate 150 --rounds 3 --flood 3000',
  run: async (flags, ctx) => run(flags, await ctx.postgres()),
};
