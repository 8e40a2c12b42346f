// `npm run bench [-- flags]` runs the suite; `npm run bench:<name> [-- flags]` one benchmark. Starts its own Postgres and stops everything it started.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Flags } from './lib/args.js';
import { backgroundLoad, machine } from './lib/machine.js';
import { cleanup, installExitHandlers, loadCpu, pin, repoRoot } from './lib/processes.js';
import { startPostgres } from './lib/postgres.js';
import { titles, writeSection } from './lib/results.js';
import { newSecret, type RunContext } from './lib/session.js';
import { fanoutBenchmark, fanoutServerSteps } from './benchmarks/fanout.js';
import { latencyBenchmark } from './benchmarks/latency.js';
import { memoryBenchmark } from './benchmarks/memory.js';
import { restBenchmark } from './benchmarks/rest.js';
import { resumeBenchmark } from './benchmarks/resume.js';

const benchmarks = {
  latency: latencyBenchmark,
  fanout: fanoutBenchmark,
  memory: memoryBenchmark,
  resume: resumeBenchmark,
  rest: restBenchmark,
} as const;
type Name = keyof typeof benchmarks;

const usage = `Usage: node --import tsx bench/run.ts [all|latency|fanout|memory|resume|rest] [flags]   (npm run bench, npm run bench:<name> -- flags)

Common:   --targets pgrelay,socketio,ws   --database-url <postgres://…> (default TEST_DATABASE_URL, else an embedded server)
          --servers uws,ws [--repeat 3] (latency, fanout, memory: pgrelay on each server implementation instead of the
          baselines, interleaved round by round; medians and min–max; fanout steps default to ${fanoutServerSteps})
          --pin-postgres false (let the embedded Postgres run on any CPU instead of the load CPU)
          --quick (small scale: proves the harness works in about a minute per benchmark)   --verbose (server output to stderr)
all:      also runs bench/client-size.ts; --with-capture runs bench/capture-overhead/run.ts too (about 20 minutes)
latency:  --n 1000 --t 50 --r 200 --d 30 --warmup 3 --mix 70,20,10
fanout:   --steps 1000x200,2000x200,… (connections x tx/s, connections never decreasing) --t 50 --d 6 --warmup 1 --p99 100
          --rules: 50 tenants × 20 users with a per-user access rule vs the same load without (--t 50 --users 20 --r 200 --d 6 --repeats 3 --snapshot-rows 20000 --snapshots 10)
          --compression: RELAY_COMPRESSION off and on interleaved, clients offering permessage-deflate (--steps 1000x200,2000x100
          single-row, --batch 50 --batch-steps 1000x10, --t 50 --d 6 --repeat 3, --servers uws,ws optional; --quick for a smoke)
memory:   --n 10000 --n-pgrelay 50000 (0: skip) --t 50 --settle 5
resume:   --count 10000 --noise 5000 --repeat 3 --history 20000 --log-history 100
rest:     --seconds 30 --settle 60 --repeat 3 (nothing written, one subscriber: CPU and requests to Postgres)
          --rounds 8 --gap 2000 (the first change after a rest, against the seed design's trigger read by LISTEN)
          --targets pgrelay,pgrelay-poll,socketio,ws --parts rest,first-change
`;

/** The benchmarks others own: the client size is quick and runs here; capture overhead takes about 20 minutes, so only with --with-capture. */
async function others(flags: Flags): Promise<void> {
  process.stdout.write('\n## Client size (bench/client-size.ts)\n\n');
  const size = spawnSync(process.execPath, ['--import', 'tsx', `${repoRoot}bench/client-size.ts`], { cwd: repoRoot, encoding: 'utf8' });
  process.stdout.write(size.stdout + size.stderr);
  if (size.status === 0) {
    await writeSection('clientSize', [
      titles.clientSize!,
      '',
      `- Command: \`npm run bench:size\` (run by \`npm run bench\`); date ${new Date().toISOString()}. As a user's bundler sees the package: the build of \`client/\` installed as \`node_modules/pgrelay\`, \`export * from 'pgrelay/client'\` bundled by esbuild (browser, ES2020, ESM, minified), gzip level 9; the adapter counted without the core client it imports. Budgets held by \`client/__tests__/size.test.ts\`.`,
      '',
      '```',
      size.stdout.trim(),
      '```',
    ].join('\n'));
  }
  process.stdout.write('\n## Capture overhead (bench/capture-overhead/)\n\n');
  if (!flags.bool('with-capture') || !existsSync(`${repoRoot}bench/capture-overhead/run.ts`)) {
    process.stdout.write('Not run here (about 20 minutes of pgbench): `npm run bench:capture`, or `npm run bench -- --with-capture`. Catch-up plan: `npm run bench:catchup`.\n');
    return;
  }
  const cap = spawnSync(process.execPath, ['--import', 'tsx', `${repoRoot}bench/capture-overhead/run.ts`], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  if (cap.status !== 0) process.stdout.write(`bench/capture-overhead/run.ts exited with ${cap.status ?? cap.signal}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flags = new Flags(argv);
  const which = flags.positional[0] ?? 'all';
  if (which === 'help' || flags.bool('help')) return void process.stdout.write(usage);
  if (which !== 'all' && !(which in benchmarks)) throw new Error(`Unknown benchmark ${JSON.stringify(which)}.\n${usage}`);
  // --servers compares pgrelay's server implementations: the benchmarks that take it, and nothing else
  const servers = flags.str('servers') !== undefined;
  if (servers && which === 'resume') throw new Error('--servers applies to latency, fanout and memory.');
  const names: Name[] = which === 'all' ? (Object.keys(benchmarks) as Name[]).filter((n) => !servers || n !== 'resume') : [which as Name];
  const rest = flags.toString();
  const command = `npm run ${which === 'all' ? 'bench' : `bench:${which}`}${rest ? ` -- ${rest}` : ''}`;

  installExitHandlers();
  machine();
  // The coordinator is mostly idle, but it must not take CPU from the server under test.
  pin(process.pid, loadCpu);
  const started = Date.now();
  const background = await backgroundLoad();
  const ctx: RunContext = { pg: await startPostgres(flags.str('database-url') ?? process.env.TEST_DATABASE_URL, { pin: flags.str('pin-postgres', 'true') !== 'false' }), secret: newSecret(), echo: flags.bool('verbose'), background };
  try {
    for (const name of names) await benchmarks[name](ctx, flags, command);
    if (which === 'all' && !servers) await others(flags);
  } finally {
    await cleanup();
  }
  process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; results in bench/RESULTS.md, charts in bench/charts/\n`);
}

main().then(
  // process.exitCode is 130 after a Ctrl-C that main() outlived.
  () => process.exit(),
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  },
);
