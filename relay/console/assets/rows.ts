// The view's rows: one table row per primary key, in key order, inserts and changed cells highlighted, deletes struck through.
import type { Change, Json, Row } from '../../../client/shared/protocol.js';
import { el, ui } from './dom.js';
import { state } from './state.js';

const FLASH_MS = 2500;

type KeyValues = ReadonlyArray<Json | undefined>;
/** Each shown row's key values, for placing rows in order. */
const keyValues = new WeakMap<HTMLTableRowElement, KeyValues>();
const keysOf = (tr: HTMLTableRowElement): KeyValues => keyValues.get(tr) ?? [];

const keyOf = (pk: Partial<Row>) => JSON.stringify(state.pk.map((k) => pk[k]));

/** Rows are listed in primary-key order, as psql's `order by` the key would: numbers (int8 and numeric arrive as strings) as numbers. */
const NUMERIC = /^-?\d+(\.\d+)?$/;
function compareKeys(a: KeyValues, b: KeyValues): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y) continue;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    const nx = typeof x === 'number' || NUMERIC.test(String(x)), ny = typeof y === 'number' || NUMERIC.test(String(y));
    const d = nx && ny ? Number(x) - Number(y) : String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0;
    if (d !== 0) return d;
  }
  return 0;
}

/** Puts `tr` where its key belongs in the sorted table body. */
function placeRow(tr: HTMLTableRowElement): void {
  const rows = ui.gridBody.rows;
  let lo = 0, hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const at = rows[mid];
    if (at && compareKeys(keysOf(at), keysOf(tr)) <= 0) lo = mid + 1;
    else hi = mid;
  }
  ui.gridBody.insertBefore(tr, rows[lo] ?? null);
}

function cell(v: Json | undefined): HTMLTableCellElement {
  const td = el('td');
  if (v === null || v === undefined) { td.textContent = 'null'; td.className = 'null'; }
  else td.textContent = typeof v === 'object' ? JSON.stringify(v) : String(v);
  td.title = td.textContent;
  return td;
}

export function clearRows(): void {
  state.rows.clear();
  ui.gridBody.replaceChildren();
}

/** Shows `row`, in place of the row with its key if there is one; `flash` highlights an insert, or the `changed` columns of an update (all of them without). */
export function upsert(row: Row, flash: boolean, changed?: Partial<Row>): void {
  const key = keyOf(row);
  const existing = state.rows.get(key);
  const tr = el('tr', {}, ...state.columns.map((c) => cell(row[c])));
  tr.dataset.key = key;
  keyValues.set(tr, state.pk.map((k) => row[k]));
  if (existing) {
    // in place, unless the update changed the key: then where the new key belongs
    if (compareKeys(keysOf(existing), keysOf(tr)) === 0) existing.replaceWith(tr);
    else { existing.remove(); placeRow(tr); }
    if (flash) state.columns.forEach((c, i) => { if (!changed || c in changed) tr.cells[i]?.classList.add('changed'); });
  } else {
    placeRow(tr);
    if (flash) tr.classList.add('inserted');
  }
  state.rows.set(key, tr);
}

/** Applies one change of a transaction to the view. */
export function apply(c: Change): void {
  if (c.op === 'truncate') {
    clearRows();
    ui.viewHint.textContent = 'table truncated';
    return;
  }
  if (c.op === 'delete') {
    const tr = c.pk && state.rows.get(keyOf(c.pk));
    if (!c.pk || !tr) return;
    state.rows.delete(keyOf(c.pk));
    tr.classList.add('deleted');
    setTimeout(() => tr.remove(), FLASH_MS);
    return;
  }
  if (!c.row) return; // inserts and updates carry the row
  // an update may change the primary key: the old key is the old values over the new row
  if (c.op === 'update' && c.old) {
    const before = { ...c.row, ...c.old };
    const oldKey = keyOf(before);
    const tr = state.rows.get(oldKey);
    if (oldKey !== keyOf(c.row) && tr) {
      state.rows.delete(oldKey);
      state.rows.set(keyOf(c.row), tr);
    }
  }
  upsert(c.row, true, c.op === 'update' ? c.old || {} : undefined);
}
