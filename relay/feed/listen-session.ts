// The LISTEN session: the narrow shape the relay needs, and its pg-listen implementation on a connection of its own.
import pgListen from 'pg-listen';
import { backoff } from '../../client/shared/backoff.js';

/** What the relay needs from a LISTEN connection. Tests drive edge cases through a real server with it. */
export interface ListenSession {
  /** Connects and LISTENs on every channel; rejects when the first connection fails. */
  connect(): Promise<void>;
  close(): Promise<void>;
  /** Every notification, payload as sent (never parsed here). */
  onNotification(cb: (channel: string, payload: string) => void): void;
  /** `lost` when the connection drops; `connected` once it is back and listening again. */
  onState(cb: (state: 'connected' | 'lost') => void): void;
  onError(cb: (err: Error) => void): void;
  /**
   * Stops (`false`) or starts again (`true`) listening on one of its channels; resolves once the UNLISTEN or LISTEN ran,
   * and stays so across reconnects. Optional: a session without it keeps every channel.
   */
  setListening?(channel: string, on: boolean): Promise<void>;
}

export const LISTENER_APPLICATION_NAME = 'pgrelay-listener';

/** pg-listen on its own connection (never pooled: a transaction-mode pooler would drop LISTEN), retrying forever with jittered backoff. */
export function pgListenSession(databaseUrl: string, channels: readonly string[]): ListenSession {
  // pg-listen is CommonJS with `exports.default`
  const subscriber = pgListen.default(
    // pipeline: pg-listen LISTENs on every channel at once after a reconnect, which pg 8 warns about (and pg 9 will
    // refuse) on a connection that runs one query at a time
    { connectionString: databaseUrl, application_name: LISTENER_APPLICATION_NAME, keepAlive: true, pipeline: true },
    {
      retryTimeout: Infinity,
      retryLimit: Infinity,
      retryInterval: (attempt) => backoff(attempt, 100, 5_000),
      // keep payloads as text: the relay parses them itself and a malformed one must not stop the stream
      parse: (payload: string) => payload,
      // a dead connection that the socket does not report is found by a trivial query
      paranoidChecking: 10_000,
    },
  );
  const onState: Array<(s: 'connected' | 'lost') => void> = [];
  let connected = false;
  subscriber.events.on('reconnect', () => {
    if (connected) {
      connected = false;
      for (const cb of onState) cb('lost');
    }
  });
  subscriber.events.on('connected', () => {
    // the first 'connected' comes before our LISTENs; later ones after pg-listen re-LISTENed
    if (!listening) return;
    connected = true;
    for (const cb of onState) cb('connected');
  });
  let listening = false;
  const wanted = new Set(channels);
  return {
    async connect() {
      await subscriber.connect();
      for (const c of wanted) await subscriber.listenTo(c);
      listening = true;
      connected = true;
    },
    close: () => subscriber.close(),
    onNotification(cb) {
      subscriber.events.on('notification', (n) => cb(n.channel, typeof n.payload === 'string' ? n.payload : ''));
    },
    onState(cb) {
      onState.push(cb);
    },
    onError(cb) {
      subscriber.events.on('error', cb);
    },
    async setListening(channel, on) {
      if (on) wanted.add(channel);
      else wanted.delete(channel);
      // before connect(), it LISTENs to what is wanted then; after, pg-listen re-LISTENs its channels on reconnect
      if (listening) await (on ? subscriber.listenTo(channel) : subscriber.unlisten(channel));
    },
  };
}
