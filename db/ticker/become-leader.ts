// A ticker connection becoming the leader: the advisory lock tried until it is held, then the leader's session set up.
import { TICKER_LOCK } from '../../client/shared/lock-keys.js';
import { WAKE_CHANNEL } from './ticker-options.js';
import type { TickerSession } from './ticker-session.js';

/**
 * Tries the ticker lock every `candidateIntervalMs` (with jitter) until this connection holds it, then sets up its
 * session to lead: an idle timeout, repeatable read, and (with `listen`) LISTEN relay_wake. False when the ticker
 * closed first.
 */
export async function becomeLeader(session: TickerSession, listen: boolean): Promise<boolean> {
  // Polled rather than waited for: a backend waiting on a lock does not notice its client going away, so a closing
  // candidate would leave it behind.
  while (!session.closed) {
    const { rows } = await session.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [...TICKER_LOCK]);
    if (rows[0]!.ok) break;
    await session.wait(session.pacing.candidateIntervalMs * (0.75 + Math.random() / 2));
  }
  if (session.closed) return false;
  // A leader whose process hangs stops ticking; Postgres then ends its session and another candidate takes over.
  // (Asleep, the ticker still looks at least every restLookMs, well inside it.)
  const idleTimeout = Math.max(20_000, 3 * session.pacing.restLookMs);
  await session.query(`set idle_session_timeout = '${idleTimeout}ms'`).catch(() => undefined);
  await session.query(`set session characteristics as transaction isolation level repeatable read`);
  // before the first tick: a writer that commits after it and finds the ticker asleep must reach this session
  if (listen) await session.query(`listen ${WAKE_CHANNEL}`);
  return true;
}
