// Writing to sockets safely after an await: cork, skip closed sockets, close on overflow, wait for drain.
import { CloseCode } from '../../client/shared/codes.js';
import type { ErrorCode } from '../../client/shared/protocol.js';
import { errorFrame } from './frames.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { RelaySocket as WS } from './socket-data.js';

/** After this many refused messages a socket is closed with 4009. */
export const MAX_STRIKES = 10;

export class SocketWriter {
  readonly #metrics: Metrics;
  readonly #log: Logger;

  constructor(metrics: Metrics, log: Logger) {
    this.#metrics = metrics;
    this.#log = log;
  }

  /** Sends one text frame; false when the socket is gone or could not take it (then it is closed with 4008). */
  send(ws: WS, frame: string): boolean {
    const d = ws.data;
    if (d.closed) return false;
    let status = 'sent';
    ws.cork(() => {
      status = ws.send(frame);
    });
    if (status === 'dropped') {
      this.overflow(ws);
      return false;
    }
    return true;
  }

  /** An error frame; unless `strike` is false it counts as a strike, and too many strikes close the socket. */
  error(ws: WS, code: ErrorCode, message: string, id?: string, strike = true): void {
    this.#metrics.protocolErrors.inc({ code });
    const d = ws.data;
    this.send(ws, errorFrame(code, message, id));
    if (strike && ++d.strikes >= MAX_STRIKES && !d.closed) this.end(ws, CloseCode.ProtocolAbuse, 'too many refused messages');
  }

  /** The socket fell behind: close it with 4008; its client resumes from its cursor, so nothing is lost. */
  overflow(ws: WS): void {
    const d = ws.data;
    if (d.closed) return;
    this.#metrics.backpressureCloses.inc();
    this.#metrics.backpressureBuffered.observe(ws.bufferedAmount());
    // one line per slow socket: operators see who falls behind (and tests count these closes on the relay's side)
    this.#log.info({ code: CloseCode.Backpressure, tenant: d.principal.tenant, buffered: ws.bufferedAmount() }, 'closed a socket that fell behind');
    this.end(ws, CloseCode.Backpressure, 'too slow: resume from your cursor');
  }

  end(ws: WS, code: number, reason: string): void {
    const d = ws.data;
    if (d.closed) return;
    d.closed = true;
    this.#metrics.closes.inc({ code: String(code) });
    // nothing published after this point may reach the socket: its close frame is the last thing it gets
    for (const sub of d.subs?.values() ?? []) if (sub.topic) ws.unsubscribe(sub.topic);
    ws.cork(() => ws.end(code, reason));
  }

  /** Resolves when the socket's buffer is below `limit` bytes (or it closed). */
  async drain(ws: WS, limit: number): Promise<void> {
    const d = ws.data;
    while (!d.closed && ws.bufferedAmount() > limit) {
      await new Promise<void>((resolve) => {
        d.drained = resolve;
        setTimeout(resolve, 250);
      });
    }
  }
}
