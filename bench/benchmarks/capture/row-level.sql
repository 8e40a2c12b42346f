-- The row-level alternative to relay.capture(), kept for the capture-overhead benchmark and the equivalence test.
-- Same argument (the excluded columns, if any) and the same relay.log content; one call per changed row instead of one
-- per statement.
create schema if not exists relay_bench;

create or replace function relay_bench.capture_row() returns trigger
language plpgsql security definer as $$
declare
  excl pg_catalog.text[];
  r jsonb;
  o jsonb;
begin
  if tg_nargs operator(pg_catalog.>) 0 then
    excl := tg_argv[0]::pg_catalog.text[];
  end if;
  if tg_op operator(pg_catalog.=) 'DELETE' then r := pg_catalog.to_jsonb(old); else r := pg_catalog.to_jsonb(new); end if;
  if tg_op operator(pg_catalog.=) 'UPDATE' then o := pg_catalog.to_jsonb(old); end if;
  if excl is not null then
    r := r operator(pg_catalog.-) excl;
    o := o operator(pg_catalog.-) excl;
  end if;
  insert into relay.log (relid, op, row, old_row, db_user, application_name, client_addr, actor, origin)
  values (tg_relid, pg_catalog.lower(tg_op), r, o, pg_catalog."session_user"(), pg_catalog.current_setting('application_name'),
          pg_catalog.inet_client_addr(), pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true));
  return null;
end $$;

-- Replaces a watched table's statement-level capture with the row-level one (TRUNCATE keeps its statement trigger).
create or replace function relay_bench.use_row_level(tbl regclass) returns void language plpgsql as $$
declare
  args text;
begin
  -- the ALTER TABLE below would otherwise wake relay._on_ddl, which reinstalls the statement-level triggers
  perform set_config('relay._installing', 'on', true);
  select string_agg(quote_literal(a), ', ' order by o) into args
  from pg_trigger t, unnest(string_to_array(encode(t.tgargs, 'escape'), '\000')) with ordinality x(a, o)
  where t.tgrelid = tbl and t.tgname = 'relay_capture_insert' and a <> '';
  execute format('drop trigger relay_capture_insert on %s', tbl);
  execute format('drop trigger relay_capture_update on %s', tbl);
  execute format('drop trigger relay_capture_delete on %s', tbl);
  execute format('create trigger relay_capture_row after insert or update or delete on %s for each row execute function relay_bench.capture_row(%s)', tbl, args);
  execute format('alter table %s enable always trigger relay_capture_row', tbl);
  perform set_config('relay._installing', '', true);
end $$;
