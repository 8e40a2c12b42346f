// A load worker spoken to by typed messages over IPC (the presence and reconnect-herd clients): what it sends is kept until asked for.
import { until } from '../../db/testing/wait.js';
import { spawnNode, type SpawnOptions, type Spawned } from './processes.js';

export interface MessageWorker {
  readonly process: Spawned;
  /** Resolves with the first message of `type` not taken yet; rejects after `timeoutMs`, or once the worker exited. */
  next(type: string, timeoutMs: number): Promise<Record<string, unknown>>;
  send(message: unknown): void;
}

/** Starts `script` (see {@link spawnNode}) with an IPC channel. */
export function messageWorker(script: string, o: SpawnOptions): MessageWorker {
  const p = spawnNode(script, { ...o, ipc: true });
  const inbox: Array<Record<string, unknown>> = [];
  p.child.on('message', (m: Record<string, unknown>) => inbox.push(m));
  return {
    process: p,
    async next(type, timeoutMs) {
      const found = await until(
        () => {
          const i = inbox.findIndex((m) => m.type === type);
          return i >= 0 ? { i } : p.alive ? undefined : { i: -1 };
        },
        { what: `${o.name} to send ${type}`, timeoutMs },
      );
      if (found.i < 0) throw new Error(`${o.name} exited before sending ${type}:\n${p.output().slice(-2000)}`);
      return inbox.splice(found.i, 1)[0]!;
    },
    send: (m) => p.child.send(m as never),
  };
}
