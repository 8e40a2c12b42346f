// Inbound protocol fuzzing: random and mutated frames each get a documented answer, the relay keeps serving, memory stays bounded, and no frame crashes the process.
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { createTenantTable, keepWriting, leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { budget, fuzzSeed, reportFigures } from './support/fuzz-budget.js';
import { relayEnv, useCliProcesses, type CliProcess } from './support/cli-process.js';
import { connect, httpGet, metric, startTestRelay, token, type Frame, type TestClient, type TestRelay } from './support/relay-harness.js';
import { warmRelayPool } from './support/warm-pool.js';

const db = useTestDatabase();
let relay: TestRelay;
const MAX_MESSAGE = 16 * 1024;
const MAX_STRIKES = 10; // relay/routing/socket-writer.ts: refused messages before 4009
const ERROR_CODES = new Set(['bad_message', 'unknown_type', 'bad_subscription', 'unknown_table', 'table_not_allowed', 'bad_filter', 'duplicate_subscription', 'unknown_subscription', 'too_many_subscriptions', 'bad_token', 'tenant_mismatch', 'rate_limited', 'presence_not_allowed', 'internal']);
const ANSWERS = new Set(['error', 'subscribed', 'snapshot', 'reset', 'pong', 'tx']);

let goodToken = '';
let otherTenantToken = '';

beforeAll(async () => {
  await createTenantTable(db, 'fz', { columns: { n: 'int', amount: 'numeric', label: 'text', at: 'timestamptz', tags: 'jsonb', secret: 'text' }, excluded: ['secret'] });
  relay = await startTestRelay(db, { RELAY_RATE_LIMIT: '100000' });
  goodToken = await token({ tenant_id: 'f' });
  otherTenantToken = await token({ tenant_id: 'g' });
});
beforeEach(() => warmRelayPool(relay.url, 'fz'));
leakGuard(() => db.name);

// ---- the frames ----

/** One inbound frame and what we know about it. */
interface Fuzzed {
  kind: string;
  data: string | Uint8Array;
}

const WEIRD_VALUES: unknown[] = [
  -1, -0, 0, 1.5, 1e308, 2 ** 53, 2 ** 53 - 1, Number.MAX_SAFE_INTEGER, 4294967296, '1', 'NaN', 'Infinity', '', null, true, false, [], {}, [1], { $gt: 0 },
  '\u0000', '\u001f', '\ud800', '\u{1F600}', '__proto__', 'constructor', 'x'.repeat(129), 'x'.repeat(4000),
];
const IDS = ['', ' ', 's', 'a'.repeat(128), 'a'.repeat(129), '\u0000', '\u001f', '\u001fs', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '\u{1F600}', '#', '+', '/', '*', 'public.fz'];
const TABLES = ['', '.', 'public.', '.fz', 'fz', 'public.fz', 'FZ', 'Public.fz', 'relay.changes', 'relay.transactions', 'pg_catalog.pg_authid', 'public.fz;drop table fz', "fz'", '"fz"', 'public."fz"', 'x'.repeat(200), 'x'.repeat(201), 'fz\u0000', ' fz', '__proto__', 'constructor'];
const COLUMNS = ['n', 'amount', 'label', 'at', 'tags', 'secret', 'tenant_id', 'id', '__proto__', 'constructor', 'prototype', 'toString', '', '\u{1F600}', 'N'];
const OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'like', '__proto__', 'constructor', '$where', ''];
/** Raw JSON number spellings JSON.stringify cannot produce. */
const RAW_NUMBERS = ['1e999', '-1e999', '1E2', '0.0000001', '-0', '1.0', '123456789012345678901234567890', '5e-324'];

const nested = (depth: number, leaf: unknown, key?: string): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = key === undefined ? [v] : { [key]: v };
  return v;
};

const filterArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.dictionary(fc.constantFrom(...COLUMNS), fc.dictionary(fc.constantFrom(...OPS), fc.oneof(fc.constantFrom(...WEIRD_VALUES), fc.jsonValue({ maxDepth: 3 })), { maxKeys: 3 }), { maxKeys: 4 }),
  fc.record({ col: fc.constantFrom(...COLUMNS), n: fc.constantFrom(0, 1, 99, 100, 101, 1000) }).map(({ col, n }) => ({ [col]: { in: Array.from({ length: n }, (_, i) => i) } })),
  // deep, but inside what one process stack holds (deeper ones crash the relay: see the CLI test below)
  fc.record({ depth: fc.integer({ min: 1, max: 300 }), key: fc.option(fc.constantFrom('a', '__proto__')) }).map(({ depth, key }) => ({ tags: { eq: nested(depth, 1, key ?? undefined) } })),
  fc.constant({ tags: { eq: JSON.parse('{"__proto__":{"polluted":true}}') } }),
  fc.constant(JSON.parse('{"__proto__":{"eq":1},"n":{"eq":1}}')),
  fc.jsonValue({ maxDepth: 4 }),
);

