// The client over Server-Sent Events: a WebSocketLike made of `GET /sse` requests (one stream per subscription), so the
// connection's state machine, cursors, resubscribes and adapters work unchanged. `fetch`, not EventSource: it sends headers.
import type { ClientMessage } from './shared/protocol.js';
import type { WebSocketLike } from './relay-client-options.js';

/**
 * Feeds SSE text in chunks split anywhere; calls `onData` with each event's data (its `data:` lines joined by `\n`).
 * Comments and other fields are skipped. Lines end with LF or CRLF; a bare CR, which the SSE spec also allows, is not
 * taken as a line end (the relay sends LF; bytes saved for the size budget).
 */
export function sseParser(onData: (data: string) => void): (chunk: string) => void {
  let buf = '';
  let data: string | undefined;
  return (chunk) => {
    buf += chunk;
    for (let m; (m = /\r?\n/.exec(buf)); ) {
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (!line) {
        if (data != null) onData(data);
        data = undefined;
      } else if (/^data(:|$)/.test(line)) {
        const v = line.slice(line[5] == ' ' ? 6 : 5);
        data = data == null ? v : `${data}\n${v}`;
      }
    }
  };
}

// Refusals (the JSON body's `error`) that end the whole connection, as the WebSocket's close codes; others concern one subscription.
const closes: Record<string, number> = { bad_token: 4401, origin_not_allowed: 4403, try_again_later: 1013 };
const pong = '{"type":"pong"}';

/**
 * Opens with a token check (`GET url` without a table: the relay answers `welcome` and ends). Each `subscribe` then opens
 * its own stream, and so does joining presence (`?presence=1`); a stream that ends without the relay ending its
 * subscription (`reset`, `error`) closes everything with 1006, so the client reconnects and resumes each subscription
 * from its cursor (and joins presence again), as after a WebSocket drop.
 */
export function sseSocket(url: string, token: string): WebSocketLike {
  const streams = new Map<string, AbortController>();
  let heard = 0;
  let pinged = false;
  // After close() the client ignores this socket's events: no need to stop a chunk's last events here.
  const emit = (data: string) => s.onmessage?.({ data });
  const stop = (key: string) => (streams.get(key)?.abort(), streams.delete(key));
  const end = (code: number, reason?: string) => {
    if (s.readyState > 2) return;
    s.close();
    s.onclose?.({ code, reason });
  };

  // One stream under `key`: the query `q` (its undefined fields left out), or none for the token check (key '').
  const run = async (key: string, q?: Record<string, unknown>) => {
    const c = new AbortController();
    stop(key);
    streams.set(key, c);
    const p = q && new URLSearchParams(JSON.parse(JSON.stringify(q)));
    // The relay ended the subscription itself: its stream's end is no failure.
    let done = false;
    try {
      const r = await fetch(p ? `${url}?${p}` : url, { headers: { authorization: `Bearer ${token}` }, signal: c.signal });
      if (!r.ok) {
        const b = await r.json().catch(() => ({}));
        if (!q || !b.error || closes[b.error]) return end(closes[b.error] ?? 1006, b.message);
        // A subscription's refusal goes to its onError; presence's (no id) to the client's.
        emit(JSON.stringify({ type: 'error', code: b.error, message: b.message, id: q.id }));
        done = true;
      } else {
        const read = r.body!.pipeThrough(new TextDecoderStream()).getReader();
        const parse = sseParser((d) => {
          let m: any = {};
          try {
            m = JSON.parse(d);
          } catch {}
          if (m.type == 'close') return end(m.code, m.reason);
          done = m.type == 'reset' || m.type == 'error';
          // Every stream starts with `welcome`; only the token check's opens (the client resubscribes everything on it).
          if (m.type == 'welcome') {
            if (q) return;
            s.readyState = 1;
            s.onopen?.({});
          }
          emit(d);
        });
        for (let x; !(x = await read.read()).done; ) {
          heard = Date.now();
          if (pinged) (pinged = false), emit(pong);
          parse(x.value);
        }
      }
    } catch {}
    // Still this key's stream: neither aborted nor replaced.
    if (streams.get(key) == c) {
      streams.delete(key);
      if (q ? !done : s.readyState != 1) end(1006);
    }
  };

  // The handlers are set by the client before any event can fire.
  const s = {
    readyState: 0,
    send(data) {
      const m = JSON.parse(data) as ClientMessage;
      // the subscribe message's own fields are the stream's query (snapshot: the relay takes `true` as well as `1`)
      if (m.type == 'subscribe') void run(m.id, { ...m, type: undefined, filter: m.filter && JSON.stringify(m.filter) });
      else if (m.type == 'unsubscribe') stop(m.id);
      // Subscription ids always hold a `:`, so this key is never one.
      else if (m.type == 'presence') m.join ? void run('presence', { presence: 1 }) : stop('presence');
      // For the streams opened from now on; the relay ends older ones at their token's expiry (4001) and the client resumes them.
      else if (m.type == 'auth') token = m.token;
      // A pong vouches for the streams: at once if one spoke within 20 s (the relay sends `: ping` every 15 s), else at their
      // next traffic, so a dead connection still times out. Not within send: the client arms its timeout after sending.
      else if (m.type == 'ping') Date.now() - heard < 2e4 || !streams.size ? setTimeout(emit, 0, pong) : (pinged = true);
    },
    close() {
      s.readyState = 3;
      for (const key of streams.keys()) stop(key);
    },
  } as { -readonly [K in keyof WebSocketLike]: WebSocketLike[K] };
  void run('');
  return s;
}
