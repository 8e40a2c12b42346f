// How the user runs the `pgrelay` command here, so that every message naming a command can be pasted as it stands.
import { fileURLToPath } from 'node:url';

/**
 * `npm run pgrelay -- <args>` in a pgrelay checkout (where `pgrelay` is on no PATH, and `npx pgrelay` would look it up
 * on the registry), `npx pgrelay <args>` where pgrelay is installed as a dependency (its bin is in node_modules/.bin).
 */
export function cliCommand(args: string, from: string = fileURLToPath(import.meta.url)): string {
  return from.split(/[\\/]/).includes('node_modules') ? `npx pgrelay ${args}` : `npm run pgrelay -- ${args}`;
}
