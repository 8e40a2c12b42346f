// The leader's loop without rest (`rest: false`, or writers that do not wake it): pgrelay 0.2's polling of the snapshot.
import type { TickerSession } from './ticker-session.js';

/** Polls the snapshot every 1–5 ms and ticks when a transaction finished, until the ticker closes. */
export async function pollLoop(session: TickerSession): Promise<void> {
  const p = session.pacing;
  session.setState('awake');
  await session.query('select relay.ticker_sleep(false)');
  const known = { snap: null as string | null };
  let seen = '';
  let emptyStreak = 0;
  let busyDelay = p.busyDelayMs;
  while (!session.closed) {
    // a snapshot that did not change means no transaction finished: nothing can be waiting for a seq
    const { rows: [now] } = await session.query<{ s: string }>({ name: 'pgrelay-snapshot', text: 'select pg_current_snapshot()::text as s' });
    let sequenced = 0;
    if (now!.s !== seen) {
      sequenced = (await session.tick(known)).sequenced;
      // the tick's snapshot is at least as new as the one just read: no need to look at that one again
      seen = now!.s;
    }
    emptyStreak = sequenced > 0 ? 0 : emptyStreak + 1;
    busyDelay = sequenced > 1 ? Math.min(p.batchDelayMs, busyDelay * 2) : p.busyDelayMs;
    await session.wait(sequenced > 0 ? busyDelay : Math.min(p.idleDelayMs, 2 ** Math.min(emptyStreak - 1, 20)));
  }
}
