// The table in view: choosing it, subscribing to it (a snapshot, or a replay after a seq), and the frames of that subscription.
import type { ServerMessage } from '../../../client/shared/protocol.js';
import { send } from './connection.js';
import { el, ui } from './dom.js';
import { readFilter } from './filters.js';
import { logFrame } from './frame-log.js';
import { apply, clearRows, upsert } from './rows.js';
import { showSnippet } from './snippet.js';
import { notePosition, setSeq, showConnection, state } from './state.js';
import type { ConsoleSubscribe } from './types.js';

export function chooseTable(name: string): void {
  state.table = state.tables.find((t) => t.name === name);
  for (const li of ui.tableList.querySelectorAll('li')) li.classList.toggle('chosen', li.dataset.table === name);
  ui.viewTitle.textContent = name;
  ui.filters.replaceChildren();
  ui.since.value = '';
  state.seq = undefined;
  subscribe();
}

/** Subscribes the view afresh (a snapshot, or after the seq in the since box), or resumes it after `since`. */
export function subscribe(since?: number): void {
  if (!state.table) return;
  if (state.active) send({ type: 'unsubscribe', id: state.active });
  state.sub++;
  const id = 'console' + state.sub;
  state.active = id;
  state.columns = state.table.columns.map((c) => c.name);
  state.pk = state.table.primaryKey;
  const head = el('tr', {}, ...state.table.columns.map((c) => el('th', {}, c.name + ' ', el('small', { textContent: c.type }))));
  ui.gridHead.replaceChildren(head);
  const m: ConsoleSubscribe = { type: 'subscribe', id, table: state.table.name };
  const filter = readFilter();
  if (filter) m.filter = filter;
  const fromBox = ui.since.value.trim();
  if (since !== undefined) m.since = since;
  else if (fromBox !== '') m.since = Number(fromBox);
  else m.snapshot = true;
  showSnippet(m, state.table.primaryKey);
  if (since === undefined) {
    clearRows();
    ui.viewHint.textContent = m.snapshot ? '' : 'replaying changes after seq ' + m.since + ' (rows appear as they change)';
  }
  send(m);
}

/** The subscription a frame belongs to, if any. */
const subscriptionOf = (m: ServerMessage): string | undefined => ('sub' in m ? m.sub : 'id' in m ? m.id : undefined);

/** One frame from the relay. */
export function receive(m: ServerMessage): void {
  logFrame('in', m.type, m, m.type === 'error' ? 'error' : '');
  if (m.type === 'welcome') {
    showConnection('open');
    state.connectedAt = m.seq;
    state.position = undefined; // another relay, perhaps: its own position
    notePosition(m.seq);
    // resume where the view was: nothing lost across a reconnect
    state.active = undefined;
    if (state.table) subscribe(state.seq);
    return;
  }
  const sub = subscriptionOf(m);
  if (sub !== undefined && sub !== state.active) return; // a frame of a subscription this view has left
  if (m.type === 'snapshot') {
    (state.snapRows ||= []).push(...m.rows);
    if (m.more) return;
    clearRows();
    for (const r of state.snapRows) upsert(r, false);
    state.snapRows = undefined;
    setSeq(m.seq);
  } else if (m.type === 'subscribed') {
    setSeq(m.seq);
  } else if (m.type === 'tx') {
    for (const c of m.changes) apply(c);
    if (!m.more) setSeq(m.seq);
    else notePosition(m.seq);
    // history replayed from a since (committed before this connection) has an age, not a lag
    if (state.connectedAt !== undefined && m.seq > state.connectedAt) ui.lag.textContent = Math.max(0, Date.now() - Date.parse(m.at)) + ' ms';
    else ui.lag.textContent = 'replay';
  } else if (m.type === 'reset') {
    ui.viewHint.textContent = 'cursor ' + m.reason + ': reloading from a snapshot';
    state.seq = undefined;
    subscribe();
  } else if (m.type === 'error' && m.id !== undefined) {
    ui.viewHint.textContent = m.message;
  }
}
