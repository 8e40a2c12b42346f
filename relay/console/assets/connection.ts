// The WebSocket to the relay: the token offered as a subprotocol, reopened after a drop, closed for good on a refused token.
import type { ServerMessage } from '../../../client/shared/protocol.js';
import { logFrame } from './frame-log.js';
import { showConnection, showError, state } from './state.js';
import type { OutgoingMessage } from './types.js';

/** Opens the socket with the current token; each frame of it goes to `onFrame`, and a drop reopens it while it is wanted. */
export function openSocket(onFrame: (m: ServerMessage) => void): void {
  clearTimeout(state.retry);
  // pgrelay.reasons: a refused token closes the socket with 4401 and the reason, which a browser can read
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws', ['pgrelay.v1', 'pgrelay.reasons', 'bearer.' + state.token]);
  state.ws = ws;
  showConnection(state.seq === undefined ? 'connecting' : 'reconnecting');
  ws.onmessage = (e) => { if (state.ws === ws) onFrame(JSON.parse(String(e.data)) as ServerMessage); };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = undefined;
    logFrame('in', 'closed ' + e.code + (e.reason ? ' ' + e.reason : ''), null, 'error');
    if (e.code === 4401 || e.code === 4403) {
      showConnection('closed', 'refused');
      showError('The relay refused the token: ' + e.reason + '.');
      state.wanted = false;
      return;
    }
    if (!state.wanted) { showConnection('closed'); return; }
    showConnection('reconnecting');
    state.retry = setTimeout(() => openSocket(onFrame), 500 + Math.random() * 1000);
  };
}

export function closeSocket(): void {
  state.wanted = false;
  clearTimeout(state.retry);
  if (state.ws) { const ws = state.ws; state.ws = undefined; ws.close(1000); }
  showConnection('closed');
}

/** Sends `m` if the socket is open, and logs it. */
export function send(m: OutgoingMessage): void {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  state.ws.send(JSON.stringify(m));
  logFrame('out', m.type, m, 'out');
}
