// Aligned text columns for the DBA commands (columnify), streamed: the first page of rows fixes each column's width.
import columnify from 'columnify';

/** One column of a {@link TextTable}. */
export interface TextColumn<R> {
  /** The heading, printed as given. */
  header: string;
  /** The cell text; control characters are shown as `\n`, `\t`… so a row stays on one line. */
  value: (row: R) => string;
  /** `right` for numbers. Default `left`. */
  align?: 'left' | 'right';
  /** Cells wider than this are cut with `…` (the JSON output has them whole). Default: no limit. */
  maxWidth?: number;
}

const escapes: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
// eslint-disable-next-line no-control-regex
const control = /[\u0000-\u001f\u007f]/g;

function clean(text: string): string {
  return text.replace(control, (c) => escapes[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Rows go out in pages. The widths come from the first page (at least the heading, at most `maxWidth`) and hold
 * for every later page, so a long listing stays aligned without being held in memory whole.
 */
export class TextTable<R> {
  readonly #columns: readonly TextColumn<R>[];
  readonly #write: (text: string) => void;
  readonly #pageSize: number;
  #page: Array<Record<string, string>> = [];
  #widths: number[] | undefined;

  constructor(columns: readonly TextColumn<R>[], write: (text: string) => void, pageSize = 500) {
    this.#columns = columns;
    this.#write = write;
    this.#pageSize = pageSize;
  }

  push(row: R): void {
    this.#page.push(Object.fromEntries(this.#columns.map((c, i) => [String(i), clean(c.value(row))])));
    if (this.#page.length >= this.#pageSize) this.#flush();
  }

  /** Prints what is left (the heading alone when there were no rows). */
  end(): void {
    this.#flush();
  }

  #flush(): void {
    const first = this.#widths === undefined;
    // Code points approximate the display width here; columnify pads and cuts by the real one, so columns align either way.
    this.#widths ??= this.#columns.map((c, i) => {
      const widest = Math.max(c.header.length, ...this.#page.map((r) => [...r[String(i)]!].length));
      return c.maxWidth === undefined ? widest : Math.min(widest, Math.max(c.maxWidth, c.header.length));
    });
    if (!first && this.#page.length === 0) return;
    const widths = this.#widths;
    const text = columnify(this.#page, {
      columns: this.#columns.map((_, i) => String(i)),
      showHeaders: first,
      headingTransform: (key: string) => this.#columns[Number(key)]!.header,
      columnSplitter: '  ',
      preserveNewLines: false,
      config: Object.fromEntries(this.#columns.map((c, i) => [String(i), {
        minWidth: widths[i]!, maxWidth: widths[i]!, truncate: true, align: c.align ?? 'left',
      }])),
    });
    this.#page = [];
    // columnify pads the last column too: trailing blanks help nobody.
    this.#write(`${text.split('\n').map((l) => l.trimEnd()).join('\n')}\n`);
  }
}
