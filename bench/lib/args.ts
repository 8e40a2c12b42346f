// Command-line flags of the benchmarks: `--n 1000`, `--n=1000`, `--targets pgrelay,ws`, bare `--flag` for booleans.

/** Parsed flags with typed getters that name the flag in their error. */
export class Flags {
  readonly #values = new Map<string, string>();
  readonly positional: string[] = [];

  constructor(argv: readonly string[]) {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (!arg.startsWith('--')) {
        this.positional.push(arg);
        continue;
      }
      const eq = arg.indexOf('=');
      if (eq > 0) {
        this.#values.set(arg.slice(2, eq), arg.slice(eq + 1));
      } else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--')) this.#values.set(arg.slice(2), 'true');
        else (this.#values.set(arg.slice(2), next), i++);
      }
    }
  }

  str(name: string): string | undefined;
  str(name: string, fallback: string): string;
  str(name: string, fallback?: string): string | undefined {
    return this.#values.get(name) ?? fallback;
  }

  num(name: string, fallback: number): number {
    const raw = this.#values.get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number; got ${JSON.stringify(raw)}.`);
    return n;
  }

  list(name: string, fallback: readonly string[]): string[] {
    const raw = this.#values.get(name);
    return raw === undefined ? [...fallback] : raw.split(',').map((s) => s.trim()).filter(Boolean);
  }

  bool(name: string): boolean {
    const raw = this.#values.get(name);
    return raw !== undefined && raw !== 'false' && raw !== '0';
  }

  /** The flags as given, for the "command" line of RESULTS.md. */
  toString(): string {
    return [...this.#values].map(([k, v]) => (v === 'true' ? `--${k}` : `--${k} ${v}`)).join(' ');
  }
}
