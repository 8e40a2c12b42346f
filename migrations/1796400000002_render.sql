-- Up Migration
-- The reader's side of the log: which tables are captured and how their raw rows read (relay.changes). Rendering
-- happens here, on read, so that writers never pay for it: int8/numeric values become JSON strings, timestamptz
-- values are rendered in the reading session's time zone (pgrelay's own sessions use UTC), intervals in its
-- IntervalStyle (pgrelay's: postgres), pk is cut from the row, `old` is the diff against the old row. The helpers have no
-- SET clause so that Postgres can inline them; they only call pg_catalog functions.

-- One row per table ever watched, kept after unwatch or DROP (active = false) so that history still reads.
-- The *_attnums are what relay.watch was given (they survive renames); the name arrays are derived from them and the
-- catalog by relay._install, and are what readers use.
create table relay.watches (
  relid oid primary key,
  schema_name text not null,
  table_name text not null,
  tenant_attnum smallint,
  key_attnums smallint[] not null,
  exclude_attnums smallint[] not null default '{}',
  -- derived
  tenant_column text,
  key_columns text[] not null,
  exclude_columns text[] not null default '{}',
  -- int8/numeric (and domains and arrays of them): rendered as JSON strings
  numeric_columns text[] not null default '{}',
  -- timestamptz (and domains and arrays of it): re-rendered in the reader's time zone
  tstz_columns text[] not null default '{}',
  -- interval: re-rendered in the reader's IntervalStyle
  interval_columns text[] not null default '{}',
  -- how the key was chosen: 'primary key', 'replica identity', 'unique index <name>'
  key_source text not null,
  watched_at timestamptz not null default now(),
  active boolean not null default true
);

-- A number (or an array of them, at any depth) as JSON strings: the digits Postgres stored, never a float.
create function relay._numeric_json(v jsonb) returns jsonb
language sql immutable parallel safe as $$
  select case jsonb_typeof(v)
    when 'number' then to_jsonb(v #>> '{}')
    -- an int8[]/numeric[] holds numbers, nulls, brackets and the quoted strings "NaN"/"Infinity": quote the numbers
    when 'array' then regexp_replace(v::text, '(-?[0-9][0-9.eE+-]*)', '"\1"', 'g')::jsonb
    else v end
$$;

-- A timestamptz (or a one-dimensional array of them) in this session's time zone; infinities as they are.
create function relay._tstz_json(v jsonb) returns jsonb
language sql stable parallel safe as $$
  select case jsonb_typeof(v)
    when 'string' then case when isfinite((v #>> '{}')::timestamptz) then to_jsonb((v #>> '{}')::timestamptz) else v end
    when 'array' then (select coalesce(jsonb_agg(relay._tstz_json(e) order by i), '[]') from jsonb_array_elements(v) with ordinality x(e, i))
    else v end
$$;

-- An interval in this session's IntervalStyle (the writer's may have been iso_8601 or sql_standard).
create function relay._interval_json(v jsonb) returns jsonb
language sql stable parallel safe as $$
  select case jsonb_typeof(v) when 'string' then to_jsonb((v #>> '{}')::interval) else v end
$$;

-- A raw row as readers see it.
create function relay._render(r jsonb, numeric_columns text[], tstz_columns text[], interval_columns text[]) returns jsonb
language sql stable parallel safe as $$
  select case
    when r is null or jsonb_typeof(r) <> 'object' then r
    when numeric_columns = '{}' and tstz_columns = '{}' and interval_columns = '{}' then r
    else r || coalesce((
      select jsonb_object_agg(k, case when k = any (numeric_columns) then relay._numeric_json(r -> k)
                                      when k = any (tstz_columns) then relay._tstz_json(r -> k)
                                      else relay._interval_json(r -> k) end)
      from unnest(numeric_columns || tstz_columns || interval_columns) k
      where r ? k), '{}')
  end
$$;

-- The old values of the columns an update changed.
create function relay._diff(old_row jsonb, new_row jsonb) returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(old_row) e where new_row -> e.key is distinct from e.value
$$;

-- A row's key as a JSON array, in key column order (compares 1 and 1.0 equal, as jsonb does).
create function relay._key(r jsonb, key_columns text[]) returns jsonb
language sql immutable parallel safe as $$
  select jsonb_agg(r -> k order by i) from unnest(key_columns) with ordinality u(k, i)
$$;

-- Every captured change, rendered: the change log as readers know it. `id` orders changes (inside a transaction
-- too); join relay.transactions on txid for seq. A change of a transaction the ticker has not numbered yet has no
-- relay.transactions row.
create view relay.changes as
select l.id, l.txid,
       case when l.op <> 'truncate' then l.row ->> w.tenant_column end as tenant,
       w.schema_name, w.table_name, l.op,
       case when l.op <> 'truncate' then (select jsonb_object_agg(k, r.row -> k) from unnest(w.key_columns) k) end as pk,
       r.row, r.old,
       -- an update that moved the row to another tenant: the tenant it left (which sees a delete, the new one an insert)
       case when l.op = 'update' and (l.old_row ->> w.tenant_column) is distinct from (l.row ->> w.tenant_column)
            then l.old_row ->> w.tenant_column end as old_tenant,
       l.relid
from relay.log l
join relay.watches w on w.relid = l.relid
cross join lateral (
  select relay._render(l.row, w.numeric_columns, w.tstz_columns, w.interval_columns) as row,
         case when l.op = 'update' then relay._render(relay._diff(l.old_row, l.row), w.numeric_columns, w.tstz_columns, w.interval_columns) end as old
) r;

-- Down Migration
drop view if exists relay.changes;
drop function if exists relay._key(jsonb, text[]);
drop function if exists relay._diff(jsonb, jsonb);
drop function if exists relay._render(jsonb, text[], text[], text[]);
drop function if exists relay._interval_json(jsonb);
drop function if exists relay._tstz_json(jsonb);
drop function if exists relay._numeric_json(jsonb);
drop table if exists relay.watches;
