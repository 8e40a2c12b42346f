// Numbers and tables as RESULTS.md and the console show them.

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Milliseconds with 2 significant decimals below 10 ms. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export function int(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a';
}

export function bytes(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  return a >= 2 ** 20 ? `${(v / 2 ** 20).toFixed(1)} MiB` : a >= 1024 ? `${(v / 1024).toFixed(1)} kB` : `${Math.round(v)} B`;
}

/** `x / y` as `0.25×`, or n/a when either is missing. */
export function ratio(x: number | undefined, y: number | undefined): string {
  if (x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y) || y === 0) return 'n/a';
  const r = x / y;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

export function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL';
}
