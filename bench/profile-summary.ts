// Summarizes a V8 .cpuprofile (node --cpu-prof): where the main thread's samples went.
// Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [--top 15]
// Prints the share of idle, GC, native ("(program)": V8 and C++ such as uWS and the kernel calls it makes)
// and JavaScript samples, and the JavaScript functions with the most self time, grouped by package or file.
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [--top N]\n');
  process.exit(2);
}
const topIndex = process.argv.indexOf('--top');
const top = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 15;
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

/** Microseconds of self time per node id; each sample's time is the delta to the next sample. */
const self = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const id = profile.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + dt);
}

const categories = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0;
for (const [id, us] of self) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  total += us;
  let category: string;
  if (functionName === '(idle)') category = 'idle';
  else if (functionName === '(garbage collector)') category = 'garbage collector';
  else if (functionName === '(program)' || functionName === '(root)') category = 'native (V8, C++ addons, system calls)';
  else {
    category = 'JavaScript';
    const where = url.includes('/node_modules/') ? url.replace(/.*\/node_modules\/((@[^/]+\/)?[^/]+).*/, '$1') : url.replace(/^file:\/\/.*?\/(relay|db|client)\//, '$1/') || '(native function)';
    const key = `${functionName || '(anonymous)'}  ${where}${url && !url.includes('/node_modules/') ? `:${lineNumber + 1}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  categories.set(category, (categories.get(category) ?? 0) + us);
}

const pct = (us: number) => `${((100 * us) / total).toFixed(1)} %`;
process.stdout.write(`${file}\nwall ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${profile.samples.length} samples\n\n`);
for (const [category, us] of [...categories].sort((a, b) => b[1] - a[1])) process.stdout.write(`${pct(us).padStart(8)}  ${category}\n`);
process.stdout.write(`\nJavaScript functions by self time (top ${top}):\n`);
for (const [key, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us).padStart(8)}  ${key}\n`);
