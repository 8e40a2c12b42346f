-- Up Migration
-- The relay's role, exactly. 1796400000007 granted relay_reader SELECT on every table of relay, yet a relay connected
-- as it could not start (relay.watched calls relay._streamed, which it could not execute), and it could not snapshot a
-- table outside a schema it may use (it named the table as regclass text). Now it has what the relay does, nothing else:
--   relay.watched        which tables, their keys and column types (and relid: the relay names tables to
--                        relay.snapshot by oid, so it needs no USAGE on the watched tables' schemas)
--   relay.changes, relay.transactions, relay.tenant_seqs
--                        catch-up, gaps and resume from the log (a view over relay.log: the raw log stays unreadable)
--   relay.state          where pruned history ends (older cursors reset)
--   relay.migrations     whether the schema is current, so that `pgrelay start` need not migrate
--   relay.tick, relay.position, relay.snapshot, relay.prune
--                        the ticker, positions, snapshots and retention (SECURITY DEFINER: it writes through them only)
--   relay._render, relay._numeric_json, relay._tstz_json, relay._interval_json, relay._streamed
--                        what relay.changes and relay.watched call, as the reader of those views
-- Advisory locks (ticker and pruner election) and LISTEN need no grant. Not granted: relay.log, relay.watches,
-- relay.ticker, relay.audit (the DBA's view: `pgrelay audit` and `tail` run as the owner), any write, any watched table.
revoke select on all tables in schema relay from relay_reader;
revoke execute on function relay._key(jsonb, text[]) from relay_reader;

create or replace view relay.watched as
select
  w.schema_name,
  w.table_name,
  w.schema_name || '.' || w.table_name as "table",
  w.tenant_column,
  w.key_columns as primary_key,
  w.key_source,
  w.exclude_columns,
  w.numeric_columns,
  (select jsonb_agg(jsonb_build_object('name', s.attname, 'type', s.type,
                                       'base', (case when t.typtype = 'd' then t.typbasetype else t.oid end)::regtype::text) order by s.attnum)
     from relay._streamed(w.relid, w.exclude_attnums) s
     join pg_attribute a on a.attrelid = w.relid and a.attnum = s.attnum
     join pg_type t on t.oid = a.atttypid) as columns,
  w.watched_at,
  (select count(*) = 4 from pg_trigger tg where tg.tgrelid = w.relid and tg.tgname like 'relay\_capture\_%' and tg.tgenabled = 'A') as capturing,
  w.relid
from relay.watches w
where w.active;

grant select on relay.watched, relay.changes, relay.transactions, relay.tenant_seqs, relay.state, relay.migrations to relay_reader;
grant execute on function relay._streamed(oid, smallint[]) to relay_reader;

-- Down Migration
revoke execute on function relay._streamed(oid, smallint[]) from relay_reader;
drop view relay.watched;
create view relay.watched as
select
  w.schema_name,
  w.table_name,
  w.schema_name || '.' || w.table_name as "table",
  w.tenant_column,
  w.key_columns as primary_key,
  w.key_source,
  w.exclude_columns,
  w.numeric_columns,
  (select jsonb_agg(jsonb_build_object('name', s.attname, 'type', s.type,
                                       'base', (case when t.typtype = 'd' then t.typbasetype else t.oid end)::regtype::text) order by s.attnum)
     from relay._streamed(w.relid, w.exclude_attnums) s
     join pg_attribute a on a.attrelid = w.relid and a.attnum = s.attnum
     join pg_type t on t.oid = a.atttypid) as columns,
  w.watched_at,
  (select count(*) = 4 from pg_trigger tg where tg.tgrelid = w.relid and tg.tgname like 'relay\_capture\_%' and tg.tgenabled = 'A') as capturing
from relay.watches w
where w.active;
grant select on all tables in schema relay to relay_reader;
grant execute on function relay._key(jsonb, text[]) to relay_reader;
