// Stops a relay started by an npm script when npm goes away, so that `npm start` under a supervisor never leaves a relay behind.
//
// `npm start` forwards SIGTERM and SIGINT to its script (which `exec`s node, so the relay gets them itself), but a
// supervisor may also SIGKILL npm, and a script of one's own may run the relay under a shell that forwards nothing.
// Either way the relay is reparented and would keep serving, with its embedded Postgres: it notices the new parent
// and stops as on SIGTERM. Only under an npm script: a relay started from a shell with `nohup … &` is meant to
// outlive that shell.

/** Started by an npm (or yarn, pnpm) script: they all set `npm_lifecycle_event`. */
export function startedByPackageScript(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.npm_lifecycle_event);
}

/**
 * Calls `onGone(parentPid)` once when the process that started this one has exited: this process was reparented
 * (Linux, macOS), or the parent pid no longer exists (Windows keeps the old parent pid). Returns a function that
 * stops watching. The timer does not keep the process alive; once a second, as the relay's housekeeping (a relay at
 * rest should wake for nothing more often: bench:rest).
 */
export function watchParent(onGone: (parentPid: number) => void, intervalMs = 1000): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent && alive(parent)) return;
    clearInterval(timer);
    onGone(parent);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
