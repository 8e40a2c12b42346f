// JSON with object keys sorted at every level, so that equal values give equal text (subscription ids, filter equality).

/** Like JSON.stringify, undefined object members are dropped (and an undefined value is `null`), but keys are sorted. */
export function canonicalJson(value: unknown): string {
  // (an array in a template literal is joined with commas)
  if (Array.isArray(value)) return `[${value.map(canonicalJson)}]`;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
