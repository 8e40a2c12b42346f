-- Up Migration
-- The writer's side: the append-only change log and the capture trigger. A writer appends and returns: no lock, no
-- ordering, no rendering, no NOTIFY. The ticker (1796400000003_ticker.sql) does the rest.
--
-- SQLSTATEs raised by pgrelay's SQL (also listed in db/sqlstate.ts):
--   PR001 no key to identify rows by        PR005 relay's own tables cannot be watched   PR009 table is not watched
--   PR002 tenant column does not exist      PR007 not a plain or partitioned table       PR010 a schema or table name with a dot
--   PR003 excluded column does not exist    PR008 bad snapshot filter                    PR011 snapshot met an unsequenced TRUNCATE (retry)
--   PR004 key/tenant column excluded                                                     PR012 relay.tick() outside REPEATABLE READ
--   PR013 relay.allow: a bad access rule (1796400000009_rules.sql)

create schema if not exists relay;

-- One row per changed row, appended by the capture trigger in the writer's transaction. Values are raw (to_jsonb in
-- the writer's session); relay.changes renders them for readers. Excluded columns never get here.
create table relay.log (
  -- cache 1: every session takes ids from the shared counter, so a change's id follows every change written before it
  id bigint generated always as identity (cache 1),
  txid xid8 not null default pg_current_xact_id(),
  relid oid not null,
  op text not null,
  -- the new row; the old row for deletes; null for truncates
  row jsonb,
  -- updates only: the whole old row (the old values of changed columns, and old_tenant, are derived from it)
  old_row jsonb,
  -- who and why, as each statement saw them; the ticker keeps the transaction's last statement's values
  db_user text,
  application_name text,
  client_addr inet,
  actor text,
  origin text
);
-- The ticker's one index: it reads the changes of the transactions that finished since its last tick by txid.
create index log_txid on relay.log (txid);

-- Statement-level capture: one INSERT ... SELECT per statement. Argument (when the table has some): the excluded
-- columns, as a text[] literal.
-- SECURITY DEFINER without a SET clause: a SET costs a configuration swap per statement, so instead every name here
-- is schema-qualified and every operator is OPERATOR(pg_catalog.x), which a writer's search_path cannot redirect.
-- Transition tables pair old and new rows by position: Postgres appends one of each per updated row.
create function relay.capture() returns trigger
language plpgsql security definer as $$
declare
  excl pg_catalog.text[];
begin
  if tg_nargs operator(pg_catalog.>) 0 then
    excl := tg_argv[0]::pg_catalog.text[];
  end if;
  if tg_op operator(pg_catalog.=) 'UPDATE' then
    if excl is null then
      insert into relay.log (relid, op, row, old_row, db_user, application_name, client_addr, actor, origin)
      select tg_relid, 'update', p.n, p.o, pg_catalog."session_user"(), pg_catalog.current_setting('application_name'),
             pg_catalog.inet_client_addr(), pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true)
      from rows from (pg_catalog.unnest(array(select pg_catalog.to_jsonb(t.*) from relay_new t)),
                      pg_catalog.unnest(array(select pg_catalog.to_jsonb(t.*) from relay_old t))) p(n, o);
    else
      insert into relay.log (relid, op, row, old_row, db_user, application_name, client_addr, actor, origin)
      select tg_relid, 'update', p.n, p.o, pg_catalog."session_user"(), pg_catalog.current_setting('application_name'),
             pg_catalog.inet_client_addr(), pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true)
      from rows from (pg_catalog.unnest(array(select pg_catalog.to_jsonb(t.*) operator(pg_catalog.-) excl from relay_new t)),
                      pg_catalog.unnest(array(select pg_catalog.to_jsonb(t.*) operator(pg_catalog.-) excl from relay_old t))) p(n, o);
    end if;
  elsif tg_op operator(pg_catalog.=) 'TRUNCATE' then
    insert into relay.log (relid, op, db_user, application_name, client_addr, actor, origin)
    values (tg_relid, 'truncate', pg_catalog."session_user"(), pg_catalog.current_setting('application_name'),
            pg_catalog.inet_client_addr(), pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true));
  elsif tg_op operator(pg_catalog.=) 'INSERT' then
    if excl is null then
      insert into relay.log (relid, op, row, db_user, application_name, client_addr, actor, origin)
      select tg_relid, 'insert', pg_catalog.to_jsonb(t.*), pg_catalog."session_user"(), pg_catalog.current_setting('application_name'),
             pg_catalog.inet_client_addr(), pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true)
      from relay_rows t;
    else
      insert into relay.log (relid, op, row, db_user, application_name, client_addr, actor, origin)
      select tg_relid, 'insert', pg_catalog.to_jsonb(t.*) operator(pg_catalog.-) excl, pg_catalog."session_user"(),
             pg_catalog.current_setting('application_name'), pg_catalog.inet_client_addr(),
             pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true)
      from relay_rows t;
    end if;
  else
    -- DELETE: the old rows
    insert into relay.log (relid, op, row, db_user, application_name, client_addr, actor, origin)
    select tg_relid, 'delete', case when excl is null then pg_catalog.to_jsonb(t.*) else pg_catalog.to_jsonb(t.*) operator(pg_catalog.-) excl end,
           pg_catalog."session_user"(), pg_catalog.current_setting('application_name'), pg_catalog.inet_client_addr(),
           pg_catalog.current_setting('relay.actor', true), pg_catalog.current_setting('relay.origin', true)
    from relay_rows t;
  end if;
  return null;
end $$;

-- Down Migration
drop function if exists relay.capture();
drop table if exists relay.log;
