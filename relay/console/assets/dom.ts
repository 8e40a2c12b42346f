// The page's elements, looked up once and checked by type (page and script out of step fail at once, by name), and an element builder.

/** The element `selector` finds, which must be a `type`. */
function find<T extends Element>(selector: string, type: { new (): T; prototype: T; name: string }): T {
  const found = document.querySelector(selector);
  if (!(found instanceof type)) throw new Error(`the console page has no ${type.name} ${selector}`);
  return found;
}

/** Every element of index.html the script reads or writes. */
export const ui = {
  // the header
  state: find('#state', HTMLSpanElement),
  tenant: find('#tenant', HTMLElement),
  seq: find('#seq', HTMLElement),
  lag: find('#lag', HTMLElement),
  position: find('#position', HTMLElement),
  // the token
  dev: find('#dev', HTMLDivElement),
  devTenant: find('#dev-tenant', HTMLSelectElement),
  devToken: find('#dev-token', HTMLButtonElement),
  token: find('#token', HTMLTextAreaElement),
  connect: find('#connect', HTMLButtonElement),
  disconnect: find('#disconnect', HTMLButtonElement),
  error: find('#error', HTMLParagraphElement),
  // the watched tables
  tables: find('#tables', HTMLElement),
  tableList: find('#tables ul', HTMLUListElement),
  tablesHint: find('#tables-hint', HTMLParagraphElement),
  // the live rows
  viewTitle: find('#view-title', HTMLHeadingElement),
  filters: find('#filters', HTMLDivElement),
  addFilter: find('#add-filter', HTMLButtonElement),
  since: find('#since', HTMLInputElement),
  subscribe: find('#subscribe', HTMLButtonElement),
  viewHint: find('#view-hint', HTMLSpanElement),
  gridHead: find('#grid thead', HTMLTableSectionElement),
  gridBody: find('#grid tbody', HTMLTableSectionElement),
  snippet: find('#snippet', HTMLDetailsElement),
  copySnippet: find('#copy-snippet', HTMLButtonElement),
  snippetCode: find('#snippet-code', HTMLElement),
  stats: find('#stats', HTMLDivElement),
  statsBody: find('#stats-body', HTMLDivElement),
  // the frame log
  pause: find('#pause', HTMLButtonElement),
  clear: find('#clear', HTMLButtonElement),
  logHint: find('#log-hint', HTMLSpanElement),
  log: find('#log', HTMLDivElement),
};

/** A new `tag` element with `props` set and `children` appended. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children) e.append(c);
  return e;
}
