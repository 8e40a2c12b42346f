// Issue 25: two relays behind a real nginx, configured with the block docs/operations.md shows, TLS included; clients on
// WebSocket and on SSE follow a table through it while one relay is SIGKILLed and started again: every change once, in order.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { changes, createOrders, leakGuard, sleep, until, useTestDatabase, writeOrders } from '../../db/testing/index.js';
import { loadConfig } from '../ops/config.js';
import { heartbeatSeconds } from '../edge/sse.js';
import { relayEnv, repoRoot, runCli, type CliProcess } from './support/cli-process.js';
import type { FollowerCommand, FollowerReply, FollowerReport } from './support/proxy-followers.js';
import { allNumbered, SECRET } from './support/relay-harness.js';

const DOCS = path.join(repoRoot, 'docs/operations.md');
const TENANTS = ['a', 'b'];

/** The ```nginx block of the docs' "Behind a reverse proxy: nginx" section, as an operator copies it. */
function documentedConfig(): string {
  const md = readFileSync(DOCS, 'utf8');
  const section = md.slice(md.indexOf('\n## Behind a reverse proxy: nginx\n'));
  const block = /```nginx\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('docs/operations.md has no ```nginx block under "## Behind a reverse proxy: nginx"');
  return block;
}

function which(cmd: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`]).stdout?.toString().trim();
  return found || undefined;
}
const nginx = which('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
const openssl = which('openssl');
const skipped = !nginx
  ? 'nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)'
  : !openssl ? 'openssl is not installed, and the documented configuration terminates TLS' : undefined;
if (skipped) console.warn(`relay/__tests__/proxy.nginx.test.ts: skipped: ${skipped}`);

describe('the documented nginx configuration', () => {
  it('keeps every proxied connection open longer than the relay and the client stay silent', () => {
    const conf = documentedConfig();
    const timeouts = [...conf.matchAll(/proxy_read_timeout (\d+)s;/g)].map((m) => Number(m[1]));
    expect(timeouts.length).toBe(2); // /ws and /sse
    const idle = loadConfig({ DATABASE_URL: 'postgres://relay@db.internal/app' }).idleTimeout;
    // the relay pings a WebSocket silent for half its idle timeout, and an SSE stream every heartbeatSeconds; the client pings after 20 s
    const longestSilence = Math.max(idle / 2, heartbeatSeconds(idle), 20);
    for (const t of timeouts) expect(t).toBeGreaterThanOrEqual(2 * longestSilence);
    // the three things proxies break, written where they apply
    expect(conf).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(conf).toMatch(/location = \/sse \{[^}]*proxy_buffering off;/);
    expect(conf).toMatch(/proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/);
    // a location with a proxy_set_header of its own would inherit none of the server's
    for (const location of conf.matchAll(/location [^{]+\{([^}]*)\}/g)) expect(location[1]).not.toMatch(/proxy_set_header/);
  });
});

describe.skipIf(skipped !== undefined)(`two relays behind nginx${skipped ? ` (skipped: ${skipped})` : ''}`, () => {
  const db = useTestDatabase();
  let dir = '';
  let cert = '';
  let proxy: ChildProcess | undefined;
  let proxyPort = 0;
  let followers: ChildProcess | undefined;
  const relays: Array<{ port: number; process: CliProcess }> = [];
  const env = (port: number) => relayEnv(db, port, { LOG_FORMAT: 'json' });

  beforeAll(async () => {
    await createOrders(db, { columns: { n: 'int' } });
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-nginx-'));
    await chmod(dir, 0o755);
    await mkdir(path.join(dir, 'tmp'), { mode: 0o777 });
    await chmod(path.join(dir, 'tmp'), 0o777); // nginx's workers run as an unprivileged user
    cert = path.join(dir, 'relay.pem');
    const key = path.join(dir, 'relay.key');
    execFileSync(openssl!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });

    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      relays.push({ port, process: runCli(['start'], env(port)) });
    }
    await Promise.all(relays.map((r) => r.process.waitFor(/pgrelay listening on/)));

    // the documented block, with this machine's addresses, ports and certificate: nothing else changes
    proxyPort = await freePort();
    let conf = documentedConfig();
    const upstreams = conf.match(/^ {4}server 10\.0\.0\.\d+:8080 (.*);$/gm) ?? [];
    expect(upstreams).toHaveLength(2);
    upstreams.forEach((line, i) => (conf = conf.replace(line, line.replace(/10\.0\.0\.\d+:8080/, `127.0.0.1:${relays[i]!.port}`))));
    const replace = (from: RegExp, to: string) => {
      expect(conf.match(new RegExp(from.source, 'gm'))?.length, String(from)).toBe(1);
      conf = conf.replace(new RegExp(from.source, 'm'), to);
    };
    replace(/^ {4}listen 443 ssl;$/, `    listen 127.0.0.1:${proxyPort} ssl;`);
    replace(/^ {4}ssl_certificate {5}\S+;$/, `    ssl_certificate     ${cert};`);
    replace(/^ {4}ssl_certificate_key \S+;$/, `    ssl_certificate_key ${key};`);
    await writeFile(path.join(dir, 'pgrelay.conf'), conf);
    const tmp = path.join(dir, 'tmp');
    await writeFile(path.join(dir, 'nginx.conf'), [
      'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log info;`,
      'events { worker_connections 1024; }',
      'http {',
      `  access_log ${dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${tmp}/${t};`),
      `  include ${dir}/pgrelay.conf;`,
      '}',
    ].join('\n'));
    const check = spawnSync(nginx!, ['-t', '-p', dir, '-c', `${dir}/nginx.conf`, '-e', `${dir}/error.log`]);
    expect(check.status, check.stderr.toString()).toBe(0);
    proxy = spawn(nginx!, ['-p', dir, '-c', `${dir}/nginx.conf`, '-e', `${dir}/error.log`], { stdio: 'ignore' });
    await until(async () => (await status('/healthz')) === 200, { what: () => `nginx to answer:\n${readFileSync(`${dir}/error.log`, 'utf8')}`, timeoutMs: 10_000, intervalMs: 50 });
  }, 120_000);

  afterAll(async () => {
    followers?.kill('SIGKILL');
    if (proxy?.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((r) => proxy!.once('exit', r));
    }
    for (const r of relays) {
      r.process.signal('SIGKILL');
      await r.process.exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  leakGuard(() => db.name);

  /** GET through the proxy (TLS, the test's certificate), on a connection of its own. */
  function request(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      https.get(`https://127.0.0.1:${proxyPort}${url}`, { ca: readFileSync(cert), agent: false, headers: { connection: 'close', ...headers } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
  }
  const status = async (url: string) => (await request(url)).status;

  it('passes /healthz, keeps /metrics from the clients, and hands the relay the client\'s address in X-Forwarded-For', async () => {
    expect(await request('/healthz')).toMatchObject({ status: 200 });
    expect(await request('/metrics')).toMatchObject({ status: 404 });
    // a refused token check is logged with the peer (nginx) and the client nginx saw
    expect(await request('/sse?table=orders', { authorization: 'Bearer not-a-token' })).toMatchObject({ status: 401 });
    await expect.poll(() => relays.some((r) => /"forwardedFor":"127\.0\.0\.1"/.test(r.process.output())), { timeout: 5000 }).toBe(true);
  });

  it('WebSocket and SSE clients follow a table through it while a relay is SIGKILLed and restarted: every change once, in order', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'relay/__tests__/support/proxy-followers.ts'], {
      cwd: repoRoot, env: { ...process.env, NODE_EXTRA_CA_CERTS: cert }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    followers = child;
    try {
      await followThroughKill(child);
    } finally {
      // its IPC channel is a handle of this process: gone before the leak check
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    }
  }, 120_000);

  async function followThroughKill(child: ChildProcess): Promise<void> {
    const inbox: FollowerReply[] = [];
    const replies = changes();
    child.on('message', (m) => {
      inbox.push(m as FollowerReply);
      replies.changed();
    });
    child.on('exit', () => replies.changed());
    const ask = async (cmd: FollowerCommand, type: FollowerReply['type'], timeoutMs = 60_000): Promise<FollowerReply> => {
      child.send(cmd);
      const m = await replies.until(() => {
        const i = inbox.findIndex((m) => m.type === type || m.type === 'error');
        if (i >= 0) return inbox.splice(i, 1)[0]!;
        if (child.exitCode !== null) throw new Error(`followers exited (${child.exitCode}) and sent no ${type}`);
        return undefined;
      }, { what: `the followers' ${type}`, timeoutMs });
      if (m.type === 'error') throw new Error(`followers: ${m.message}`);
      return m;
    };
    await ask({ type: 'start', url: `wss://127.0.0.1:${proxyPort}/ws`, secret: SECRET, tenants: TENANTS, perTransport: 6 }, 'ready');

    // a writer at about 100 transactions a second, through the kill and the restart
    const writer = writeOrders(db, (n) => TENANTS[n % TENANTS.length]!, { pauseMs: 10 });
    await sleep(2000);
    const victim = relays[0]!;
    victim.process.signal('SIGKILL');
    expect(await victim.process.exited).toBe('SIGKILL');
    await sleep(1500);
    victim.process = runCli(['start'], env(victim.port));
    await victim.process.waitFor(/pgrelay listening on/);
    await sleep(3000);
    await writer.stop();

    // everything committed is numbered; then every client must reach its tenant's last transaction
    const last = await allNumbered(db);
    const expectedFor = async (tenant: string, after: number) => (await db.query<{ seq: number }>(
      `select distinct t.seq::int as seq from relay.transactions t join relay.changes c using (txid)
       where c.tenant = $1 and c.table_name = 'orders' and t.seq > $2 and t.seq <= $3 order by 1`, [tenant, after, last])).rows.map((r) => r.seq);
    let clients: FollowerReport[] = [];
    let behind: FollowerReport[] = [];
    await until(async () => {
      clients = (await ask({ type: 'report' }, 'report') as Extract<FollowerReply, { type: 'report' }>).clients;
      behind = [];
      for (const c of clients) {
        const want = await expectedFor(c.tenant, c.start);
        if (want.length && !c.applied.some(([seq]) => seq === want.at(-1))) behind.push(c);
      }
      return behind.length === 0;
    }, { what: () => `every client at its tenant's last transaction (${behind.length} behind: ${behind.map((c) => `${c.transport} ${c.tenant}`).join(', ')})`, timeoutMs: 30_000, intervalMs: 500 });

    const lines: string[] = [];
    for (const transport of ['websocket', 'sse'] as const) {
      const tally = { clients: 0, changes: 0, transactions: 0, lost: 0, duplicated: 0, reordered: 0, reconnected: 0 };
      for (const c of clients.filter((x) => x.transport === transport)) {
        const want = await expectedFor(c.tenant, c.start);
        const seen = new Map<number, number>();
        let previous = -1;
        for (const [seq, changes] of c.applied) {
          if (seq <= c.start) continue;
          seen.set(seq, (seen.get(seq) ?? 0) + 1);
          if (seq < previous) tally.reordered++;
          previous = Math.max(previous, seq);
          tally.changes += changes;
        }
        tally.clients++;
        tally.transactions += want.length;
        tally.lost += want.filter((s) => !seen.has(s)).length;
        tally.duplicated += [...seen.values()].reduce((n, k) => n + k - 1, 0);
        if (c.statuses.includes('reconnecting')) tally.reconnected++;
      }
      lines.push(`${transport.padEnd(9)} ${tally.clients} clients (${tally.reconnected} reconnected through nginx after the kill): ` +
        `${tally.changes} changes delivered of ${tally.transactions} expected, lost ${tally.lost}, duplicated ${tally.duplicated}, reordered ${tally.reordered}`);
      expect(tally, transport).toMatchObject({ lost: 0, duplicated: 0, reordered: 0 });
      expect(tally.changes).toBe(tally.transactions); // one change per transaction here
      expect(tally.transactions).toBeGreaterThan(6 * 150); // about 6.5 s of writes at ~100 tx/s over 2 tenants, per client ≥ 150
      // the relay that was killed served some of them: they went through nginx to the other one and came back
      expect(tally.reconnected, `${transport}: no client was on the killed relay`).toBeGreaterThan(0);
    }
    const version = spawnSync(nginx!, ['-v']).stderr.toString().trim().replace(/^nginx version: /, '');
    console.log(`${version} in front of 2 relays, one SIGKILLed and restarted; transactions up to seq ${last}:\n${lines.join('\n')}`);
  }
});