const subscribeArb = fc.record({
  type: fc.constant('subscribe'),
  id: fc.oneof(fc.constantFrom(...IDS), fc.string({ maxLength: 12 })),
  table: fc.constantFrom(...TABLES),
  since: fc.option(fc.oneof(fc.constantFrom(...WEIRD_VALUES), fc.integer({ min: 0, max: 50 })), { nil: undefined }),
  filter: fc.option(filterArb, { nil: undefined }),
  snapshot: fc.option(fc.oneof(fc.boolean(), fc.constantFrom(...WEIRD_VALUES)), { nil: undefined }),
}, { requiredKeys: ['type'] });

const validArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  subscribeArb,
  fc.record({ type: fc.constant('unsubscribe'), id: fc.oneof(fc.constantFrom(...IDS), fc.string({ maxLength: 8 })) }),
  fc.record({ type: fc.constant('auth'), token: fc.oneof(fc.constant('GOOD'), fc.constant('OTHER_TENANT'), fc.string(), fc.constantFrom('a'.repeat(8192), 'a'.repeat(8193), 'x.y.z', '..', '')) }),
  fc.constant({ type: 'ping' }),
  // issue 14: the fuzzing token has no sub, so a join is refused (presence_not_allowed) and a leave is a quiet no-op
  fc.record({ type: fc.constant('presence'), join: fc.oneof(fc.boolean(), fc.constantFrom(...WEIRD_VALUES)) }),
);

/** A valid-looking message with one thing wrong: a field replaced, dropped or added (prototype keys included). */
const mutatedArb = fc.record({
  base: validArb,
  how: fc.constantFrom('replace', 'drop', 'add', 'type'),
  key: fc.constantFrom('type', 'id', 'table', 'since', 'filter', 'snapshot', 'token', '__proto__', 'constructor', 'prototype', 'tenant', 'tenant_id', 'all_tenants', 'tables', 'join', 'sub', 'name'),
  value: fc.oneof(fc.constantFrom(...WEIRD_VALUES), fc.jsonValue({ maxDepth: 2 })),
  type: fc.constantFrom('Subscribe', 'SUBSCRIBE', 'subscribe ', 'pong', 'welcome', 'tx', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'x'.repeat(5000)),
}).map(({ base, how, key, value, type }) => {
  const m: Record<string, unknown> = { ...base };
  if (how === 'replace' || how === 'add') Object.defineProperty(m, key, { value, enumerable: true, configurable: true, writable: true });
  else if (how === 'drop') delete m[key];
  else m.type = type;
  return m;
});

/** Message types that name Object.prototype members crash the relay (own failing test below): left out unless PGRELAY_FUZZ_KNOWN=1. */
const KNOWN = process.env.PGRELAY_FUZZ_KNOWN === '1';
const PROTOTYPE_MEMBERS = new Set(Object.getOwnPropertyNames(Object.prototype));
const crashesKnown = (f: Fuzzed) => {
  if (KNOWN || typeof f.data !== 'string') return false;
  try {
    const v = JSON.parse(f.data);
    return typeof v?.type === 'string' && PROTOTYPE_MEMBERS.has(v.type);
  } catch {
    return false;
  }
};

const resolveTokens = (m: Record<string, unknown>) => (m.token === 'GOOD' ? { ...m, token: goodToken } : m.token === 'OTHER_TENANT' ? { ...m, token: otherTenantToken } : m);

