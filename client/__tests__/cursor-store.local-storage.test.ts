// localStorageCursorStore(): cursors under a prefix; a missing or failing storage never breaks the stream.
import { describe, expect, it } from 'vitest';
import { localStorageCursorStore, type StorageLike } from '../cursor-store.js';

const memoryStorage = (): StorageLike & { map: Map<string, string> } => {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) };
};

describe('localStorageCursorStore', () => {
  it('stores cursors under prefix + subscription id', () => {
    const storage = memoryStorage();
    const store = localStorageCursorStore('app:', storage);
    expect(store.get('public.orders:abc')).toBeUndefined();
    store.set('public.orders:abc', 41);
    expect(storage.map.get('app:public.orders:abc')).toBe('41');
    expect(store.get('public.orders:abc')).toBe(41);
    storage.map.set('app:junk', 'not a number');
    expect(store.get('junk')).toBeUndefined();
  });

  it('uses globalThis.localStorage by default and is a no-op without one', () => {
    expect('localStorage' in globalThis).toBe(false);
    const store = localStorageCursorStore();
    store.set('k', 1);
    expect(store.get('k')).toBeUndefined();
    const storage = memoryStorage();
    (globalThis as any).localStorage = storage;
    try {
      localStorageCursorStore().set('k', 7);
      expect(storage.map.get('pgrelay:k')).toBe('7');
    } finally {
      delete (globalThis as any).localStorage;
    }
  });

  it('swallows a storage that refuses writes', () => {
    const store = localStorageCursorStore('p:', {
      getItem: () => null,
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    });
    expect(() => store.set('k', 1)).not.toThrow();
  });
});
