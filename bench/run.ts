// The one way into the benchmarks: `npm run bench:<name> [-- flags]` runs one, `npm run bench [-- flags]` the side-by-side suite, `--help` lists them.
import { Flags } from './lib/args.js';
import type { BenchContext, Benchmark } from './lib/benchmark.js';
import { backgroundLoad, machine } from './lib/machine.js';
import { cleanup, installExitHandlers, loadCpu, pin, unpin } from './lib/processes.js';
import { startPostgres, type BenchPostgres } from './lib/postgres.js';
import { stopRecording } from './lib/results.js';
import { newSecret, type RunContext } from './lib/session.js';
import { benchmarks, serverSuite, suite } from './benchmarks/index.js';

/** Flags every benchmark takes; the runner reads them, and a dry run's flag stays out of the recorded command. */
const common = `--help                          this text (for one benchmark: npm run bench:<name> -- --help)
--dry-run                       measure and print, but write nothing to RESULTS.md, results/ or charts/
--database-url <postgres://…>   the Postgres of the benchmarks that use the run's (default TEST_DATABASE_URL, else an embedded one)
--pin-postgres false            let that embedded Postgres use any CPU instead of the load CPU
--verbose                       the servers' output to stderr (side-by-side benchmarks)`;
const runnerFlags = ['help', 'dry-run', 'database-url', 'pin-postgres', 'verbose'];

const indent = (text: string, by: string) => text.split('\n').map((l) => `${by}${l}`).join('\n');

function describe(b: Benchmark): string {
  return `${b.name.padEnd(22)}${b.title}\n${indent(b.usage, ' '.repeat(24))}`;
}

function help(only?: Benchmark): string {
  if (only) return `npm run bench:${only.name} [-- flags]   (node --import tsx bench/run.ts ${only.name} [flags])\n\n${describe(only)}\n\nEvery benchmark:\n${indent(common, '  ')}\n`;
  return [
    'npm run bench:<name> [-- flags]   one benchmark   (node --import tsx bench/run.ts <name> [flags])',
    `npm run bench [-- flags]          the side-by-side suite: ${suite.join(', ')}; a flag goes to every one that takes it.`,
    `                                  --servers uws,ws: ${serverSuite.join(', ')} on both server implementations; --with-capture: capture too (about 20 minutes)`,
    '',
    'Every benchmark:',
    indent(common, '  '),
    '',
    'Benchmarks (each writes its section of bench/RESULTS.md; presence, relays and chaos only with --record):',
    '',
    ...benchmarks.map((b) => `${indent(describe(b), '  ')}\n`),
  ].join('\n');
}

/** Flags that none of `run` names in its usage (nor the runner takes): most likely a typo, said before hours of measuring. */
function unknownFlags(argv: readonly string[], run: readonly Benchmark[], all: boolean): string[] {
  const known = new Set([...runnerFlags, ...(all ? ['with-capture'] : [])]);
  for (const b of run) for (const m of b.usage.matchAll(/--([a-z][a-z0-9-]*)/g)) known.add(m[1]!);
  return argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!).filter((f) => !known.has(f));
}

function contextFor(flags: Flags, command: string, signal: AbortSignal): BenchContext {
  let postgres: Promise<BenchPostgres> | undefined;
  let session: Promise<RunContext> | undefined;
  const ctx: BenchContext = {
    command,
    signal,
    postgres: () => (postgres ??= startPostgres(flags.str('database-url') ?? process.env.TEST_DATABASE_URL, { pin: flags.str('pin-postgres', 'true') !== 'false' })),
    session: () =>
      (session ??= (async () => {
        // read before anything of ours runs, and before this process is pinned (then `nproc` would say 1)
        machine();
        const background = await backgroundLoad();
        // the coordinator is mostly idle, but it must not take CPU from the server under test
        pin(process.pid, loadCpu);
        return { pg: await ctx.postgres(), secret: newSecret(), echo: flags.bool('verbose'), background };
      })()),
  };
  return ctx;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flags = new Flags(argv);
  const which = flags.positional[0] ?? 'all';
  const byName = new Map(benchmarks.map((b) => [b.name, b]));
  const one = byName.get(which);
  if (which === 'help' || (flags.bool('help') && !one)) return void process.stdout.write(help());
  if (which !== 'all' && !one) {
    process.stderr.write(`bench: no benchmark ${JSON.stringify(which)}; npm run bench -- --help lists them\n`);
    return void (process.exitCode = 2);
  }
  if (one && flags.bool('help')) return void process.stdout.write(help(one));

  const servers = flags.str('servers') !== undefined;
  const names = one ? [one.name] : [...(servers ? serverSuite : suite), ...(flags.bool('with-capture') && !servers && byName.has('capture') ? ['capture'] : [])];
  const run = names.map((n) => byName.get(n)!);
  for (const f of unknownFlags(argv, run, !one)) process.stderr.write(`bench: --${f} is not a flag of ${names.join(', ')} (ignored); --help lists them\n`);
  if (flags.bool('dry-run')) stopRecording();
  const given = (argv[0] === which ? argv.slice(1) : argv).filter((a) => a !== '--dry-run').join(' ');
  const command = `npm run ${one ? `bench:${one.name}` : 'bench'}${given ? ` -- ${given}` : ''}`;

  const stop = new AbortController();
  installExitHandlers(one?.stopsGracefully ? stop : undefined);
  const started = Date.now();
  const ctx = contextFor(flags, command, stop.signal);
  try {
    for (const b of run) {
      // capture runs pgbench and its own servers: they must not inherit the suite's pinning
      if (b.name === 'capture' && !one) unpin(process.pid);
      if (!one) process.stderr.write(`\n== ${b.name}: ${b.title}\n`);
      await b.run(flags, ctx);
    }
  } finally {
    await cleanup();
  }
  process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(0)} s${flags.bool('dry-run') ? ' (dry run: nothing written)' : ''}\n`);
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
