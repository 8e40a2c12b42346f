// Row filters: validated against the table's column types, compared as Postgres compares those types.
import type { Filter, FilterOp, Json } from '../../client/shared/protocol.js';
import type { WatchedTable } from '../feed/watched-tables.js';
import { canonicalJson } from '../../client/shared/canonical-json.js';

/** A compiled filter: `key` is canonical JSON of the filter (equal filters share it; relay.snapshot takes it as is), `test` evaluates one row. */
export interface CompiledFilter {
  readonly key: string;
  readonly test: (row: Record<string, unknown>) => boolean;
  /** The columns a subscriber sees under an access rule (relay.allow), in table column order; absent: every streamed column. */
  readonly columns?: readonly string[];
}

export class FilterError extends Error {}

/** The comparisons a filter may use: the keys of the protocol's ColumnFilter (the client has no use for the list). */
const filterOps = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in'] as const satisfies readonly FilterOp[];
/** Compiles only while `filterOps` names every key of ColumnFilter. */
type Complete<Missing extends never> = Missing;
export type FilterOpsListed = Complete<Exclude<FilterOp, (typeof filterOps)[number]>>;

type Kind = 'integer' | 'decimal' | 'float' | 'text' | 'uuid' | 'boolean' | 'timestamp' | 'ordered_text' | 'other';

function kindOf(base: string): Kind {
  switch (base) {
    case 'smallint': case 'integer': case 'bigint': return 'integer';
    case 'numeric': return 'decimal';
    case 'real': case 'double precision': return 'float';
    case 'text': case 'character varying': case 'character': case 'name': case 'citext': return 'text';
    case 'uuid': return 'uuid';
    case 'boolean': return 'boolean';
    case 'timestamp with time zone': case 'timestamp without time zone': return 'timestamp';
    case 'date': case 'time without time zone': return 'ordered_text';
    default: return 'other';
  }
}

const MAX_IN = 100;
const MAX_DEPTH = 32;
const DECIMAL = /^(-?\d+(\.\d+)?|NaN|-?Infinity)$/;
const INTEGER_RANGE: Record<string, [string, string]> = {
  smallint: ['-32768', '32767'],
  integer: ['-2147483648', '2147483647'],
  bigint: ['-9223372036854775808', '9223372036854775807'],
};

/** Nesting depth of a JSON value, without recursion (a hostile value may nest thousands of levels). */
function depth(v: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (d > max) max = d;
    if (d > MAX_DEPTH) return d;
    if (x !== null && typeof x === 'object') for (const y of Object.values(x)) stack.push([y, d + 1]);
  }
  return max;
}

/** Validates `filter` for `table` and compiles it; throws FilterError with a sentence for the client. */
export function compileFilter(table: WatchedTable, filter: Filter | undefined | null): CompiledFilter | null {
  if (filter === undefined || filter === null) return null;
  if (typeof filter !== 'object' || Array.isArray(filter)) throw new FilterError('filter must be an object of column names');
  const columns = Object.keys(filter).sort();
  if (columns.length === 0) return null;
  const tests: Array<(row: Record<string, unknown>) => boolean> = [];
  const canonical: Record<string, Record<string, Json>> = {};
  for (const column of columns) {
    const base = table.columns.get(column);
    if (base === undefined) {
      if (table.excluded.includes(column)) {
        throw new FilterError(`cannot filter on column "${column}" of ${table.name}: it is excluded from capture, so its values never leave the database`);
      }
      throw new FilterError(`${table.name} has no column "${column}" to filter on; its streamed columns are ${[...table.columns.keys()].join(', ')}`);
    }
    const spec = filter[column];
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new FilterError(`the filter of column "${column}" must be an object such as {"eq": value}`);
    }
    const ops = Object.keys(spec).sort();
    if (ops.length === 0) throw new FilterError(`the filter of column "${column}" names no operator`);
    const kind = kindOf(base);
    const parts: Record<string, Json> = {};
    for (const op of ops) {
      if (!(filterOps as readonly string[]).includes(op)) throw new FilterError(`unknown filter operator "${op}" (use eq, neq, lt, lte, gt, gte or in)`);
      const value = (spec as Record<string, Json>)[op] as Json;
      tests.push(compileOp(column, base, kind, op as FilterOp, value));
      parts[op] = value;
    }
    canonical[column] = parts;
  }
  const key = JSON.stringify(canonical);
  return { key, test: tests.length === 1 ? tests[0]! : (row) => tests.every((t) => t(row)) };
}