const frameArb: fc.Arbitrary<Fuzzed> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ kind: 'binary', data: b })) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }).map((s) => ({ kind: 'text', data: s })) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((s) => ({ kind: 'json', data: s })) },
  { weight: 4, arbitrary: validArb.map((m) => ({ kind: 'valid-shape', data: JSON.stringify(resolveTokens(m)) })) },
  { weight: 5, arbitrary: mutatedArb.map((m) => ({ kind: 'mutated', data: JSON.stringify(resolveTokens(m)) })) },
  {
    weight: 1,
    arbitrary: fc.record({ n: fc.constantFrom(...RAW_NUMBERS), field: fc.constantFrom('since', 'id', 'table', 'filter') }).map(({ n, field }) => ({
      kind: 'raw-number',
      data: `{"type":"subscribe","id":"r","table":"fz",${field === 'id' || field === 'table' ? `"since":0,"${field}":${n}` : field === 'filter' ? `"filter":{"amount":{"gt":${n}}}` : `"since":${n}`}}`,
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"type":"ping","type":"subscribe"}', '{"type":"subscribe","id":"d","id":"e","table":"fz"}', '\uFEFF{"type":"ping"}', ' {"type":"ping"} ', '{"type":"ping"}\u0000',
      '{"__proto__":{"type":"ping"}}', '{"constructor":{"prototype":{"polluted":true}},"type":"ping"}', '{"type":"auth","token":"x","__proto__":{"polluted":true}}',
      'null', 'true', '"ping"', '[{"type":"ping"}]', '{}', '{"type":null}', '{"type":1}', '{"type":["ping"]}',
    ).map((s) => ({ kind: 'odd-json', data: s })),
  },
  {
    // around the size limit, counted in bytes (multi-byte characters included)
    weight: 1,
    arbitrary: fc.record({ delta: fc.integer({ min: -2, max: 2 }), unit: fc.constantFrom('x', 'é', '\u{1F600}') }).map(({ delta, unit }) => {
      const head = '{"type":"subscribe","id":"big","table":"fz","filter":{"label":{"eq":"';
      const tail = '"}}}';
      const want = MAX_MESSAGE + delta - head.length - tail.length;
      const unitBytes = Buffer.byteLength(unit);
      let pad = unit.repeat(Math.floor(want / unitBytes));
      pad += 'x'.repeat(want - Buffer.byteLength(pad));
      return { kind: `size-${delta >= 0 ? '+' : ''}${delta}`, data: head + pad + tail };
    }),
  },
);

// ---- sending one frame and judging its answer ----

interface FuzzSocket {
  client: TestClient;
  strikes: number;
  subs: Set<string>;
  seen: number;
}

async function fuzzSocket(): Promise<FuzzSocket> {
  const client = await connect(relay.url, goodToken);
  await client.next((f) => f.type === 'welcome');
  return { client, strikes: 0, subs: new Set(), seen: client.frames.length };
}

const closedCode = async (c: TestClient, ms: number) => Promise.race([c.closed.then((x) => x.code), sleep(ms).then(() => undefined)]);

/** Sends one frame, then a ping; everything before the pong is the frame's answer. Returns the socket to use next. */
async function sendAndJudge(s: FuzzSocket, frame: Fuzzed, counts: Map<string, number>): Promise<FuzzSocket> {
  const { client } = s;
  const bytes = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.byteLength;
  let parsed: Record<string, any> | undefined;
  if (typeof frame.data === 'string') {
    try {
      const v = JSON.parse(frame.data);
      if (v && typeof v === 'object' && !Array.isArray(v)) parsed = v;
    } catch {
      // not JSON: the relay must say bad_message
    }
  }
  const start = client.frames.length;
  if (typeof frame.data === 'string') client.ws.send(frame.data);
  else client.ws.send(frame.data, { binary: true });
  client.ws.send('{"type":"ping"}');
  const pongs = () => client.frames.slice(start).filter((f) => f.type === 'pong').length;
  const closed = await Promise.race([
    client.until(() => pongs() >= 1, 10_000, 'the pong after a fuzzed frame').then(() => false),
    client.closed.then(() => true),
  ]);
  // a frame that is itself a ping is answered by a pong of its own, just before the barrier's
  if (!closed && parsed?.type === 'ping') await client.until(() => pongs() >= 2, 200).catch(() => undefined);
  const tally = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  const describeFrame = `${frame.kind} frame ${JSON.stringify(typeof frame.data === 'string' ? frame.data.slice(0, 300) : [...frame.data])}`;
  // async answers (snapshot, since) may come after the pong
  if (!closed && parsed?.type === 'subscribe' && typeof parsed.id === 'string') {
    const id = parsed.id.slice(0, 128);
    const answered = () => client.frames.slice(start).some((f) => (f.type === 'error' && (f.id === undefined || f.id === id)) || ((f.type === 'subscribed' || f.type === 'reset') && (f.id ?? f.sub) === id));
    await client.until(answered, 5_000, `an answer to ${describeFrame}`).catch(() => undefined);
  }
  const window = client.frames.slice(start);
  const barrier = window.map((f) => f.type).lastIndexOf('pong');
  const answer = window.filter((_, i) => i !== barrier);
  for (const f of answer) {
    expect(ANSWERS.has(f.type), `undocumented frame ${JSON.stringify(f)} after ${describeFrame}`).toBe(true);
    if (f.type === 'error') {
      expect(ERROR_CODES.has(f.code), `unknown error code in ${JSON.stringify(f)} after ${describeFrame}`).toBe(true);
      expect(typeof f.message === 'string' && f.message.length > 0 && f.message.length < 1000, `error message of ${JSON.stringify(f).slice(0, 300)}`).toBe(true);
      if (f.code !== 'rate_limited') s.strikes++;
    }
    if (f.type === 'subscribed') s.subs.add(f.id);
    if (f.type === 'reset') s.subs.delete(f.sub);
  }
  if (closed) {
    const { code } = await client.closed;
    tally(`close ${code}`);
    const allowed = [
      bytes > MAX_MESSAGE && code === 1009,
      s.strikes >= MAX_STRIKES && code === 4009,
      parsed?.type === 'auth' && parsed.token === otherTenantToken && code === 4003,
    ];
    expect(allowed.some(Boolean), `close ${code} after ${describeFrame} (strikes ${s.strikes}, ${bytes} bytes)`).toBe(true);
    return fuzzSocket();
  }
  expect(bytes <= MAX_MESSAGE, `a ${bytes}-byte frame was not closed with 1009: ${describeFrame}`).toBe(true);
  expect(s.strikes < MAX_STRIKES, `socket still open after ${s.strikes} refused messages`).toBe(true);
  const answers = answer.filter((f) => f.type !== 'tx' && f.type !== 'snapshot');
  for (const f of answers) tally(f.type === 'error' ? `error ${f.code}` : f.type);
  if (answers.length === 0) {
    // silence is the documented answer only to a successful unsubscribe or a same-scope auth
    const quiet = (parsed?.type === 'unsubscribe' && s.subs.delete(parsed.id)) || (parsed?.type === 'auth' && parsed.token === goodToken && Object.keys(parsed).length === 2) ||
      (parsed?.type === 'presence' && parsed.join === false && Object.keys(parsed).length === 2);
    expect(quiet, `no answer to ${describeFrame}`).toBe(true);
    tally('silent');
  }
  if (frame.kind === 'binary') expect(answers.map((f) => f.code), describeFrame).toEqual(['bad_message']);
  if (typeof frame.data === 'string' && parsed === undefined) expect(answers.map((f) => f.code), describeFrame).toEqual(['bad_message']);
  if (frame.kind === 'valid-shape' && parsed?.type === 'ping') expect(answers.map((f) => f.type), describeFrame).toEqual(['pong']);
  return s;
}

