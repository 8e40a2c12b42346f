// Who owns the embedded cluster of a state folder: the `npm start` holding `<stateDir>/owner.lock` (proper-lockfile).
import path from 'node:path';
import lockfile from 'proper-lockfile';

/**
 * The owner started (or adopted) the cluster: it restarts it when it dies and stops it when it leaves last.
 * Every other `npm start` on the same folder only attaches. The lock is a folder whose mtime the owner refreshes;
 * it is removed on exit, and an owner killed outright loses it after `staleMs`.
 */
export class ClusterLock {
  readonly file: string;
  #release: (() => Promise<void>) | undefined;
  readonly #stateDir: string;
  readonly #staleMs: number;
  readonly #onLost: (err: Error) => void;

  /** `onLost` is told when the lock was taken away (this process stalled past `staleMs`); the process is no longer the owner then. */
  constructor(stateDir: string, onLost: (err: Error) => void = () => undefined, staleMs = 10_000) {
    this.#stateDir = stateDir;
    this.file = path.join(stateDir, 'owner.lock');
    this.#onLost = onLost;
    this.#staleMs = staleMs;
  }

  /** This process owns the cluster. */
  get held(): boolean {
    return this.#release !== undefined;
  }

  /** Takes the lock unless another live process holds it; true when this process owns the cluster now. */
  async tryAcquire(): Promise<boolean> {
    if (this.#release) return true;
    try {
      this.#release = await lockfile.lock(this.#stateDir, {
        lockfilePath: this.file,
        realpath: false,
        retries: 0,
        stale: this.#staleMs,
        onCompromised: (err) => {
          this.#release = undefined;
          this.#onLost(err);
        },
      });
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'ELOCKED') return false;
      throw err;
    }
  }

  async release(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    await release?.().catch(() => undefined);
  }
}