function compileOp(column: string, base: string, kind: Kind, op: FilterOp, value: Json): (row: Record<string, unknown>) => boolean {
  if (op === 'in') {
    if (!Array.isArray(value) || value.length > MAX_IN) throw new FilterError(`"in" on column "${column}" takes an array of at most ${MAX_IN} values`);
    const cmps = value.map((v) => {
      if (v === null) return () => false; // x IN (NULL) is never true in SQL
      const c = comparator(column, base, kind, v, false);
      return (x: unknown) => c(x) === 0;
    });
    return (row) => {
      const x = row[column];
      return x !== null && x !== undefined && cmps.some((c) => c(x));
    };
  }
  if (value === null) {
    if (op === 'eq') return (row) => row[column] === null || row[column] === undefined;
    if (op === 'neq') return (row) => row[column] !== null && row[column] !== undefined;
    return () => false;
  }
  const ordered = op !== 'eq' && op !== 'neq';
  const cmp = comparator(column, base, kind, value, ordered);
  const accept: (c: number) => boolean = {
    eq: (c: number) => c === 0, neq: (c: number) => c !== 0, lt: (c: number) => c < 0, lte: (c: number) => c <= 0,
    gt: (c: number) => c > 0, gte: (c: number) => c >= 0,
  }[op];
  return (row) => {
    const x = row[column];
    if (x === null || x === undefined) return false;
    const c = cmp(x);
    return !Number.isNaN(c) && accept(c);
  };
}

/** Returns a function comparing a row value with `value`: negative, zero, positive, or NaN when incomparable. */
function comparator(column: string, base: string, kind: Kind, value: Json, ordered: boolean): (x: unknown) => number {
  const bad = (what: string) => new FilterError(`filter value for column "${column}" (${base}) must be ${what}`);
  switch (kind) {
    case 'integer': {
      const v = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : typeof value === 'string' && /^-?\d{1,20}$/.test(value) ? value : undefined;
      const [lo, hi] = INTEGER_RANGE[base] ?? INTEGER_RANGE.bigint!;
      if (v === undefined || compareDecimal(v, lo) < 0 || compareDecimal(v, hi) > 0) throw bad(`an integer from ${lo} to ${hi}`);
      return (x) => compareDecimal(String(x), v);
    }
    case 'decimal': {
      const v = typeof value === 'number' && Number.isFinite(value) ? numberToDecimal(value) : typeof value === 'string' && DECIMAL.test(value) ? value : undefined;
      if (v === undefined) throw bad('a decimal number');
      return (x) => (typeof x === 'string' && DECIMAL.test(x) ? compareNumeric(x, v) : Number.NaN);
    }
    case 'float': {
      const v = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : undefined;
      if (v === undefined) throw bad('a number');
      return (x) => (typeof x === 'number' ? Math.sign(x - v) : Number.NaN);
    }
    case 'text':
    case 'uuid': {
      if (typeof value !== 'string') throw bad('a string');
      const v = kind === 'uuid' ? value.toLowerCase() : value;
      if (kind === 'uuid' && !/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(v)) throw bad('a UUID');
      return (x) => (typeof x === 'string' ? compareCodePoints(x, v) : Number.NaN);
    }
    case 'ordered_text': {
      if (typeof value !== 'string' || !/^[\d:T .+-]+$/.test(value)) throw bad('an ISO date or time string');
      return (x) => (typeof x === 'string' ? compareCodePoints(x, value) : Number.NaN);
    }
    case 'boolean': {
      if (typeof value !== 'boolean') throw bad('true or false');
      return (x) => (typeof x === 'boolean' ? Number(x) - Number(value) : Number.NaN);
    }
    case 'timestamp': {
      const v = typeof value === 'string' ? timestampMicros(value) : undefined;
      if (v === undefined) throw bad('an ISO 8601 timestamp such as 2026-01-02T03:04:05Z');
      return (x) => {
        const t = typeof x === 'string' ? timestampMicros(x) : undefined;
        return t === undefined ? Number.NaN : t === v ? 0 : Math.sign(t - v);
      };
    }
    default: {
      if (ordered) throw new FilterError(`column "${column}" of type ${base} supports only eq, neq and in`);
      if (depth(value) > MAX_DEPTH) throw new FilterError(`filter value for column "${column}" nests deeper than ${MAX_DEPTH} levels`);
      const v = canonicalJson(value);
      // a row value nested beyond MAX_DEPTH cannot equal a filter value (which may not nest that deep)
      return (x) => (depth(x) <= MAX_DEPTH && canonicalJson(x) === v ? 0 : 1);
    }
  }
}

