// Opens every connection of a relay's query pool before a test, so that the leak check's session count does not mistake pooled connections for leaks.
import { connect, token } from './relay-harness.js';

/**
 * Ten snapshot subscriptions at once make the relay's pool (max 10) open all its connections; they then idle
 * for the pool's 30 s timeout, so a test that starts within it finds the pool at its ceiling.
 */
export async function warmRelayPool(url: string, table: string, connections = 10): Promise<void> {
  const c = await connect(url, await token({ all_tenants: true }));
  try {
    for (let i = 0; i < connections; i++) c.send({ type: 'subscribe', id: `warm${i}`, table, snapshot: true });
    await c.until(() => c.frames.filter((f) => (f.type === 'snapshot' && f.more === false) || f.type === 'error').length >= connections, 10_000, 'the warm-up snapshots');
  } finally {
    await c.close();
  }
}
