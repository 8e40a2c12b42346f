// client.on('<table>:<op>'): named events for apps coming from Socket.IO, against a real relay and plain-SQL writes.
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTenantTable, leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { startTestRelay, token, type TestRelay } from '../../relay/__tests__/support/relay-harness.js';
import { createRelayClient } from '../index.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createTenantTable(db, 'ventas', { columns: { total: 'numeric not null' } });
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

describe("client.on('<table>:<op>')", () => {
  it('calls each handler for its operation only, with the row, the change and the transaction, until unsubscribed', async () => {
    const client = createRelayClient({ url: relay.url, token: await token({ tenant_id: 'acme' }), WebSocket });
    const seen: string[] = [];
    const offInsert = client.on('ventas:insert', (row, change, tx) => seen.push(`insert ${String(row?.total)} ${change.op} ${typeof tx.seq}`));
    client.on('ventas:delete', (row) => seen.push(`delete ${String(row?.id)}`));
    client.on('public.ventas:*', (_row, change) => seen.push(`any ${change.op}`));
    await until(() => client.status === 'open', 'the client to open');
    // every on() is a subscription: wait until all three are live before writing
    await sleep(1000);
    await db.query(`insert into ventas (tenant_id, total) values ('acme', 10), ('globex', 99)`);
    await db.query(`update ventas set total = 11 where tenant_id = 'acme'`);
    await db.query(`delete from ventas where tenant_id = 'acme'`);
    await until(() => seen.filter((s) => s.startsWith('any')).length === 3, 'three changes');
    expect(seen.filter((s) => !s.startsWith('any'))).toEqual(['insert 10 insert number', 'delete 1']);
    expect(seen.filter((s) => s.startsWith('any'))).toEqual(['any insert', 'any update', 'any delete']);
    offInsert();
    await db.query(`insert into ventas (tenant_id, total) values ('acme', 12)`);
    await until(() => seen.filter((s) => s.startsWith('any')).length === 4, 'the fourth change');
    expect(seen.filter((s) => s.startsWith('insert'))).toHaveLength(1);
    client.close();
  });
});
