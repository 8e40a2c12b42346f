-- Up Migration
-- The relay's role, exactly. 1796400000007 granted relay_reader SELECT on every table of relay, yet a relay connected
-- as it could not start (relay.watched calls relay._streamed, which it could not execute), and it could not snapshot a
-- table outside a schema it may use (it named the table as regclass text). Now it has what the relay does, nothing else:
--   relay.watched        which tables, their keys, column types and access rules (and relid: the relay names tables
--                        to relay.snapshot by oid, so it needs no USAGE on the watched tables' schemas)
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

grant select on relay.watched, relay.changes, relay.transactions, relay.tenant_seqs, relay.state, relay.migrations to relay_reader;
grant execute on function relay._streamed(oid, smallint[]) to relay_reader;

-- Down Migration
revoke execute on function relay._streamed(oid, smallint[]) from relay_reader;
grant select on all tables in schema relay to relay_reader;
grant execute on function relay._key(jsonb, text[]) to relay_reader;
