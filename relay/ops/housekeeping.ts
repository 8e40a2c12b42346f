// Housekeeping: the relay's periodic jobs on one timer, once a second (a relay at rest wakes for nothing more often: bench:rest).

/** How often housekeeping runs. */
const HOUSEKEEPING_INTERVAL_MS = 1000;

/**
 * Runs `jobs`, in order, every {@link HOUSEKEEPING_INTERVAL_MS} on a timer that does not keep the process alive;
 * returns a function that stops it.
 */
export function startHousekeeping(jobs: ReadonlyArray<() => void>): () => void {
  const timer = setInterval(() => {
    for (const job of jobs) job();
  }, HOUSEKEEPING_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
