-- The row-level alternative to relay.capture(), kept for the capture-overhead benchmark and the equivalence test.
-- Same arguments and the same relay.changes content; one call per changed row instead of one per statement.
create schema if not exists relay_bench;

create or replace function relay_bench.capture_row() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
set "TimeZone" = 'UTC'
set "IntervalStyle" = 'postgres'
set extra_float_digits = 1
as $$
declare
  n integer := coalesce(nullif(current_setting('relay._n', true), ''), '0')::integer + 1;
  tenant_col text := nullif(tg_argv[0], '');
  pk_cols text[] := tg_argv[1]::text[];
  excl text[] := tg_argv[2]::text[];
  nums text[] := tg_argv[3]::text[];
  plain boolean := tg_argv[2] = '{}' and tg_argv[3] = '{}';
  r jsonb;
  o jsonb;
  p jsonb;
  moved_from text;
begin
  if tg_op = 'DELETE' then r := to_jsonb(old); else r := to_jsonb(new); end if;
  if not plain then r := relay._row_json(r, excl, nums); end if;
  if tg_op = 'UPDATE' then
    o := to_jsonb(old);
    if not plain then o := relay._row_json(o, excl, nums); end if;
    moved_from := nullif(o ->> tenant_col, r ->> tenant_col);
    o := (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(o) e where r -> e.key is distinct from e.value);
  end if;
  if cardinality(pk_cols) = 1 then p := jsonb_build_object(pk_cols[1], r -> pk_cols[1]);
  else p := (select jsonb_object_agg(k, r -> k) from unnest(pk_cols) k);
  end if;
  if nullif(current_setting('relay._seq', true), '') is not null then
    raise exception 'pgrelay: this transaction already took its commit position, so its later changes to %.% cannot be streamed', tg_table_schema, tg_table_name using errcode = 'PR006';
  end if;
  insert into relay.changes (txid, id, tenant, schema_name, table_name, op, pk, row, old, old_tenant)
  values (pg_current_xact_id(), n, r ->> tenant_col, tg_table_schema, tg_table_name, lower(tg_op), p, r, o, moved_from);
  perform set_config('relay._n', n::text, true);
  return null;
end $$;

-- Replaces a watched table's statement-level capture with the row-level one (TRUNCATE keeps its statement trigger).
create or replace function relay_bench.use_row_level(tbl regclass) returns void language plpgsql as $$
declare
  a record;
  args text;
begin
  -- the ALTER TABLE below would otherwise wake relay._on_ddl, which reinstalls the statement-level triggers
  perform set_config('relay._installing', 'on', true);
  select * into a from relay._watch_args(tbl);
  args := format('%L, %L, %L, %L', coalesce(a.tenant_column, ''), a.pk_columns::text, a.exclude_columns::text, a.numeric_columns::text);
  execute format('drop trigger relay_capture_insert on %s', tbl);
  execute format('drop trigger relay_capture_update on %s', tbl);
  execute format('drop trigger relay_capture_delete on %s', tbl);
  execute format('create trigger relay_capture_row after insert or update or delete on %s for each row execute function relay_bench.capture_row(%s)', tbl, args);
  execute format('alter table %s enable always trigger relay_capture_row', tbl);
  perform set_config('relay._installing', '', true);
end $$;
