// Wall-clock times with sub-millisecond precision on both ends: a row's `ts` (Postgres, µs) and the moment a frame is received (Node).

/** Now, in epoch milliseconds with µs precision (performance.now() on the wall-clock origin). */
export function receiptTime(): number {
  return performance.timeOrigin + performance.now();
}

/** `2026-01-02T03:04:05.123456+00:00` (how row_to_json and to_jsonb render timestamptz) in epoch milliseconds, keeping the µs. */
export function rowTime(ts: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d(?::?\d\d)?)?$/.exec(ts);
  if (!m) return NaN;
  const zone = m[3] === undefined || m[3] === 'Z' ? 'Z' : m[3].length === 3 ? `${m[3]}:00` : m[3];
  return Date.parse(`${m[1]}${zone}`) + (m[2] ? Number(m[2]) * 1000 : 0);
}
