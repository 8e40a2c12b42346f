// The LISTEN session of the capture-overhead benchmark, in its own process so that draining notifications never competes with pgbench's event loop.
// Started with fork(): argv = connection URL and channels; answers {type:'count'} over IPC with what it has drained.
import pg from 'pg';

const [url, ...channels] = process.argv.slice(2);
if (!url || channels.length === 0 || !process.send) {
  console.error('usage: fork(listener.ts, [url, channel...]) with an IPC channel');
  process.exit(2);
}

let count = 0;
let bytes = 0;
let last = Date.now();

const client = new pg.Client({ connectionString: url, application_name: 'bench-listener' });
client.on('notification', (m) => {
  count += 1;
  bytes += m.payload?.length ?? 0;
  last = Date.now();
});
client.on('error', (err) => {
  console.error('listener:', err.message);
  process.exit(1);
});
await client.connect();
for (const ch of channels) await client.query(`listen ${pg.escapeIdentifier(ch)}`);

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'count') process.send!({ type: 'count', count, bytes, idleMs: Date.now() - last });
});
// the parent ends us with SIGTERM (or by closing the IPC channel when it dies)
const stop = () => void client.end().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('disconnect', stop);
process.send({ type: 'ready' });
