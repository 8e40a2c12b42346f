// Fails a test that leaves a socket, a server or a timer behind (the client's reconnect, heartbeat and refresh timers included).
import { afterEach, beforeEach } from 'vitest';

const kinds = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'] as const;

function counts(): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) c[r] = (c[r] ?? 0) + 1;
  return c;
}

export function useLeakCheck(timeoutMs = 2000): void {
  let before: Record<string, number> = {};
  beforeEach(() => {
    before = counts();
  });
  afterEach(async () => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = counts();
      const leaked = kinds.filter((k) => (now[k] ?? 0) > (before[k] ?? 0)).map((k) => `${(now[k] ?? 0) - (before[k] ?? 0)} ${k}`);
      if (leaked.length === 0) return;
      if (Date.now() > deadline) throw new Error(`The test leaked: ${leaked.join(', ')}.`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
}
