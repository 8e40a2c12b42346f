// client.presence end to end: the client library over real sockets to two relays on one Postgres, and across a relay restart.
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { freePort } from '../shared/free-port.js';
import { leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { startTestRelay, token } from '../../relay/__tests__/support/relay-harness.js';
import { createRelayClient, type PresenceMember, type RelayClient } from '../index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

/** A client of `sub` in tenant `acme` on `url`, with the member names its presence listener last saw. */
function member(url: string, sub: string, name: string) {
  const client: RelayClient = createRelayClient({ url, token: () => token({ tenant_id: 'acme', sub, name }), WebSocket: WebSocket as never, backoff: { minMs: 20, maxMs: 100 } });
  const seen = { names: [] as string[], lists: 0 };
  const stop = client.presence((members: PresenceMember[]) => {
    seen.names = members.map((m) => m.name ?? m.sub).sort();
    seen.lists++;
  });
  return { client, seen, stop };
}

describe('client.presence with real relays', () => {
  it('clients on two relays see each other; one person on both relays is one member until their last client leaves', async () => {
    const [r1, r2] = [await startTestRelay(db), await startTestRelay(db)];
    const ann = member(r1.url, 'u-ann', 'Ann');
    const bob = member(r2.url, 'u-bob', 'Bob');
    await until(() => bob.seen.names.join() === 'Ann,Bob' && ann.seen.names.join() === 'Ann,Bob', 'both members on both relays');
    const annElsewhere = member(r2.url, 'u-ann', 'Ann');
    await until(() => annElsewhere.seen.names.join() === 'Ann,Bob', "Ann's second client");
    ann.client.close();
    await sleep(400);
    expect(bob.seen.names).toEqual(['Ann', 'Bob']);
    annElsewhere.stop();
    await until(() => bob.seen.names.join() === 'Bob', "Ann's leave");
    annElsewhere.client.close();
    bob.client.close();
    await Promise.all([r1.close(), r2.close()]);
  });

  it('after a relay restart the client joins again by itself', async () => {
    const port = await freePort();
    const first = await startTestRelay(db, { PORT: String(port) });
    const other = await startTestRelay(db);
    const cy = member(`ws://127.0.0.1:${port}/ws`, 'u-cy', 'Cy');
    const dee = member(other.url, 'u-dee', 'Dee');
    await until(() => dee.seen.names.join() === 'Cy,Dee', 'Cy');
    await first.close();
    // its relay is gone: Cy left (relay.presence_end at shutdown)
    await until(() => dee.seen.names.join() === 'Dee', "Cy's leave with its relay");
    const listsBefore = cy.seen.lists;
    const second = await startTestRelay(db, { PORT: String(port) });
    await until(() => dee.seen.names.join() === 'Cy,Dee' && cy.seen.lists > listsBefore && cy.seen.names.join() === 'Cy,Dee', 'Cy back after the restart');
    cy.client.close();
    dee.client.close();
    await Promise.all([second.close(), other.close()]);
  });
});
