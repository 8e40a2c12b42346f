-- Up Migration
-- The ticker rests when the database rests. While the log is quiet the ticker sleeps on LISTEN relay_wake instead of
-- looking at the database every few milliseconds; the first writer that finds it asleep wakes it with one NOTIFY,
-- sent when that writer commits. Under load the ticker says it is awake, and writers send nothing (a NOTIFY takes
-- Postgres's global notification lock at commit, which would make writers wait for each other).

-- Whether the ticker is asleep. Anything but 0 means asleep, so that a sequence never set (a new schema) or reset
-- (an unlogged sequence after a crash) means "writers wake the ticker", the safe side. A sequence because every
-- session sees its value at once, whatever its snapshot, and reading it takes no lock a writer could wait on;
-- unlogged where Postgres allows it (15+), so that setting it writes no WAL and needs no commit flush.
do $$
begin
  if current_setting('server_version_num')::integer >= 150000 then
    execute 'create unlogged sequence relay.ticker_asleep minvalue 0 maxvalue 1 start 1';
  else
    execute 'create sequence relay.ticker_asleep minvalue 0 maxvalue 1 start 1';
  end if;
end $$;

-- The ticker says whether it sleeps. Before it sleeps it sets the flag here and gets back this transaction's xid: a
-- writer that read the flag before it was set had its xid already (it logs a row, then looks), so it has a smaller one.
-- The ticker then ticks once more and keeps looking (1, 2, 4 … ms apart) until no transaction older than that xid is
-- running: such a writer has committed by then, or rolled back. Writers need nothing else to be seen.
create function relay.ticker_sleep(asleep boolean) returns xid8
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
begin
  perform setval('relay.ticker_asleep', case when asleep then 1 else 0 end, true);
  return case when asleep then pg_current_xact_id() end;
end $$;
revoke all on function relay.ticker_sleep(boolean) from public;
grant execute on function relay.ticker_sleep(boolean) to relay_reader;

-- relay.capture, as in 1796400000001, plus the wake-up. It runs once per transaction: the first statement that logs a
-- change marks the transaction (relay._woke, transaction-local, reverted by a rolled-back savepoint together with the
-- NOTIFY it covered) and, if the ticker is asleep, queues NOTIFY relay_wake.
-- Two-phase commit: a transaction that sent NOTIFY cannot be PREPAREd. So writers send wake-ups only where no
-- transaction can be prepared (max_prepared_transactions = 0, Postgres's default), unless relay.wake says otherwise:
-- `on` (e.g. ALTER DATABASE … SET relay.wake = on, when no writer of a watched table uses two-phase commit) or `off`
-- (e.g. ALTER ROLE xa_app SET relay.wake = off). Where writers do not wake it, the ticker does not sleep (db/ticker.ts
-- reads the same settings); a writer that sets `off` for itself is numbered by the ticker's next look (within 1 s).
-- The previous version is kept for the down migration.
alter function relay.capture() rename to _capture_before_011;
create function relay.capture() returns trigger
language plpgsql security definer as $$
declare
  excl pg_catalog.text[];
  wake pg_catalog.text;
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
  -- The wake-up check, after the transaction has an xid (it just logged a row): a writer that read the flag before the
  -- ticker set it is then either committed or in progress in the snapshot of the ticker's last tick before sleeping.
  if found and coalesce(pg_catalog.current_setting('relay._woke', true), '') operator(pg_catalog.<>) 'on' then
    perform pg_catalog.set_config('relay._woke', 'on', true);
    if coalesce(pg_catalog.pg_sequence_last_value('relay.ticker_asleep'::pg_catalog.regclass), 1) operator(pg_catalog.<>) 0 then
      wake := coalesce(pg_catalog.current_setting('relay.wake', true), '');
      if wake operator(pg_catalog.=) 'on' or (wake operator(pg_catalog.<>) 'off'
                                               and pg_catalog.current_setting('max_prepared_transactions') operator(pg_catalog.=) '0') then
        perform pg_catalog.pg_notify('relay_wake', '');
      end if;
    end if;
  end if;
  return null;
end $$;
revoke all on function relay.capture() from public;

-- Point every capture trigger at the new function (relay._install recreates them by name).
select relay._install(relid) from relay.watches where active;

-- Down Migration
drop function relay.capture() cascade;
alter function relay._capture_before_011() rename to capture;
select relay._install(relid) from relay.watches where active;
drop function relay.ticker_sleep(boolean);
drop sequence relay.ticker_asleep;
