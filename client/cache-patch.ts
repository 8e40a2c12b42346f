// Rows by primary key inside the shapes TanStack Query caches hold. Each patch returns new data, `undefined` when nothing changed, or `null` for a shape it does not know.

type Rec = Record<string, unknown>;
/** Maps a list's rows; `undefined` means "unchanged". */
export type RowsPatch = (rows: unknown[]) => unknown[] | undefined;

/** Keys of a page object that can hold its rows, in the order they are tried. */
export const pageKeys = ['items', 'data', 'rows'] as const;

/** Primary keys compare as strings: int8 arrives as "5" while the app may hold 5. */
export const samePk = (item: unknown, pk: Rec, cols: string[]): boolean =>
  Object(item) === item && cols.every((c) => String((item as Rec)[c]) == String(pk[c]));

/** Merges `row` into the items with its primary key. */
export const updateRows =
  (pk: Rec, row: Rec, cols: string[]): RowsPatch =>
  (rows) => {
    let hit = false;
    const out = rows.map((r) => (samePk(r, pk, cols) ? ((hit = true), { ...(r as Rec), ...row }) : r));
    return hit ? out : undefined;
  };

/** Removes the items with this primary key. */
export const deleteRows =
  (pk: Rec, cols: string[]): RowsPatch =>
  (rows) => {
    const out = rows.filter((r) => !samePk(r, pk, cols));
    return out.length < rows.length ? out : undefined;
  };

/** Appends `row`, or merges it where an item with its key is already there (an optimistic insert). */
export const upsertRows =
  (pk: Rec, row: Rec, cols: string[]): RowsPatch =>
  (rows) =>
    updateRows(pk, row, cols)(rows) ?? [...rows, row];

function patchPage(page: unknown, f: RowsPatch): unknown {
  if (Array.isArray(page)) return f(page);
  for (const k of pageKeys) {
    const rows = (page as Rec | null)?.[k];
    if (Array.isArray(rows)) {
      const out = f(rows);
      return out && { ...(page as Rec), [k]: out };
    }
  }
  return null;
}

/**
 * Patches list data: an array of rows; a page `{items|data|rows: [...], …}`; or `InfiniteData`
 * (`{pages, pageParams}`) whose pages are either. Undefined data (a query still loading) is left alone.
 */
export function patchList(data: unknown, f: RowsPatch): unknown {
  if (data === undefined) return undefined;
  const pages = (data as Rec | null)?.pages;
  if (!Array.isArray(pages)) return patchPage(data, f);
  let changed = false;
  const out: unknown[] = [];
  for (const p of pages) {
    const q = patchPage(p, f);
    if (q === null) return null;
    if (q !== undefined) changed = true;
    out.push(q ?? p);
  }
  return changed ? { ...(data as Rec), pages: out } : undefined;
}

/** Replaces (not merges) the items with this primary key, or appends: a live result holds exactly what the relay sent. */
const replaceRows =
  (pk: Rec, row: Rec, cols: string[]): RowsPatch =>
  (rows) => {
    const i = rows.findIndex((r) => samePk(r, pk, cols));
    return i < 0 ? [...rows, row] : rows.map((r, j) => (j == i ? row : r));
  };

/** Changes applied to a live result set (liveQueryOptions): insert and update replace by key or append, delete removes, truncate empties. */
export function applyChanges(rows: unknown[], changes: Array<{ op: string; pk: unknown; row: unknown }>, cols: string[]): unknown[] {
  for (const c of changes)
    rows = c.op == 'truncate' ? [] : ((c.op == 'delete' ? deleteRows(c.pk as Rec, cols) : replaceRows(c.pk as Rec, c.row as Rec, cols))(rows) ?? rows);
  return rows;
}
