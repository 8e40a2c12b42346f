// `pgrelay start` the way a newcomer runs it: embedded Postgres, /healthz, Ctrl-C, restart on the same data, clear failures.
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../../db/testing/index.js';
import { freePort } from '../../client/shared/free-port.js';
import { useCliProcesses } from './support/cli-process.js';
import { httpGet } from './support/relay-harness.js';
import { expectedServer } from './support/server-under-test.js';

const cli = useCliProcesses();

describe('pgrelay start with no DATABASE_URL', () => {
  // the second run's SIGINT stops the embedded server; when the test failed before that, stopped by its pid after it
  const getStateDir = useStateDir();

  it('answers /healthz within 30 s on 127.0.0.1 only (issue 18: no HOST given), stops on SIGINT, and a second start reuses the data', async () => {
    const stateDir = await getStateDir();
    const port = await freePort();
    // no HOST, as a newcomer runs it: the embedded mode hands out dev tokens, so it listens on loopback only
    const env = { RELAY_DATA_DIR: stateDir, PORT: String(port) };

    const first = cli.run(['start'], env);
    const t0 = Date.now();
    await first.waitFor(/pgrelay listening on/, 30_000);
    expect(first.output()).toContain(`pgrelay listening on http://127.0.0.1:${port}`);
    if (process.platform === 'linux') expect(await listeningOn(port)).toEqual(['127.0.0.1']);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', server: { impl: expectedServer() } });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(first.output()).toMatch(/embedded Postgres data lives in \S+/);
    expect(first.output()).not.toMatch(/DeprecationWarning/);
    expect(first.output()).toMatch(expectedServer() === 'uws' ? /native uWebSockets\.js build in use/ : /serving with the ws fallback/);

    // Leave a mark in the database, then stop the way Ctrl-C does.
    const url = (await readFile(path.join(stateDir, 'database-url'), 'utf8')).trim();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('create table start_marker(id int primary key); insert into start_marker values (42)');
    await c.end();
    first.signal('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/embedded Postgres stopped/);

    const second = cli.run(['start'], { ...env, HOST: '127.0.0.1' });
    await second.waitFor(/pgrelay listening on/, 30_000);
    const c2 = new pg.Client({ connectionString: url });
    await c2.connect();
    const { rows } = await c2.query('select id from start_marker');
    await c2.end();
    expect(rows).toEqual([{ id: 42 }]);
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});

/** The local addresses of the TCP sockets listening on `port`, from the kernel's tables (Linux). */
async function listeningOn(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const addresses: string[] = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    const table = await readFile(file, 'utf8').catch(() => '');
    for (const line of table.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local?.endsWith(`:${hexPort}`)) continue; // 0A: LISTEN
      const hex = local.slice(0, local.indexOf(':'));
      // each 32-bit word is in host (little-endian) order
      const bytes = hex.match(/../g)!.map((b) => parseInt(b, 16));
      const words = Array.from({ length: bytes.length / 4 }, (_, w) => bytes.slice(w * 4, w * 4 + 4).reverse());
      addresses.push(v6
        ? words.flat().reduce<string[]>((out, b, i) => (i % 2 ? (out[out.length - 1] += b.toString(16).padStart(2, '0')) : out.push(b.toString(16).padStart(2, '0')), out), []).join(':')
        : words[0]!.join('.'));
    }
  }
  return addresses;
}

describe('pgrelay start failures end with one sentence and exit code 1', () => {
  it('a port in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      // A reachable database is needed to get as far as binding the port: use the test server's.
      const { inject } = await import('vitest');
      const p = cli.run(['start'], { DATABASE_URL: inject('pgAdminUrl'), PORT: String(port), HOST: '127.0.0.1', RELAY_JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'warn' });
      expect(await p.exited).toBe(1);
      expect(p.output()).toContain(`pgrelay: Cannot listen on 127.0.0.1:${port}: the port is in use or not allowed; set PORT (or --port) to a free port.`);
      expect(p.output()).not.toMatch(/\n\s+at /);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('an unreachable DATABASE_URL', async () => {
    const port = await freePort();
    const p = cli.run(['start'], { DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/db`, RELAY_JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'warn' });
    expect(await p.exited).toBe(1);
    expect(p.output().trim()).toBe(`pgrelay: Cannot connect to the database at 127.0.0.1:${port}/db: connection refused (is Postgres running there?).`);
  });

  it('a bad configuration value names the variable and what it accepts', async () => {
    const p = cli.run(['start'], { PORT: 'eighty', DATABASE_URL: 'postgres://localhost/x' });
    expect(await p.exited).toBe(1);
    expect(p.output().trim()).toBe('pgrelay: PORT must be a TCP port number from 0 to 65535; got "eighty".');
  });
});

/**
 * The state directory (RELAY_DATA_DIR) of the describe block it is called in, made on first use and the same after; once
 * the block is done, its embedded cluster is stopped (see removeEmbedded) and its files removed.
 */
function useStateDir(): () => Promise<string> {
  let stateDir = '';
  afterAll(async () => {
    if (stateDir) await removeEmbedded(stateDir);
  });
  return async () => (stateDir ||= await mkdtemp(path.join(os.tmpdir(), 'pgrelay-start-')));
}

/** Stops the embedded cluster a test's `npm start` left behind (by its postmaster's pid) and removes its files. */
async function removeEmbedded(stateDir: string): Promise<void> {
  const state = JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8').catch(() => '{}')) as { dataDir?: string };
  if (state.dataDir) {
    const pid = Number((await readFile(path.join(state.dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) {
      const gone = () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // gone already
      }
      // up to 5 s; the files go in any case
      await until(gone, { what: `postmaster ${pid} to exit`, timeoutMs: 5_000, intervalMs: 50 }).catch(() => undefined);
    }
    if (!state.dataDir.startsWith(stateDir)) await rm(path.dirname(state.dataDir), { recursive: true, force: true });
  }
  await rm(stateDir, { recursive: true, force: true });
}

async function readyz(port: number): Promise<number> {
  return (await httpGet(`http://127.0.0.1:${port}/readyz`).catch(() => ({ status: 0 }))).status;
}

async function embeddedStart(stateDir: string) {
  const port = await freePort();
  const p = cli.run(['start'], { RELAY_DATA_DIR: stateDir, PORT: String(port), HOST: '127.0.0.1' });
  await p.waitFor(/pgrelay listening on/, 120_000);
  return Object.assign(p, { port });
}

async function postmasterPid(stateDir: string): Promise<number> {
  const { dataDir } = JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8')) as { dataDir: string };
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

describe('issue 12: the embedded Postgres belongs to the npm start that started it', () => {
  const getStateDir = useStateDir();

  it('a second npm start attaches, and stopping it leaves the first one serving', async () => {
    const stateDir = await getStateDir();
    const first = await embeddedStart(stateDir);
    const second = await embeddedStart(stateDir);
    expect(second.output()).toMatch(/attached to the embedded Postgres another npm start owns/);
    second.signal('SIGINT');
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(/embedded Postgres left running: it belongs to the npm start that started it/);
    expect(second.output()).not.toMatch(/embedded Postgres stopped/);

    const url = (await readFile(path.join(stateDir, 'database-url'), 'utf8')).trim();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await c.end();
    expect(await readyz(first.port)).toBe(200);

    first.signal('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/embedded Postgres stopped/);
  }, 300_000);
});

describe('issue 12: when the embedded Postgres dies', () => {
  const getStateDir = useStateDir();

  it('its owner restarts it, /readyz answers 503 until the relay has caught up, and says so in the log', async () => {
    const stateDir = await getStateDir();
    const relay = await embeddedStart(stateDir);
    await until(async () => (await readyz(relay.port)) === 200, { what: 'ready', timeoutMs: 60_000, intervalMs: 50 });
    const caughtUp = count(relay.output(), /"msg":"caught up"/);
    process.kill(await postmasterPid(stateDir), 'SIGINT'); // a fast shutdown behind the relay's back
    await relay.waitFor(/restarting the embedded Postgres \(attempt 1 of 5\)/, 60_000);
    await relay.waitFor(/"msg":"embedded Postgres restarted"/, 60_000);
    await until(() => count(relay.output(), /"msg":"caught up"/) > caughtUp, { what: 'a caught up line after the recovery', timeoutMs: 60_000, intervalMs: 50 });
    expect(relay.output()).toMatch(/"msg":"not ready: the database is unreachable/);
    expect(await readyz(relay.port)).toBe(200);
    // issue 22: the LISTEN session's reconnect runs its LISTENs without pg's "client is already executing a query" warning
    expect(relay.output()).not.toMatch(/DeprecationWarning/);
    relay.signal('SIGINT');
    expect(await relay.exited).toBe(0);
  }, 300_000);

  it('gives up after bounded attempts and exits 1 with one sentence; /readyz answers 503 meanwhile', async () => {
    const stateDir = await getStateDir();
    const relay = await embeddedStart(stateDir);
    const { dataDir } = JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8')) as { dataDir: string };
    // A configuration the running server has not read yet and no restart can accept.
    await appendFile(path.join(dataDir, 'postgresql.conf'), '\nthis line is not a setting\n');
    process.kill(await postmasterPid(stateDir), 'SIGINT');
    await until(async () => (await readyz(relay.port)) === 503, { what: '/readyz to answer 503', timeoutMs: 60_000, intervalMs: 50 });
    expect(await relay.exited).toBe(1);
    const last = relay.stderr().trim().split('\n').at(-1)!;
    expect(last).toMatch(/^pgrelay: The embedded Postgres in \S+ stopped and could not be restarted after 5 attempts \(.+\); see \S+postgres\.log, then start pgrelay again\.$/);
  }, 300_000);
});

describe('issue 16: a start that fails after the embedded Postgres is up', () => {
  const getStateDir = useStateDir();

  it('stops the embedded Postgres it started, and leaves one that another npm start owns running', async () => {
    const stateDir = await getStateDir();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const blocked = (blocker.address() as net.AddressInfo).port;
    const env = { RELAY_DATA_DIR: stateDir, PORT: String(blocked), HOST: '127.0.0.1', LOG_LEVEL: 'info', LOG_FORMAT: 'json' };
    try {
      // The port is taken: start fails only after it has started Postgres and migrated it.
      const failed = cli.run(['start'], env);
      expect(await failed.exited).toBe(1);
      expect(failed.output()).toMatch(/"msg":"applied \d+ migration/);
      expect(failed.stderr().trim().split('\n').at(-1)).toBe(`pgrelay: Cannot listen on 127.0.0.1:${blocked}: the port is in use or not allowed; set PORT (or --port) to a free port.`);
      expect(failed.output()).toMatch(/"msg":"embedded Postgres stopped"/);
      const { dataDir, port } = JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8')) as { dataDir: string; port: number };
      expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
      expect(await refusesConnections(port)).toBe(true);

      // The same failure in a second npm start, attached to a cluster the first one owns: the owner keeps its Postgres.
      const owner = await embeddedStart(stateDir);
      const attached = cli.run(['start'], env);
      expect(await attached.exited).toBe(1);
      expect(attached.output()).toMatch(/embedded Postgres left running: it belongs to the npm start that started it/);
      expect(await readyz(owner.port)).toBe(200);
      owner.signal('SIGINT');
      expect(await owner.exited).toBe(0);
      expect(owner.output()).toMatch(/embedded Postgres stopped/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 300_000);
});

/** Nothing listens on 127.0.0.1:`port`. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}
