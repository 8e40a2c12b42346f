// The leader's loop at rest: awake while ticks find work, asleep on LISTEN relay_wake otherwise, woken by the first writer.
import type { TickerLog } from './ticker-options.js';
import type { TickerSession } from './ticker-session.js';

/** Stragglers (see {@link restLoop}) are looked at after 1 ms, then twice as long each time, up to this. */
const STRAGGLER_MAX_MS = 1000;

/** The oldest transaction still running in a snapshot (`xmin:xmax:xip,…`): every older one has ended. */
function snapshotXmin(snapshot: string): bigint {
  return BigInt(snapshot.slice(0, snapshot.indexOf(':')));
}

/**
 * Whether writers wake this ticker (the rule of relay.capture, with this database's settings): then it may sleep.
 * Where a transaction can be PREPAREd, writers send no NOTIFY unless relay.wake = on (see 1796400000011_ticker-rest.sql).
 */
export async function writersWake(session: TickerSession, log: TickerLog): Promise<boolean> {
  if (!session.pacing.rest) return false;
  const { rows: [s] } = await session.query<{ prepared: number; wake: string }>(
    `select current_setting('max_prepared_transactions')::int as prepared, coalesce(current_setting('relay.wake', true), '') as wake`);
  if (s!.wake === 'on' || (s!.wake !== 'off' && s!.prepared === 0)) return true;
  log.info({ max_prepared_transactions: s!.prepared, 'relay.wake': s!.wake || null },
    s!.wake === 'off'
      ? 'relay.wake is off for this database: writers do not wake the ticker, so it looks at the database every few milliseconds instead of resting'
      : 'max_prepared_transactions > 0: writers do not wake the ticker (a transaction that sent NOTIFY cannot be PREPAREd), so it looks at the database every few milliseconds instead of resting; if no writer of a watched table uses two-phase commit, ALTER DATABASE … SET relay.wake = on lets it rest (see docs/capture.md)');
  return false;
}

/**
 * The leader's loop, until the ticker closes:
 * - **awake**: it ticks, waits a little (longer while batches keep coming, so that a tick's fixed cost is shared),
 *   and ticks again, with the flag `relay.ticker_asleep` at 0 so that writers send nothing;
 * - when a tick finds nothing it goes **asleep**: it sets the flag, a lease it renews at every look so that writers stop
 *   waking a ticker that died (relay.ticker_sleep, which returns its own xid), then
 *   ticks once more. A writer that read the flag before it was set has a smaller xid: it has committed (that tick
 *   numbers it) or is still running. While any transaction older than the flag's is running, the ticker looks again
 *   after 1, 2, 4 … ms (up to 1 s) for such "stragglers". Every other writer finds the flag set and queues one
 *   `NOTIFY relay_wake`, delivered when it commits;
 * - asleep, each wake-up (and a safety look every `restLookMs`) is one tick. A tick that numbers several transactions
 *   means load: it wakes up for good (flag 0) and ticks on its own again.
 * So at rest it sends one statement a second, a lone transaction costs one tick, and under load writers never NOTIFY
 * (a NOTIFY takes Postgres's global notification lock at commit).
 */
export async function restLoop(session: TickerSession): Promise<void> {
  const p = session.pacing;
  const known = { snap: null as string | null };
  // writers send no wake-up (flag 0) while we tick on our own; unknown at first (a previous leader left it either way)
  let awakeFlag = false;
  const setAwake = async () => {
    if (awakeFlag) return;
    await session.query({ name: 'pgrelay-wake', text: 'select relay.ticker_sleep(false)' });
    awakeFlag = true;
  };
  // Asleep, the ticker holds a lease: writers wake it only until it runs out, so that a ticker that died is not woken
  // at every commit. Renewed at every look; long enough for a look that comes late.
  const leaseMs = Math.max(3_000, 3 * p.restLookMs);
  /** Sets the flag for sleep; returns its transaction's xid (see relay.ticker_sleep). */
  const setAsleep = async () => {
    const { rows } = await session.query<{ xid: string }>({ name: 'pgrelay-sleep', text: 'select relay.ticker_sleep(true, $1)::text as xid', values: [leaseMs] });
    awakeFlag = false;
    return BigInt(rows[0]!.xid);
  };
  let busyDelay = p.busyDelayMs;
  while (!session.closed) {
    // awake: tick on our own until a tick finds nothing
    session.setState('awake');
    const { sequenced } = await session.tick(known);
    if (sequenced > 0) {
      busyDelay = sequenced > 1 ? Math.min(p.batchDelayMs, busyDelay * 2) : p.busyDelayMs;
      await session.wait(busyDelay);
      continue;
    }
    // to sleep: set the flag, then one more tick (it numbers every writer that missed the flag and has committed)
    const flagXid = await setAsleep();
    let row = await session.tick(known, leaseMs);
    if (row.sequenced > 1) {
      await setAwake();
      continue;
    }
    session.setState('asleep');
    let stragglers = snapshotXmin(row.snap) < flagXid;
    let stragglerWait = 1;
    while (!session.closed) {
      if (!session.woken) await session.wait(stragglers ? stragglerWait : p.restLookMs, true);
      if (session.closed) return;
      const woken = session.woken;
      row = await session.tick(known, leaseMs);
      if (stragglers) {
        stragglers = snapshotXmin(row.snap) < flagXid;
        if (!woken) stragglerWait = Math.min(STRAGGLER_MAX_MS, stragglerWait * 2);
      }
      if (row.sequenced > 1) break;
    }
    // load: writers stop sending wake-ups, and we tick on our own again
    await setAwake();
    busyDelay = p.busyDelayMs;
  }
}
