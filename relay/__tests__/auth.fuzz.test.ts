// Upgrade authentication under fuzzing: random, mutated, alg-confused, kid-injected, oversized and oddly-claimed tokens are refused with HTTP 401 (counted), never upgraded, never crash the relay, and cost no database query.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import type pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTenantTable, leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { budget, fuzzSeed, reportFigures } from './support/fuzz-budget.js';
import { headerSafe, pool, rawUpgrade, type UpgradeOutcome } from './support/raw-upgrade.js';
import { connect, httpGet, SECRET, startTestRelay, token, type TestRelay } from './support/relay-harness.js';
import { warmRelayPool } from './support/warm-pool.js';

const db = useTestDatabase();
let relay: TestRelay;
let valid = '';

beforeAll(async () => {
  await createTenantTable(db, 'au');
  await db.query(`create table au_g (id serial primary key); select relay.watch('au_g', null)`);
  relay = await startTestRelay(db);
  valid = await token({ tenant_id: 't' });
});
beforeEach(() => warmRelayPool(relay.url, 'au'));
leakGuard(() => db.name);

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** A JWT from a header and payload (any JSON values), HMAC-signed with `key`. */
function hmacToken(header: unknown, payload: unknown, key: string | Buffer = SECRET, hash = 'sha256'): string {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
}

