// The filter builder: rows of column, comparison and value, read into the subscription's filter as typed.
import type { Json } from '../../../client/shared/protocol.js';
import { el, ui } from './dom.js';
import { state } from './state.js';
import type { TypedFilter } from './types.js';

const OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in'];

/** The inputs of each filter row (`.f` in #filters). */
const inputs = new WeakMap<Element, { column: HTMLSelectElement; op: HTMLSelectElement; value: HTMLInputElement }>();

/** Adds a condition on a column of the table in view. */
export function addFilter(): void {
  if (!state.table) return;
  const column = el('select', { className: 'f-col' }, ...state.table.columns.map((c) => el('option', { value: c.name, textContent: c.name })));
  const op = el('select', { className: 'f-op' }, ...OPS.map((o) => el('option', { value: o, textContent: o })));
  const value = el('input', { className: 'f-val', placeholder: 'value (in: a, b, c)' });
  const rm = el('button', { className: 'plain', type: 'button', textContent: '×', title: 'remove' });
  const row = el('div', { className: 'row f' }, column, op, value, rm);
  inputs.set(row, { column, op, value });
  rm.onclick = () => row.remove();
  ui.filters.append(row);
}

/** A value as typed: JSON when it parses (42, true, null, "x"), else the text itself. */
function parseValue(text: string): Json {
  const t = text.trim();
  try { return JSON.parse(t) as Json; } catch { return t; }
}

/** The conditions of the builder's rows, AND-ed; undefined when there are none. */
export function readFilter(): TypedFilter | undefined {
  const filter: TypedFilter = {};
  for (const row of ui.filters.querySelectorAll('.f')) {
    const f = inputs.get(row);
    if (!f) continue;
    const op = f.op.value;
    const text = f.value.value;
    const value = op === 'in' ? (text.trim().startsWith('[') ? parseValue(text) : text.split(',').map(parseValue)) : parseValue(text);
    (filter[f.column.value] ||= {})[op] = value;
  }
  return Object.keys(filter).length ? filter : undefined;
}