/** A client following tenant c while the fuzzing goes on; it must get every row. */
async function controlStream(): Promise<{ stop: () => Promise<void> }> {
  const control = await connect(relay.url, await token({ tenant_id: 'c' }));
  control.send({ type: 'subscribe', id: 'ctl', table: 'fz' });
  await control.next((f) => f.type === 'subscribed');
  const writer = keepWriting(db, (c, n) => c.query(`insert into fz (tenant_id, n) values ('c', $1)`, [n]), { pauseMs: 50 });
  return {
    stop: async () => {
      const written = await writer.stop();
      await control.until(() => control.txs('ctl').length >= written, 10_000, `the control client's ${written} rows`);
      expect(control.txs('ctl').map((f) => f.changes[0].row.n)).toEqual(Array.from({ length: written }, (_, i) => i));
      await control.close();
    },
  };
}

const figures: Record<string, unknown> = {};

describe('fuzzed frames', () => {
  it('every frame gets a documented answer or close code, and the relay keeps streaming to others', async () => {
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    const control = await controlStream();
    const counts = new Map<string, number>();
    const kinds = new Map<string, number>();
    let socket = await fuzzSocket();
    const numRuns = budget(1500);
    try {
      await fc.assert(fc.asyncProperty(frameArb.filter((f) => !crashesKnown(f)), async (frame) => {
        kinds.set(frame.kind.replace(/^size.*/, 'size-limit'), (kinds.get(frame.kind.replace(/^size.*/, 'size-limit')) ?? 0) + 1);
        socket = await sendAndJudge(socket, frame, counts);
      }), { numRuns, ...fuzzSeed(), endOnFailure: true });
    } finally {
      await socket.client.close();
      await control.stop();
      Object.assign(figures, { frames: numRuns, byKind: Object.fromEntries(kinds), answers: Object.fromEntries([...counts].sort()) });
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await httpGet(`${relay.http}/readyz`)).status).toBe(200);
  }, 120_000);

  it('memory stays bounded over 20,000 messages (subscribe/unsubscribe churn, refusals, auth, pings)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const heap = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const control = await controlStream();
    const bigIn = Array.from({ length: 99 }, (_, i) => `value-${i}-${'x'.repeat(20)}`);
    let sent = 0;
    const round = async (messages: number) => {
      const perSocket = 1000;
      for (let done = 0; done < messages; done += perSocket) {
        const c = await connect(relay.url, goodToken);
        let pings = 0;
        for (let i = 0; i < perSocket; i += 2) {
          const id = `${sent + i}-${'i'.repeat(100)}`;
          // a distinct filter per subscription: the router keeps one group per filter while subscribed
          c.send({ type: 'subscribe', id, table: 'fz', filter: { label: { in: [...bigIn, id] }, n: { gte: i } } });
          if (i % 50 === 0) c.send({ type: 'auth', token: goodToken });
          else if (i % 200 === 2) c.send('not json'); // refused: a strike; 5 per socket stays under the limit of 10
          else if (i % 50 === 4) {
            c.send({ type: 'ping' });
            pings++;
          } else c.send({ type: 'unsubscribe', id });
        }
        sent += perSocket;
        c.send({ type: 'ping' });
        await c.until(() => c.frames.filter((f) => f.type === 'pong').length > pings, 20_000, 'the last pong');
        expect(c.ws.readyState).toBe(c.ws.OPEN);
        c.frames.length = 0;
        await c.close();
      }
    };
    let before: number, after: number, rssBefore: number, rssAfter: number;
    try {
      await round(budget(4000)); // warm-up: code paths compiled, pools and caches at their working size
      before = heap();
      rssBefore = metric((await httpGet(`${relay.http}/metrics`)).body, 'process_resident_memory_bytes');
      await round(budget(20_000));
      after = heap();
      rssAfter = metric((await httpGet(`${relay.http}/metrics`)).body, 'process_resident_memory_bytes');
    } finally {
      await control.stop();
    }
    const text = (await httpGet(`${relay.http}/metrics`)).body;
    const growthMb = (after - before) / 2 ** 20;
    Object.assign(figures, { memoryMessages: sent, heapGrowthMb: Number(growthMb.toFixed(1)), rssGrowthMb: Number(((rssAfter - rssBefore) / 2 ** 20).toFixed(1)) });
    // every subscription was dropped again: nothing is left in the router's gauges
    expect(metric(text, 'pgrelay_subscriptions', '{table="public.fz"}')).toBe(0);
    expect(growthMb, `heap grew ${growthMb.toFixed(1)} MB over ${sent} messages`).toBeLessThan(24);
  }, 120_000);
});