async function authFailures(): Promise<number> {
  const text = (await httpGet(`${relay.http}/metrics`)).body;
  return [...text.matchAll(/^pgrelay_auth_failures_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

const figures: Record<string, number> = {};
const tally = (k: string, n = 1) => (figures[k] = (figures[k] ?? 0) + n);

/** Tries `t` as a subprotocol when a header can carry it, else (and also, for every tenth) as ?token=. */
async function attempt(t: string, kind: string): Promise<UpgradeOutcome> {
  const via = headerSafe(t) && !t.includes(',') ? 'protocol' : 'query';
  const out = await rawUpgrade(relay.port, t, via);
  tally(kind);
  if (out.status === 401) tally('refused with 401');
  return out;
}

/** The same token with its signature spelled differently but decoding to the same bytes (base64url's spare low bits): one token, not a mutation. */
function sameToken(a: string, b: string): boolean {
  const [ah, ap, as] = a.split('.');
  const [bh, bp, bs, extra] = b.split('.');
  return extra === undefined && ah === bh && ap === bp && /^[\w-]*$/.test(bs ?? '!') && Buffer.from(as!, 'base64url').equals(Buffer.from(bs!, 'base64url'));
}

const expect401 = (out: UpgradeOutcome, what: string) => expect(out.status, `${what}: ${JSON.stringify(out).slice(0, 200)}`).toBe(401);

describe('hostile tokens at the upgrade', () => {
  let failuresBefore = 0;
  beforeAll(async () => {
    failuresBefore = await authFailures();
  });

  it('random strings and base64 garbage', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: fc.constantFrom(...'aZ09-_.=+/ '.split('')), maxLength: 200 })), async (t) => {
      expect401(await attempt(t, 'random string'), JSON.stringify(t));
    }), { numRuns: budget(300), ...fuzzSeed() });
    await fc.assert(fc.asyncProperty(fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 40 }), fc.jsonValue()), async ([h, p, s, j]) => {
      const segs = [Buffer.from(h).toString('base64url'), Buffer.from(p).toString('base64url'), Buffer.from(s).toString('base64url')];
      expect401(await attempt(segs.join('.'), 'base64 garbage'), segs.join('.'));
      // well-formed JSON segments with an HS256 header and a random signature
      const t = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(j)}.${segs[2]}`;
      expect401(await attempt(t, 'base64 garbage'), t);
    }), { numRuns: budget(150), ...fuzzSeed() });
  });

  it('bit flips of a valid token, in its text and in its decoded segments', async () => {
    let same = 0;
    await fc.assert(fc.asyncProperty(fc.nat(), fc.nat({ max: 7 }), fc.boolean(), fc.nat({ max: 2 }), async (pos, bit, inText, segment) => {
      let t: string;
      if (inText) {
        const bytes = Buffer.from(valid, 'latin1');
        bytes[pos % bytes.length]! ^= 1 << bit;
        t = bytes.toString('latin1');
      } else {
        const segs = valid.split('.');
        const bytes = Buffer.from(segs[segment]!, 'base64url');
        bytes[pos % bytes.length]! ^= 1 << bit;
        segs[segment] = bytes.toString('base64url');
        t = segs.join('.');
      }
      const out = await attempt(t, 'bit flip');
      if (sameToken(valid, t)) {
        same++;
        expect([101, 401], t).toContain(out.status);
      } else expect401(out, `flipped ${JSON.stringify(t)}`);
    }), { numRuns: budget(600), ...fuzzSeed() });
    tally('bit flip decoding to the same token', same);
  });

  it('alg confusion: none, other HMACs, asymmetric algorithms keyed with the HMAC secret, odd headers', async () => {
    const claims = { tenant_id: 't', exp: inAnHour() };
    const input = (h: unknown) => `${b64(h)}.${b64(claims)}`;
    const cases: Array<[string, string]> = [
      ['alg none, no signature', `${input({ alg: 'none', typ: 'JWT' })}.`],
      ['alg none with an HS256 signature', `${input({ alg: 'none' })}.${createHmac('sha256', SECRET).update(input({ alg: 'none' })).digest('base64url')}`],
      ...['None', 'NONE', 'nOnE', 'hs256', 'HS256 ', ' HS256', 'HS512', 'HS384', 'RS256', 'RS512', 'PS256', 'ES256', 'EdDSA', ''].map((alg): [string, string] => [`alg ${JSON.stringify(alg)} keyed with the secret`, hmacToken({ alg }, claims)]),
      ['HS512 signed with SHA-512', hmacToken({ alg: 'HS512' }, claims, SECRET, 'sha512')],
      ['HS384 signed with SHA-384', hmacToken({ alg: 'HS384' }, claims, SECRET, 'sha384')],
      ...[null, ['HS256'], { alg: 'HS256' }, 256, true].map((alg): [string, string] => [`alg ${JSON.stringify(alg)}`, hmacToken({ alg }, claims)]),
      ['no alg', hmacToken({ typ: 'JWT' }, claims)],
      ['crit header', hmacToken({ alg: 'HS256', crit: ['exp'] }, claims)],
      ['b64: false', hmacToken({ alg: 'HS256', b64: false, crit: ['b64'] }, claims)],
      ['header is an array', hmacToken(['HS256'], claims)],
      ['header is a string', hmacToken('HS256', claims)],
      ['embedded attacker jwk', hmacToken({ alg: 'HS256', jwk: { kty: 'oct', k: b64('attacker-key-attacker-key-attacker-key') } }, claims, 'attacker-key-attacker-key-attacker-key')],
      ['jku pointing elsewhere, signed by the attacker', hmacToken({ alg: 'HS256', jku: 'http://127.0.0.1:1/jwks.json' }, claims, 'attacker')],
      ['two dots too many', `${valid}.extra`],
      ['signature dropped', valid.slice(0, valid.lastIndexOf('.') + 1)],
      ['payload swapped from another valid token', (() => { const [h, , s] = valid.split('.'); return `${h}.${b64({ tenant_id: 'u', exp: inAnHour() })}.${s}`; })()],
    ];
    for (const [name, t] of cases) {
      expect401(await attempt(t, 'alg confusion'), name);
      expect401(await rawUpgrade(relay.port, t, 'query'), `${name} (?token=)`);
      tally('alg confusion');
      tally('refused with 401');
    }
  });

  it('kid games with keys an attacker controls: path traversal, SQL, huge, typed kids', async () => {
    const kids: unknown[] = ['../../../../../../dev/null', '/dev/null', "' OR '1'='1", "x'; drop table relay.changes; --", 'x'.repeat(6000), '', null, 123, {}, ['a'], '\u0000', '%00', 'file:///etc/passwd', 'http://127.0.0.1:1/jwks.json', '__proto__'];
    for (const kid of kids) {
      for (const key of ['', 'null', 'attacker-key-attacker-key-attacker-key', typeof kid === 'string' ? kid : String(JSON.stringify(kid))]) {
        const t = hmacToken({ alg: 'HS256', kid }, { tenant_id: 't', exp: inAnHour() }, key);
        expect401(await attempt(t, 'kid game'), `kid ${JSON.stringify(kid).slice(0, 40)} key ${JSON.stringify(key).slice(0, 40)}`);
      }
    }
    expect((await db.query(`select to_regclass('relay.changes') is not null as ok`)).rows[0]!.ok).toBe(true);
  });

  it('oversized tokens: 401 up to what an HTTP header holds, never an upgrade beyond', async () => {
    for (const size of [8193, 9000, 16_384, 65_536, 100_000]) {
      const t = hmacToken({ alg: 'HS256' }, { tenant_id: 't', exp: inAnHour(), pad: 'x'.repeat(Math.ceil((size * 3) / 4)) });
      expect401(await rawUpgrade(relay.port, t, 'protocol'), `a ${t.length}-byte token as subprotocol`);
      expect401(await rawUpgrade(relay.port, t, 'query'), `a ${t.length}-byte token as ?token=`);
      tally('oversized', 2);
      tally('refused with 401', 2);
    }
    const huge = await rawUpgrade(relay.port, 'a'.repeat(1_000_000), 'protocol');
    expect(huge.status, JSON.stringify(huge)).not.toBe(101);
    tally('oversized, 1 MB header: connection dropped without upgrade', huge.status === 0 ? 1 : 0);
    if (huge.status === 401) tally('refused with 401');
    tally('oversized');
  });

  it('odd claims, correctly signed: refused, or accepted with no more than the claims grant', async () => {
    const mustRefuse: Array<[string, Record<string, unknown>]> = [
      ['tenant as object', { tenant_id: { id: 't' } }], ['tenant as array', { tenant_id: ['t'] }], ['tenant as true', { tenant_id: true }],
      ['tenant as a huge number', { tenant_id: 1e300 }], ['tenant as 2^53', { tenant_id: 2 ** 53 }], ['tenant as a fraction', { tenant_id: 1.5 }],
      ['tenant empty', { tenant_id: '' }], ['tenant of 257 characters', { tenant_id: 'x'.repeat(257) }],
      ['tables as a string', { tenant_id: 't', tables: 'au' }], ['tables as objects', { tenant_id: 't', tables: [{ name: 'au' }] }], ['tables as numbers', { tenant_id: 't', tables: [1] }],
      ['tables with an empty name', { tenant_id: 't', tables: [''] }], ['tables as an object', { tenant_id: 't', tables: { au: true } }],
      ['all_tenants "true" without tenant', { all_tenants: 'true' }], ['all_tenants 1 without tenant', { all_tenants: 1 }], ['all_tenants [true] without tenant', { all_tenants: [true] }],
      ['exp as a string', { tenant_id: 't', exp: String(inAnHour()) }], ['exp in the past', { tenant_id: 't', exp: 1 }], ['exp null', { tenant_id: 't', exp: null }],
      ['nbf in the future', { tenant_id: 't', nbf: inAnHour() }], ['nbf as a string', { tenant_id: 't', nbf: '0' }], ['iat as a string', { tenant_id: 't', iat: 'now' }],
      ['no tenant', { sub: 'someone' }], ['tenant null', { tenant_id: null }],
    ];
    for (const [name, claims] of mustRefuse) {
      const t = hmacToken({ alg: 'HS256', typ: 'JWT' }, { exp: inAnHour(), ...claims });
      expect401(await attempt(t, 'odd claims'), name);
    }
    // non-object payloads and duplicate keys, signed
    for (const payload of ['[]', '"t"', '7', 'null', '{"tenant_id":"t"']) {
      const input = `${b64({ alg: 'HS256' })}.${Buffer.from(payload).toString('base64url')}`;
      expect401(await attempt(`${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`, 'odd claims'), `payload ${payload}`);
    }

    // random claims: whatever is accepted must grant exactly what the claims say, never more
    const hostile = fc.constantFrom<unknown>(undefined, null, true, false, 'true', 0, -1, 7, 1.5, 1e300, '', 't', 'u', '*', 'x'.repeat(300), [], ['t'], {}, { tenant_id: 't' });
    const tablesArb = fc.constantFrom<unknown>(undefined, null, 'au', [], ['au'], ['public.au'], ['au_g'], ['au', 'au_g'], [''], [1], [{}], Array.from({ length: 1001 }, () => 'au'));
    let accepted = 0;
    await fc.assert(fc.asyncProperty(fc.record({ tenant_id: hostile, all_tenants: hostile, tables: tablesArb, exp: fc.constantFrom<unknown>(undefined, inAnHour(), '9999999999', 1e308, -1) }), async (raw) => {
      const claims = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
      const t = hmacToken({ alg: 'HS256' }, claims);
      const out = await attempt(t, 'random claims');
      expect([101, 401], JSON.stringify(claims)).toContain(out.status);
      if (out.status !== 101) return;
      accepted++;
      const tenant = typeof raw.tenant_id === 'string' && raw.tenant_id !== '' ? raw.tenant_id : typeof raw.tenant_id === 'number' && Number.isSafeInteger(raw.tenant_id) ? String(raw.tenant_id) : null;
      const all = raw.all_tenants === true;
      expect(tenant !== null || all, `accepted without a tenant or all_tenants: ${JSON.stringify(claims)}`).toBe(true);
      const c = await connect(relay.url, t);
      try {
        expect(await c.next((f) => f.type === 'welcome'), JSON.stringify(claims)).toMatchObject({ tenant });
        const grants = (table: string) => (!Array.isArray(raw.tables) || raw.tables.some((x) => x === table || x === `public.${table}`)) && (table !== 'au_g' || all);
        for (const table of ['au', 'au_g']) {
          c.send({ type: 'subscribe', id: table, table });
          const answer = await c.next((f) => (f.type === 'subscribed' || f.type === 'error') && f.id === table);
          expect(answer.type, `${table} with ${JSON.stringify(claims)}`).toBe(grants(table) ? 'subscribed' : 'error');
        }
      } finally {
        await c.close();
      }
    }), { numRuns: budget(300), ...fuzzSeed() });
    tally('random claims accepted (and checked for widening)', accepted);
  });

  it('every refusal was counted in pgrelay_auth_failures_total, and the relay still serves', async () => {
    expect(await authFailures()).toBe(failuresBefore + figures['refused with 401']!);
    expect((await httpGet(`${relay.http}/healthz`)).status).toBe(200);
    const c = await connect(relay.url, valid);
    expect(await c.next((f) => f.type === 'welcome')).toMatchObject({ tenant: 't' });
    await c.close();
  });
});

describe('refused upgrades cost the database nothing', () => {
  /** Every session on this database except ours, with when it last started a query: a new or changed entry is a query. */
  async function sessions(c: pg.Client): Promise<Map<number, string>> {
    const { rows } = await c.query(`select pid, application_name, backend_start, query_start, state_change, query from pg_stat_activity
                                    where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()`);
    return new Map(rows.map((r) => [r.pid as number, `${r.application_name}|${r.backend_start?.toISOString()}|${r.query_start?.toISOString()}|${r.state_change?.toISOString()}|${r.query}`]));
  }
  // the LISTEN session's own health check (pg-listen, every 10 s whatever the traffic) and the ticker's polling (its own
  // pace, whatever the sockets do) are not queries an upgrade caused
  const heartbeat = (v: string) => (v.startsWith('pgrelay-listener|') && v.endsWith('|SELECT pg_backend_pid()')) || v.startsWith('pgrelay-ticker|');
  const queried = (a: Map<number, string>, b: Map<number, string>) =>
    [...b].filter(([pid, v]) => a.get(pid) !== v && !heartbeat(v)).map(([, v]) => v.split('|')[0]);

  it('500 refused upgrades start no query on any relay session (pg_stat_activity), against a control window of the same length', async () => {
    const c = await db.connect();
    try {
      const bad = [
        'garbage', hmacToken({ alg: 'HS256' }, { tenant_id: 't', exp: inAnHour() }, 'wrong-secret'), hmacToken({ alg: 'none' }, { tenant_id: 't' }),
        hmacToken({ alg: 'HS256' }, { tenant_id: 't', exp: 1 }), hmacToken({ alg: 'HS256' }, { tenant_id: { a: 1 } }), 'a'.repeat(9000),
      ];
      const n = budget(500);
      // a notification just before each window keeps the change feed's idle poll (every 5 s without traffic) out of it
      const window = async (work: () => Promise<void>) => {
        await c.query(`insert into au (tenant_id) values ('quiet')`);
        await sleep(150);
        const before = await sessions(c);
        const t0 = Date.now();
        await work();
        const after = await sessions(c);
        return { queries: queried(before, after), ms: Date.now() - t0 };
      };
      const refused = await window(async () => {
        const outs = await pool(n, 16, (i) => rawUpgrade(relay.port, bad[i % bad.length]!, i % 2 ? 'query' : 'protocol'));
        expect(outs.every((o) => o.status === 401)).toBe(true);
      });
      const control = await window(() => sleep(refused.ms));
      // the probe sees a query when there is one: one accepted socket asking for a snapshot
      const positive = await window(async () => {
        const s = await connect(relay.url, valid);
        s.send({ type: 'subscribe', id: 'snap', table: 'au', snapshot: true });
        await s.next((f) => f.type === 'snapshot');
        await s.close();
      });
      Object.assign(figures, { 'refused upgrades in the database window': n, 'database window ms': refused.ms, 'sessions that queried during refusals': refused.queries.length, 'sessions that queried during control': control.queries.length });
      expect(positive.queries.length, 'the probe must notice a snapshot query').toBeGreaterThan(0);
      expect(refused.queries.length, `sessions that ran a query while ${n} upgrades were refused: ${refused.queries.join(', ')}`).toBeLessThanOrEqual(control.queries.length);
      expect(refused.queries).toEqual([]);
    } finally {
      await c.end();
    }
  }, 60_000);
});

describe('figures', () => {
  it('reports', () => reportFigures('auth', figures));
});
