// The kinds of value a setting takes, as zod schemas of the raw string: integers, sizes, URLs and Postgres intervals.
import { z } from 'zod';

/** Bytes in a kibibyte. */
export const KiB = 1024;
/** Bytes in a mebibyte. */
export const MiB = 1024 * KiB;

/** Parses `65536`, `64kb`, `64KiB`, `4mb`, `1 GiB`. */
function parseBytes(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(raw);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = unit === 'k' ? KiB : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  return Math.floor(Number(m[1]) * mult);
}

/** An integer from `min` to `max`, in plain decimal digits only: a blank value, `0x10` or `1e3` is a mistake, not a number. */
export const intIn = (min: number, max: number) =>
  z.string().regex(/^\s*\d{1,15}\s*$/).transform(Number).refine((n) => n >= min && n <= max);

/** A size in bytes from `min` to `max`, with an optional unit (see parseBytes). */
export const bytesIn = (min: number, max: number) =>
  z.string().transform((s, ctx) => {
    const n = parseBytes(s);
    if (n === undefined || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: 'bad size' });
      return z.NEVER;
    }
    return n;
  });

/** A URL whose protocol passes `protocol`; never throws (a TypeError would carry the raw URL, password included). */
export const urlWith = (protocol: RegExp) =>
  z.string().refine((s) => {
    try {
      return protocol.test(new URL(s).protocol);
    } catch {
      return false;
    }
  });

const unitSeconds: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800, month: 2592000, year: 31557600 };
function unitOf(u: string): string | undefined {
  const l = u.toLowerCase();
  if (/^(s|secs?|seconds?)$/.test(l)) return 'second';
  if (/^(m|mins?|minutes?)$/.test(l)) return 'minute';
  if (/^(h|hours?)$/.test(l)) return 'hour';
  if (/^(d|days?)$/.test(l)) return 'day';
  if (/^(w|weeks?)$/.test(l)) return 'week';
  if (/^(mons?|months?)$/.test(l)) return 'month';
  if (/^(y|years?)$/.test(l)) return 'year';
  return undefined;
}

/**
 * An interval Postgres accepts and pruning can use: numbers with units, each unit once ("7 days", "12 hours 30 minutes"),
 * up to 100 years in all.
 */
export const interval = z.string().refine((s) => {
  const parts = [...s.matchAll(/(\d{1,9})\s*([a-z]+)/gi)];
  if (parts.length === 0 || s.replace(/(\d{1,9})\s*([a-z]+)/gi, '').trim() !== '') return false;
  const units = parts.map((p) => unitOf(p[2]!));
  if (units.some((u) => u === undefined) || new Set(units).size !== units.length) return false;
  const total = parts.reduce((sum, p, i) => sum + Number(p[1]) * unitSeconds[units[i]!]!, 0);
  return total > 0 && total <= 100 * unitSeconds.year!;
});
