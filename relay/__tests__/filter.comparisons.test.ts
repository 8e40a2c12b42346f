// Filter comparisons as Postgres makes them: exact decimals, code-point text, timestamps with offsets, SQL null rules.
import { describe, expect, it } from 'vitest';
import { compareCodePoints, compareDecimal, compileFilter, FilterError, timestampMicros } from '../routing/filter.js';
import type { WatchedTable } from '../feed/watched-tables.js';

const table: WatchedTable = {
  name: 'public.t', relid: 0, tenantColumn: 'tenant', primaryKey: ['id'],
  columns: new Map([['id', 'bigint'], ['amount', 'numeric'], ['f', 'double precision'], ['name', 'text'], ['at', 'timestamp with time zone'], ['ok', 'boolean'], ['doc', 'jsonb'], ['u', 'uuid']]),
  declaredTypes: new Map(),
  excluded: ['card_token'],
  rules: new Map(),
};

describe('compareDecimal', () => {
  it.each([
    ['1', '1.0', 0], ['-0', '0.00', 0], ['10', '9.99', 1], ['-10', '-9', -1], ['0.1', '0.09', 1], ['123456789012345678901234567890', '123456789012345678901234567891', -1], ['-1.5', '1', -1], ['007', '7', 0],
  ])('%s vs %s', (a, b, sign) => expect(compareDecimal(a, b)).toBe(sign));
});

describe('text and time', () => {
  it('compares text by code point, as collate "C" does', () => {
    expect(compareCodePoints('B', 'a')).toBe(-1);
    expect(compareCodePoints('\u{1F600}', '\uFFFD')).toBe(1); // UTF-16 order would say otherwise
    expect(compareCodePoints('abc', 'ab')).toBe(1);
  });
  it('reads timestamps with offsets and fractions to the microsecond', () => {
    expect(timestampMicros('2026-01-02T03:04:05.000001+00:00')! - timestampMicros('2026-01-02T03:04:05Z')!).toBe(1);
    expect(timestampMicros('2026-01-02T05:04:05+02:00')).toBe(timestampMicros('2026-01-02T03:04:05Z'));
    expect(timestampMicros('2026-01-02')).toBe(Date.UTC(2026, 0, 2) * 1000);
    expect(timestampMicros('soon')).toBeUndefined();
  });
});

describe('compileFilter', () => {
  it('gives equal filters one canonical key whatever their order', () => {
    expect(compileFilter(table, { name: { eq: 'x' }, amount: { lt: 5, gte: 1 } })!.key).toBe(compileFilter(table, { amount: { gte: 1, lt: 5 }, name: { eq: 'x' } })!.key);
  });
  it('evaluates AND-ed comparisons with SQL null rules', () => {
    const f = compileFilter(table, { amount: { gte: '10' }, name: { neq: 'x' } })!;
    expect(f.test({ amount: '10.00', name: 'y' })).toBe(true);
    expect(f.test({ amount: '9.999', name: 'y' })).toBe(false);
    expect(f.test({ amount: '12', name: null })).toBe(false); // null <> 'x' is not true
    expect(compileFilter(table, { name: { eq: null } })!.test({ name: null })).toBe(true);
    expect(compileFilter(table, { name: { in: ['a', null] } })!.test({ name: null })).toBe(false);
    expect(compileFilter(table, { id: { in: [1, '9007199254740993'] } })!.test({ id: '9007199254740993' })).toBe(true);
    expect(compileFilter(table, { at: { gt: '2026-01-01T00:00:00Z' } })!.test({ at: '2026-01-01T01:00:00+02:00' })).toBe(false);
    expect(compileFilter(table, { doc: { eq: { b: 1, a: [1] } } })!.test({ doc: { a: [1], b: 1 } })).toBe(true);
    expect(compileFilter(table, { u: { eq: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11' } })!.test({ u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' })).toBe(true);
    expect(compileFilter(table, { f: { lt: 0.5 } })!.test({ f: 0.25 })).toBe(true);
  });
  it.each([
    [{ nope: { eq: 1 } }, 'public.t has no column "nope" to filter on; its streamed columns are id, amount, f, name, at, ok, doc, u'],
    [{ card_token: { eq: 'x' } }, 'cannot filter on column "card_token" of public.t: it is excluded from capture, so its values never leave the database'],
    [{ id: { eq: 1.5 } }, 'filter value for column "id" (bigint) must be an integer from -9223372036854775808 to 9223372036854775807'],
    [{ ok: { eq: 'yes' } }, 'filter value for column "ok" (boolean) must be true or false'],
    [{ doc: { lt: 1 } }, 'column "doc" of type jsonb supports only eq, neq and in'],
    [{ name: { like: 'x' } }, 'unknown filter operator "like" (use eq, neq, lt, lte, gt, gte or in)'],
    [{ name: { in: 'x' } }, '"in" on column "name" takes an array of at most 100 values'],
    [{ name: 'x' }, 'the filter of column "name" must be an object such as {"eq": value}'],
  ])('refuses %j', (filter, message) => {
    expect(() => compileFilter(table, filter as never)).toThrow(new FilterError(message));
  });
});
