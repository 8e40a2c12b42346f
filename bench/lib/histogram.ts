// An HDR-style latency histogram in microseconds: exact below 2 ms, then 1024 buckets per power of two (≤ 0.1 % error), mergeable across processes.

const exact = 2048;
const subBuckets = 1024;
// Up to 2^31 µs (about 36 minutes); larger values are clamped to the top bucket but still set `max` exactly.
const top = 31;
const size = exact + (top - 11) * subBuckets;

function indexOf(us: number): number {
  const v = Math.max(0, Math.min(2 ** 31 - 1, Math.round(us)));
  if (v < exact) return v;
  const msb = 31 - Math.clz32(v);
  const shift = msb - 10;
  return exact + (msb - 11) * subBuckets + ((v >>> shift) - subBuckets);
}

/** The highest value that falls in bucket `i` (HDR's "highest equivalent value"), so percentiles never understate. */
function highestOf(i: number): number {
  if (i < exact) return i;
  const j = i - exact;
  const msb = Math.floor(j / subBuckets) + 11;
  const shift = msb - 10;
  const mantissa = (j % subBuckets) + subBuckets;
  return (mantissa + 1) * 2 ** shift - 1;
}

/** A serializable form for IPC: non-empty buckets only. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  count: number;
  min: number;
  max: number;
  sum: number;
}

export class Histogram {
  readonly #counts = new Float64Array(size);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Records one value in microseconds. Negative values (clock skew) count as 0. */
  record(us: number): void {
    if (Number.isNaN(us)) return;
    const v = Math.max(0, us);
    this.#counts[indexOf(v)]! += 1;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  merge(d: HistogramData): void {
    for (const [i, c] of d.buckets) this.#counts[i]! += c;
    this.count += d.count;
    this.sum += d.sum;
    if (d.count > 0) {
      this.min = Math.min(this.min, d.min);
      this.max = Math.max(this.max, d.max);
    }
  }

  /** The value at percentile `p` (0–100) in microseconds; the exact max for p = 100. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < size; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(highestOf(i), this.max);
    }
    return this.max;
  }

  get mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }

  toJSON(): HistogramData {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < size; i++) if (this.#counts[i]) buckets.push([i, this.#counts[i]!]);
    return { buckets, count: this.count, min: this.count ? this.min : 0, max: this.max, sum: this.sum };
  }

  static from(d: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(d);
    return h;
  }
}
