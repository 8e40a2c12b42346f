// Row types of a kysely-codegen `DB` interface as they arrive on the wire. Types only: kysely is never imported, its shapes are matched structurally.
import type { ColumnFilter, Row } from './shared/protocol.js';

/** The select side of kysely's `ColumnType<S, I, U>` (and `Generated<T>`, `Int8`, `Timestamp`, …), unwrapped through nesting such as kysely's own `Generated<Int8>`; a plain type is its own. */
export type SelectType<C> = C extends { readonly __select__: infer S } ? SelectType<S> : C;

/** A value after `to_jsonb` and JSON: Date, bigint and bytes (Buffer) become strings; arrays and objects map their members. */
export type Wire<T> = T extends Date | bigint | Uint8Array
  ? string
  : T extends readonly (infer E)[]
    ? Wire<E>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** A table's selectable columns, as JSON. */
export type WireRow<T> = { [K in keyof T as [SelectType<T[K]>] extends [never] ? never : K]: Wire<SelectType<T[K]>> };

/** Table names a `DB` allows: its keys, and `public.<name>` for a bare one. Any string when there is no `DB` type. */
export type TableName<DB> = unknown extends DB
  ? string
  : { [K in keyof DB & string]: K extends `${string}.${string}` ? K : K | `public.${K}` }[keyof DB & string];

/** The row of `table` in `DB` (bare or `public.` qualified); `Row` when there is no `DB` type. */
export type TableRow<DB, T extends string> = unknown extends DB
  ? Row
  : T extends keyof DB
    ? WireRow<DB[T]>
    : T extends `public.${infer N}`
      ? N extends keyof DB
        ? WireRow<DB[N]>
        : Row
      : Row;

/** A filter on a row's columns: each column's comparisons, all AND-ed. */
export type TableFilter<R> = { [K in keyof R & string]?: ColumnFilter };
