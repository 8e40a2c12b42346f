// The frame log: every frame received and sent, newest first (the last 500), long ones folded; paused, it counts them instead.
import type { ServerMessage } from '../../../client/shared/protocol.js';
import { el, ui } from './dom.js';
import { state } from './state.js';
import type { OutgoingMessage } from './types.js';

/** Logs a frame (`type` is its type) or, with no body, a note such as the socket's close. */
export function logFrame(dir: 'in' | 'out', type: string, body: ServerMessage | OutgoingMessage | null, cls = ''): void {
  if (state.paused) {
    state.held++;
    ui.logHint.textContent = state.held + ' frames while paused';
    return;
  }
  const item = el('div', { className: 'frame ' + cls },
    el('div', { className: 'meta', textContent: (dir === 'out' ? '→ ' : '← ') + new Date().toLocaleTimeString() + ' ' + type }));
  if (body) {
    const text = JSON.stringify(body, null, 2);
    // a snapshot (or any long frame: a transaction of many rows) folds to one line; opened, it is all there
    const lines = text.split('\n').length;
    if (body.type === 'snapshot' || lines > 60) {
      const count = (n: number, one: string) => n + ' ' + one + (n === 1 ? '' : 's');
      const what = body.type === 'snapshot' ? count(body.rows.length, 'row') + ', seq ' + body.seq + (body.more ? ', more follow' : '')
        : body.type === 'tx' ? count(body.changes.length, 'change') + ', seq ' + body.seq + (body.more ? ', more follow' : '')
        : count(lines, 'line');
      item.append(el('details', {}, el('summary', { textContent: what }), text));
    } else item.append(text);
  }
  const log = ui.log;
  log.prepend(item);
  while (log.childElementCount > 500) log.lastElementChild?.remove();
}

export function togglePause(): void {
  state.paused = !state.paused;
  ui.pause.textContent = state.paused ? 'Resume' : 'Pause';
  if (!state.paused) { state.held = 0; ui.logHint.textContent = ''; }
}

export function clearLog(): void {
  ui.log.replaceChildren();
}
