// The relay's HTTP API, called with the token, and the panels it fills: development tokens, the token's tables, the relay's load.
import { el, ui } from './dom.js';
import { errorText, notePosition, state } from './state.js';
import type { DevAnswer, StatsAnswer, TablesAnswer } from './types.js';
import { chooseTable } from './view.js';

/** The message of an API error answer (`{error, message}`), if it has one. */
const messageOf = (body: unknown): string =>
  typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string' ? body.message : '';

/** An API answer of type `T`, with the token as a bearer; an error answer throws its message. */
export async function api<T>(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), ...(state.token ? { authorization: 'Bearer ' + state.token } : {}) } });
  const body: unknown = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(messageOf(body) || ('HTTP ' + res.status));
  return body as T; // the relay's answer, as the type says (relay/console/http-routes.ts)
}

/** In development mode, the tenants to get a token for. */
export async function loadDev(): Promise<void> {
  const dev = await api<DevAnswer>('/api/dev').catch((): DevAnswer => ({ dev: false }));
  if (!dev.dev) return;
  ui.dev.hidden = false;
  const pick = ui.devTenant;
  for (const t of dev.tenants) pick.append(el('option', { value: 't:' + t, textContent: 'tenant ' + t }));
  pick.append(el('option', { value: 'all', textContent: 'all tenants (admin)' }));
  if (dev.tenants.length === 0) pick.prepend(el('option', { value: 't:demo', textContent: 'tenant demo' }));
  pick.selectedIndex = 0;
}

/** A development token for the tenant picked (or all tenants). */
export async function devToken(): Promise<string> {
  const v = ui.devTenant.value;
  const { token } = await api<{ token: string }>('/api/dev-token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(v === 'all' ? { allTenants: true } : { tenant: v.slice(2) }) });
  return token;
}

/** The tables this token may see, each with its columns; on a fresh install, the command that watches one. */
export async function loadTables(): Promise<void> {
  const list = ui.tableList;
  list.replaceChildren();
  const info = await api<TablesAnswer>('/api/tables');
  state.tables = info.tables;
  state.allTenants = info.allTenants;
  ui.tenant.textContent = info.allTenants ? 'all tenants' : info.tenant;
  const hint = ui.tablesHint;
  hint.replaceChildren();
  if (info.tables.length === 0) {
    // a fresh install: say what to do instead of subscribing to a table that is not there
    hint.append(info.watched === 0 ? 'No table is watched yet. Watch one, then reload this page:' : 'This token may see none of the watched tables.');
    if (info.watched === 0) hint.append(el('pre', { className: 'cmd', textContent: info.watchCommand }));
    return;
  }
  hint.textContent = 'Pick a table to follow it live.';
  for (const t of info.tables) {
    const cols = el('div', { className: 'cols' });
    for (const c of t.columns) cols.append(el('span', {}, c.name + ' ', el('i', { textContent: c.type + (t.primaryKey.includes(c.name) ? ' · pk' : '') + (c.name === t.tenantColumn ? ' · tenant' : '') })));
    const li = el('li', { title: t.name }, el('b', { textContent: t.name }), cols);
    li.dataset.table = t.name;
    li.onclick = () => chooseTable(t.name);
    list.append(li);
  }
}

/** For an all-tenant token, the relay's connections and subscriptions per tenant and table, every 2 s. */
export async function pollStats(): Promise<void> {
  clearTimeout(state.statsTimer);
  if (!state.allTenants || !state.token) { ui.stats.hidden = true; return; }
  try {
    const st = await api<StatsAnswer>('/api/stats');
    ui.stats.hidden = false;
    notePosition(st.position);
    const rows = [el('tr', {}, el('th', { textContent: 'tenant' }), el('th', { textContent: 'table' }), el('th', { textContent: 'connections' }), el('th', { textContent: 'subscriptions' }))];
    for (const c of st.tenants) {
      rows.push(el('tr', {}, el('td', { textContent: c.tenant }), el('td', { textContent: '' }), el('td', { textContent: String(c.connections) }), el('td', { textContent: String(c.subscriptions) })));
      for (const t of c.tables) rows.push(el('tr', {}, el('td', { textContent: '' }), el('td', { textContent: t.table }), el('td', { textContent: '' }), el('td', { textContent: String(t.subscriptions) })));
    }
    ui.statsBody.replaceChildren(el('p', { className: 'hint', textContent: st.connections + ' connections, ' + st.subscriptions + ' subscriptions' }), el('table', {}, ...rows));
  } catch (e) { ui.statsBody.textContent = errorText(e); }
  state.statsTimer = setTimeout(pollStats, 2000);
}
