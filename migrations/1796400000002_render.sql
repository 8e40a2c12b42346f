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

-- A timestamptz (or a one-dimensional array of them) in this session's time zone.
create function relay._tstz_json(v jsonb) returns jsonb
language sql stable parallel safe as $$
  select case jsonb_typeof(v)
    when 'string' then to_jsonb((v #>> '{}')::timestamptz)
    when 'array' then (select coalesce(jsonb_agg(case jsonb_typeof(e) when 'string' then to_jsonb((e #>> '{}')::timestamptz) else e end order by i), '[]')
                       from jsonb_array_elements(v) with ordinality x(e, i))
    else v end
$$;

-- An interval in this session's IntervalStyle (the writer's may have been iso_8601 or sql_standard).
create function relay._interval_json(v jsonb) returns jsonb
language sql stable parallel safe as $$
  select case jsonb_typeof(v) when 'string' then to_jsonb((v #>> '{}')::interval) else v end
$$;

-- A raw row of table `relid` as readers see it. Rebuilt by relay._build_render (from relay._install) with one branch
-- per table ever watched, so that each row is rendered by a plain expression (a generic loop over column names costs
-- some 30-100 µs per row; these cost a few). Until a table is watched: the row as it is.
create function relay._render(relid oid, r jsonb) returns jsonb
language sql stable parallel safe as $$ select r $$;

-- Writes relay._render from relay.watches: for each table, its int8/numeric columns as strings, its timestamptz and
-- interval columns re-rendered, each only where the row has the column (a row logged before ADD COLUMN has not).
create function relay._build_render() returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  w relay.watches;
  parts text[];
  branches text := '';
  k text;
begin
  -- two watch() calls at once would both replace the function: one after the other
  perform pg_advisory_xact_lock(7242, 4);
  for w in select * from relay.watches order by relid loop
    parts := '{}';
    foreach k in array w.numeric_columns loop
      parts := parts || format('case when r ? %1$L then jsonb_build_object(%1$L, case jsonb_typeof(r -> %1$L) when %2$L then relay._numeric_json(r -> %1$L) else to_jsonb(r ->> %1$L) end) else %3$L end', k, 'array', '{}');
    end loop;
    foreach k in array w.tstz_columns loop
      parts := parts || format('case when r ? %1$L then jsonb_build_object(%1$L, case jsonb_typeof(r -> %1$L) when %2$L then to_jsonb((r ->> %1$L)::timestamptz) when %3$L then relay._tstz_json(r -> %1$L) else r -> %1$L end) else %4$L end', k, 'string', 'array', '{}');
    end loop;
    foreach k in array w.interval_columns loop
      parts := parts || format('case when r ? %1$L then jsonb_build_object(%1$L, (r ->> %1$L)::interval) else %2$L end', k, '{}');
    end loop;
    if cardinality(parts) > 0 then
      branches := branches || format(' when %s then r || %s', w.relid, array_to_string(parts, ' || '));
    end if;
  end loop;
  execute format('create or replace function relay._render(relid oid, r jsonb) returns jsonb language sql stable parallel safe as %L',
                 case when branches = '' then 'select r' else format('select case relid%s else r end', branches) end);
end $$;

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
       r.row,
       case when l.op = 'update' then (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(r.old_row) e where r.row -> e.key is distinct from e.value) end as old,
       -- an update that moved the row to another tenant: the tenant it left (which sees a delete, the new one an insert)
       case when l.op = 'update' and (l.old_row ->> w.tenant_column) is distinct from (l.row ->> w.tenant_column)
            then l.old_row ->> w.tenant_column end as old_tenant,
       l.relid
from relay.log l
join relay.watches w on w.relid = l.relid
-- offset 0: render each row once, not once per column that uses it
cross join lateral (select relay._render(l.relid, l.row) as row, relay._render(l.relid, l.old_row) as old_row offset 0) r;

-- Down Migration
drop view if exists relay.changes;
drop function if exists relay._key(jsonb, text[]);
drop function if exists relay._build_render();
drop function if exists relay._render(oid, jsonb);
drop function if exists relay._interval_json(jsonb);
drop function if exists relay._tstz_json(jsonb);
drop function if exists relay._numeric_json(jsonb);
drop table if exists relay.watches;
