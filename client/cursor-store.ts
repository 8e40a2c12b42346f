// Where cursors outlive the page: an interface the client reads once per subscription and writes after every applied transaction, and a localStorage one.

/** Keyed by subscription id (deterministic: the same table, filter and snapshot flag give the same id). */
export interface CursorStore {
  get(key: string): number | undefined | Promise<number | undefined>;
  set(key: string, seq: number): void;
}

/** The subset of the Web Storage API the store needs. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * Cursors in `localStorage` (or another Storage) under `prefix + id`. Storage that is missing or
 * refuses writes (private mode, quota, SSR) makes it a no-op: the subscription then starts live.
 */
export function localStorageCursorStore(prefix = 'pgrelay:', storage?: StorageLike): CursorStore {
  const s = () => storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
  return {
    get(key) {
      const v = s()?.getItem(prefix + key);
      return v == null || isNaN(+v) ? undefined : +v;
    },
    set(key, seq) {
      try {
        s()?.setItem(prefix + key, String(seq));
      } catch {
        // A full or disabled storage must not break the stream; the cursor lives on in memory.
      }
    },
  };
}
