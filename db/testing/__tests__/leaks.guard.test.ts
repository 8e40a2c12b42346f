// The leak guard really fails: a pg client, a LISTEN session, a socket, what a probe counts or (where counted) a timer
// left open by a test is reported; what was closed is not.
import net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../database.js';
import { checkLeaks, leakBaseline, registerLeakProbe } from '../leaks.js';

const db = useTestDatabase();

describe('leak check', () => {
  it('passes when everything opened was closed', async () => {
    const before = await leakBaseline(db.name);
    const c = await db.connect();
    await c.query('select 1');
    await c.end();
    await expect(checkLeaks(db.name, before, 2000)).resolves.toBeUndefined();
  });

  it('fails a test that leaves a pg client open', async () => {
    const before = await leakBaseline(db.name);
    const leaked = await db.connect();
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/1 pg client\(s\) never ended/);
    await leaked.end();
  });

  it('fails a test that leaves a LISTEN session connected', async () => {
    const before = await leakBaseline(db.name);
    // Not made through the harness: only the server-side session count can see it.
    const listener = new pg.Client({ connectionString: db.url, application_name: 'leaky-listener' });
    await listener.connect();
    await listener.query('LISTEN relay');
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/Postgres session\(s\) still connected \(leaky-listener: LISTEN relay/);
    await listener.end();
  });

  it('fails a test that leaves a socket open', async () => {
    const before = await leakBaseline(db.name);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/socket\(s\) still open/);
    await new Promise((r) => server.close(r));
  });

  it('fails a test that leaves what a probe counts', async () => {
    let open = 0;
    const unregister = registerLeakProbe('relay sockets', () => open);
    const before = await leakBaseline(db.name);
    open = 2;
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/2 relay sockets still open/);
    open = 0;
    unregister();
  });

  it('fails a test that leaves timers pending, where timers are counted, with no database as well', async () => {
    const before = await leakBaseline(undefined, { timers: true });
    // several: vitest's own short timers may have been pending at the baseline and be gone by the check
    const timers = Array.from({ length: 5 }, () => setTimeout(() => undefined, 60_000));
    await expect(checkLeaks(undefined, before, 300)).rejects.toThrow(/^The test leaked: [1-5] timer\(s\) still pending\.$/);
    timers.forEach(clearTimeout);
    await expect(checkLeaks(undefined, before, 300)).resolves.toBeUndefined();
  });

  it('does not count timers unless asked', async () => {
    const before = await leakBaseline(db.name);
    const timers = Array.from({ length: 5 }, () => setTimeout(() => undefined, 60_000));
    try {
      await expect(checkLeaks(db.name, before, 300)).resolves.toBeUndefined();
    } finally {
      timers.forEach(clearTimeout);
    }
  });
});
