// bench/RESULTS.md, one section per benchmark replaced on every rerun, and the raw numbers next to it (bench/results/*.json) for the charts.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isStopping } from './processes.js';

const resultsFile = fileURLToPath(new URL('../RESULTS.md', import.meta.url));
const rawDir = fileURLToPath(new URL('../results/', import.meta.url));
const order = ['latency', 'fanout', 'memory', 'resume', 'clientSize', 'latencyServers', 'fanoutServers', 'memoryServers', 'compression'];

/** The headings of this suite's sections; stable, since a section is found again by its heading. */
export const titles: Record<string, string> = {
  latency: '## 1. Latency: commit → receipt',
  fanout: '## 2. Fan-out ceiling',
  memory: '## 3. Memory per idle socket',
  resume: '## 4. Resume after a disconnect',
  clientSize: '## 5. Client size',
  latencyServers: '## 6. Server implementations: latency',
  fanoutServers: '## 7. Server implementations: deliveries per server-CPU-second',
  memoryServers: '## 8. Server implementations: memory per idle socket',
  compression: '## 9. Compression: permessage-deflate off and on',
  rest: '## Rest: nothing written, and the first change after a rest',
};

const header = `# pgrelay benchmarks

Measured by \`npm run bench\` (the side-by-side suite) and \`npm run bench:<name>\` (one benchmark; \`npm run bench -- --help\`
lists them with their flags, \`bench/README.md\` says what each measures). Every figure is compared with baselines measured in the same run on the same machine:
**A** = Express + Socket.IO 4 + pg-listen (\`bench/baselines/socketio-server.ts\`), **B** = raw \`ws\` + pg-listen
(\`bench/baselines/ws-server.ts\`). Each section is replaced when its benchmark runs again. Charts: \`bench/charts/\`.
`;

let recording = true;

/** A dry run (`--dry-run`): every benchmark measures and prints, and nothing is written to RESULTS.md, results/ or charts/. */
export function stopRecording(): void {
  recording = false;
}

/** False in a dry run, and once the run is stopping (an interrupted run keeps the previous results). */
export function isRecording(): boolean {
  return recording && !isStopping();
}

/**
 * Replaces (or adds, in the suite's order) the section whose first line is `## <title>`. A section runs to the next
 * `## ` heading: the convention every writer of RESULTS.md follows (the capture, catch-up and callgrind benchmarks too), so none cuts another's.
 */
export async function writeSection(id: string, markdown: string): Promise<void> {
  if (!isRecording()) return;
  const body = markdown.trim().split('\n');
  const heading = body[0]!;
  if (!heading.startsWith('## ') || body.slice(1).some((l) => l.startsWith('## '))) throw new Error(`A RESULTS.md section is one "## " heading and its body (${id}).`);
  const lines = (existsSync(resultsFile) ? await readFile(resultsFile, 'utf8') : header).trimEnd().split('\n');
  const nextHeading = (from: number) => {
    const i = lines.findIndex((l, j) => j > from && l.startsWith('## '));
    return i < 0 ? lines.length : i;
  };
  const at = lines.indexOf(heading);
  if (at >= 0) {
    lines.splice(at, nextHeading(at) - at, ...body, '');
  } else {
    // Before the first later section of this suite that is already there, else at the end.
    // (a section outside the suite's order goes at the end)
    const later = order.includes(id) ? order.slice(order.indexOf(id) + 1).map((l) => lines.indexOf(titles[l]!)).filter((i) => i >= 0) : [];
    const where = later.length ? Math.min(...later) : lines.length;
    lines.splice(where, 0, ...(where === lines.length ? [''] : []), ...body, '');
  }
  await writeFile(resultsFile, `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`);
}

export async function saveRaw(id: string, data: unknown): Promise<void> {
  if (!isRecording()) return;
  await mkdir(rawDir, { recursive: true });
  await writeFile(`${rawDir}${id}.json`, `${JSON.stringify(data, null, 2)}\n`);
}