/** Exact comparison of two plain decimal strings (`-12.50` vs `3`). */
export function compareDecimal(a: string, b: string): number {
  const na = a.startsWith('-');
  const nb = b.startsWith('-');
  const [ai, af = ''] = (na ? a.slice(1) : a).split('.');
  const [bi, bf = ''] = (nb ? b.slice(1) : b).split('.');
  const ia = ai!.replace(/^0+(?=\d)/, '');
  const ib = bi!.replace(/^0+(?=\d)/, '');
  const fa = af.replace(/0+$/, '');
  const fb = bf.replace(/0+$/, '');
  const zeroA = /^0*$/.test(ia) && fa === '';
  const zeroB = /^0*$/.test(ib) && fb === '';
  const signA = zeroA ? 0 : na ? -1 : 1;
  const signB = zeroB ? 0 : nb ? -1 : 1;
  if (signA !== signB) return Math.sign(signA - signB);
  if (signA === 0) return 0;
  let mag = ia.length !== ib.length ? ia.length - ib.length : ia < ib ? -1 : ia > ib ? 1 : 0;
  if (mag === 0) {
    const len = Math.max(fa.length, fb.length);
    const pa = fa.padEnd(len, '0');
    const pb = fb.padEnd(len, '0');
    mag = pa < pb ? -1 : pa > pb ? 1 : 0;
  }
  return Math.sign(mag) * signA;
}

/** Postgres orders numeric NaN above every number and ±Infinity beyond every finite one. */
function compareNumeric(a: string, b: string): number {
  const rank = (x: string) => (x === 'NaN' ? 2 : x === 'Infinity' ? 1 : x === '-Infinity' ? -1 : 0);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== 0 || rb !== 0) return Math.sign(ra - rb);
  return compareDecimal(a, b);
}

/** The exact decimal a JSON number denotes (`1e21` → `1000000000000000000000`, `2e-21` → `0.000000000000000000002`). */
export function numberToDecimal(n: number): string {
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/i.exec(s);
  if (!m) return s;
  const digits = m[2]! + (m[3] ?? '');
  const point = m[2]!.length + Number(m[4]);
  const body = point <= 0 ? `0.${'0'.repeat(-point)}${digits}` : point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${m[1]}${body}`;
}

const surrogate = /[\uD800-\uDFFF]/;

/** Code-point order, which is what Postgres' "C" collation gives for UTF-8 text. */
export function compareCodePoints(a: string, b: string): number {
  if (!surrogate.test(a) && !surrogate.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const ca = [...a];
  const cb = [...b];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i]!.codePointAt(0)! - cb[i]!.codePointAt(0)!;
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(ca.length - cb.length);
}

const timestampRe = /^(\d{4,6})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?( BC)?$/;

/**
 * Microseconds since the epoch of a timestamp as Postgres renders or accepts it in ISO form (no offset = UTC,
 * as the relay's sessions use); `infinity`/`-infinity` are ±Infinity; dates that do not exist are undefined.
 */
export function timestampMicros(s: string): number | undefined {
  if (s === 'infinity') return Number.POSITIVE_INFINITY;
  if (s === '-infinity') return Number.NEGATIVE_INFINITY;
  const m = timestampRe.exec(s);
  if (!m) return undefined;
  // years are ISO: 1 BC is year 0; setUTCFullYear keeps years 0-99 (Date.UTC would read them as 1900-1999)
  const year = m[9] ? 1 - Number(m[1]) : Number(m[1]);
  const [month, day, hour, minute, second] = [Number(m[2]), Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const monthDays = [31, (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (month < 1 || month > 12 || day < 1 || day > monthDays[month - 1]! || minute > 59 || second > 60 || hour > 24 || (hour === 24 && (minute > 0 || second > 0 || m[7]))) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  let micros = d.getTime() * 1000 + Number((m[7] ?? '').padEnd(6, '0') || 0);
  const off = m[8];
  if (off && off !== 'Z') {
    const sign = off[0] === '-' ? -1 : 1;
    const digits = off.slice(1).replace(':', '');
    micros -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || 0)) * 60_000_000;
  }
  return Number.isFinite(micros) ? micros : undefined;
}
