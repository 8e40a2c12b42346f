// The repository's shape: top-level layout, package entry points, docker-compose wiring.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { repoRoot } from './support/cli-process.js';

describe('repository layout', () => {
  it('holds only the agreed top-level entries', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: repoRoot }).toString().split('\n').filter(Boolean);
    const top = new Set(tracked.map((f) => f.split('/')[0]!));
    const allowed = new Set(['db', 'relay', 'client', 'migrations', 'bench', 'examples', 'package.json', 'package-lock.json', 'tsconfig.json', 'docker-compose.yml', 'README.md', 'docs', '.ci']);
    const extra = [...top].filter((t) => !allowed.has(t) && !t.startsWith('.'));
    expect(extra).toEqual([]);
  });

  it('declares the package entry points, bin and Node 20', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, any>;
    expect(pkg.name).toBe('pgrelay');
    expect(pkg.type).toBe('module');
    expect(pkg.engines.node).toMatch(/20/);
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['.', './client', './client/tanstack', './client/react']));
    expect(pkg.bin.pgrelay).toBe('dist/relay/cli.js');
    expect(readFileSync(path.join(repoRoot, '.nvmrc'), 'utf8').trim()).toBe('20');
    // Every dependency comes from the registry: no git or URL specs.
    const specs = Object.values({ ...pkg.dependencies, ...pkg.devDependencies, ...pkg.optionalDependencies }) as string[];
    expect(specs.filter((s) => /^(git|https?:|github:|file:)/.test(s))).toEqual([]);
    // Issue 12 (item 11): npm start and the README's `npm run pgrelay --` run the build, not the sources through tsx
    // (1.6–3.3 s per command); `prepare` builds it on install, `npm run dev` runs the sources.
    expect(pkg.scripts.prepare).toBe('npm run build');
    // issue 25: `exec`, so that the SIGTERM/SIGINT npm forwards to its script reaches the relay, not a shell in between
    expect(pkg.scripts.start).toBe('exec node dist/relay/cli.js start');
    expect(pkg.scripts.pgrelay).toBe('node dist/relay/cli.js');
    expect(pkg.scripts.dev).toBe('exec node --import tsx relay/cli.ts start');
    // Every export points into the build that `prepare` emits from the sources.
    for (const target of Object.values(pkg.exports) as Array<{ default?: string }>) {
      if (!target.default) continue;
      const source = target.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');
      expect(existsSync(path.join(repoRoot, source)), source).toBe(true);
    }
  });
});

describe('docker-compose.yml', () => {
  it('migrates a healthy Postgres 16 once as its owner, then runs the relay as its own role with RELAY_JWT_SECRET', () => {
    const compose = YAML.parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8')) as Record<string, any>;
    const pgService = compose.services.postgres;
    expect(pgService.image).toMatch(/^postgres:16/);
    expect(pgService.healthcheck.test.join(' ')).toMatch(/pg_isready/);
    expect(pgService.volumes.length).toBeGreaterThan(0);
    // issue 18: a one-shot migrate service as the owner, the relay as pgrelay (secrets: secure-defaults.secrets.test.ts)
    const migrate = compose.services.migrate;
    expect([...migrate.entrypoint, ...migrate.command]).toEqual(['node', 'dist/relay/cli.js', 'migrate', '--relay-role', 'pgrelay']);
    expect(migrate.environment.DATABASE_URL).toMatch(/^postgres:\/\/postgres:.*@postgres:5432\/app$/);
    expect(migrate.depends_on.postgres.condition).toBe('service_healthy');
    expect(migrate.restart).toBe('no');
    const relay = compose.services.relay;
    expect([...relay.entrypoint, ...relay.command]).toEqual(['node', 'dist/relay/cli.js', 'start']);
    expect(relay.environment.DATABASE_URL).toMatch(/^postgres:\/\/pgrelay:.*@postgres:5432\/app$/);
    expect(relay.environment.RELAY_JWT_SECRET).toBeTruthy();
    expect(relay.depends_on.postgres.condition).toBe('service_healthy');
    expect(relay.depends_on.migrate.condition).toBe('service_completed_successfully');
    for (const service of [migrate, relay]) expect(existsSync(path.join(repoRoot, service.build.dockerfile))).toBe(true);
  });
});

describe('relay/Dockerfile', () => {
  it('issue 16: runs an LTS Node on Debian 13 (glibc 2.41, where the native server loads) and does not build without the native server', () => {
    const text = readFileSync(path.join(repoRoot, 'relay/Dockerfile'), 'utf8');
    const bases = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases).toHaveLength(2);
    for (const base of bases) expect(base).toMatch(/^node:(22|24)-trixie-slim$/);
    expect(text).toMatch(/^RUN node -e .*chooseServer\('uws'\)/m);
  });
});
