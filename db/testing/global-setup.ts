// Vitest global setup: one Postgres for the run, one migrated template database that test files clone.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../migrate.js';
import { startBackend } from './backend.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
    pgBackend: 'url' | 'testcontainers' | 'embedded';
    pgVersion: string;
    /** The login role (in relay_reader) that test relays connect as, and its password. */
    pgRelayRole: { user: string; password: string };
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const backend = await startBackend();
  const template = `pgrelay_tpl_${randomBytes(4).toString('hex')}`;
  // Relays in tests connect as this role, as a production relay should (issue 18): a member of relay_reader, no
  // superuser. Roles belong to the cluster, so one per run, named for it (a TEST_DATABASE_URL cluster may be shared).
  const relayRole = { user: `pgrelay_relay_${randomBytes(4).toString('hex')}`, password: randomBytes(12).toString('hex') };
  const admin = new pg.Client({ connectionString: backend.adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${template}`);
    await migrate(withDatabase(backend.adminUrl, template));
    await admin.query(`create role ${relayRole.user} login password '${relayRole.password}' in role relay_reader`);
  } catch (err) {
    await admin.end();
    await backend.stop();
    throw err;
  }
  // Printed once per run, so a log always says what the suite ran against.
  console.log(`pgrelay tests: Postgres backend "${backend.kind}", server version ${backend.version}, template ${template}`);
  project.provide('pgAdminUrl', backend.adminUrl);
  project.provide('pgTemplate', template);
  project.provide('pgBackend', backend.kind);
  project.provide('pgVersion', backend.version);
  project.provide('pgRelayRole', relayRole);
  return async () => {
    await admin.query(`drop database if exists ${template} with (force)`).catch(() => undefined);
    await admin.query(`drop role if exists ${relayRole.user}`).catch(() => undefined);
    await admin.end();
    await backend.stop();
  };
}
