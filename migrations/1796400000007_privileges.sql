-- Up Migration
-- Least privilege. Writers need nothing on schema relay: capture is SECURITY DEFINER. The relay's role, relay_reader,
-- reads the log, runs the ticker, snapshots and pruning (all SECURITY DEFINER), and LISTENs (which needs no grant):
-- it cannot write to relay's tables directly, nor read the watched tables themselves.
revoke all on all functions in schema relay from public;
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'relay_reader') then
    create role relay_reader nologin;
  end if;
end $$;
grant usage on schema relay to relay_reader;
grant select on all tables in schema relay to relay_reader;
grant execute on function relay.snapshot(regclass, text, jsonb), relay.position(), relay.prune(interval, integer),
  relay.tick(pg_snapshot, integer) to relay_reader;
-- the render helpers run as the reader of relay.changes / relay.audit
grant execute on function relay._render(oid, jsonb), relay._numeric_json(jsonb), relay._tstz_json(jsonb),
  relay._interval_json(jsonb), relay._key(jsonb, text[]) to relay_reader;

-- Down Migration
revoke all on schema relay from relay_reader;
revoke all on all tables in schema relay from relay_reader;
revoke all on all functions in schema relay from relay_reader;
do $$
begin
  drop role relay_reader;
exception when dependent_objects_still_exist then
  raise notice 'pgrelay: role relay_reader is still used by another database; kept';
end $$;