describe('frames that crash the relay process', () => {
  const head = '{"type":"subscribe","id":"deep","table":"fz","filter":';
  const depth = Math.floor((MAX_MESSAGE - head.length - 40) / 2);
  const CASES: Array<[string, string, string]> = [
    [`a filter value nested ${depth} arrays deep (eq), within RELAY_MAX_MESSAGE`, `${head}{"tags":{"eq":${'['.repeat(depth)}${']'.repeat(depth)}}}}`, 'bad_filter'],
    [`a filter value nested ${depth} arrays deep (in), within RELAY_MAX_MESSAGE`, `${head}{"tags":{"in":[${'['.repeat(depth)}${']'.repeat(depth)}]}}}`, 'bad_filter'],
    ['a message of type "constructor" (or any Object.prototype member)', '{"type":"constructor"}', 'unknown_type'],
  ];
  // one relay process per frame (a crash ends it), all started at once to keep the file short
  const processes = useCliProcesses();
  const relays: Array<{ cli: CliProcess; port: number }> = [];
  beforeAll(async () => {
    for (const _ of CASES) {
      const port = await freePort();
      relays.push({ port, cli: processes.run(['start'], relayEnv(db, port)) });
    }
    await Promise.all(relays.map((r) => r.cli.waitFor(/pgrelay listening on/, 60_000)));
  }, 90_000);

  it.each(CASES.map(([name, frame, code], i) => [name, frame, code, i] as const))('%s is refused, and the relay process lives on', async (_name, frame, code, i) => {
    const { cli, port } = relays[i]!;
    const c = await connect(`ws://127.0.0.1:${port}/ws`, goodToken);
    c.send(frame);
    c.send({ type: 'ping' });
    const outcome = await Promise.race([
      c.next((f) => f.type === 'pong', 10_000).then(() => 'answered'),
      cli.exited.then((exit) => `the relay process exited (${exit}): ${cli.output().split('\n').filter((l) => /Error/.test(l)).slice(0, 2).join(' ').slice(0, 400)}`),
    ]);
    await c.close();
    expect(outcome).toBe('answered');
    expect(c.frames.find((f) => f.type === 'error')).toMatchObject({ type: 'error', code });
    expect((await httpGet(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  }, 30_000);
});

afterAll(() => reportFigures('protocol', figures));
