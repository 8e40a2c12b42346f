-- Up Migration
-- For DBAs: relay.audit (every numbered change with its transaction's who and why) and relay.prune (retention).

-- One row per change with its transaction, in seq order by (seq, change_id). old_tenant: an update that moved the row
-- to another tenant; that tenant's subscribers received it as a delete, so "what did tenant X receive" is
-- `where tenant = X or old_tenant = X` (plus truncates, whose tenant is null).
create view relay.audit as
select t.seq, t.committed_at, t.db_user, t.application_name, t.client_addr, t.actor, t.origin,
       c.tenant, c.schema_name || '.' || c.table_name as "table", c.op, c.pk, c.row, c.old, c.old_tenant,
       c.id as change_id, t.txid
from relay.transactions t
join relay.changes c on c.txid = t.txid;

-- Deletes history older than `keep` (never the newest transaction), in batches; returns the number of changes removed.
create function relay.prune(keep interval, batch_size integer default 5000) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  horizon bigint;
  removed bigint := 0;
  batch bigint;
  upto bigint;
begin
  select max(seq) into horizon from relay.transactions
   where committed_at < now() - keep and seq < (select max(seq) from relay.transactions);
  if horizon is null then return 0; end if;
  loop
    select max(seq) into upto from (select seq from relay.transactions where seq <= horizon order by seq limit batch_size) s;
    exit when upto is null;
    delete from relay.tenant_seqs where seq <= upto;
    with gone as (delete from relay.transactions where seq <= upto returning txid)
    delete from relay.log l using gone where l.txid = gone.txid;
    get diagnostics batch = row_count;
    removed := removed + batch;
  end loop;
  update relay.state set pruned_through = greatest(pruned_through, horizon);
  return removed;
end $$;

-- Down Migration
drop function if exists relay.prune(interval, integer);
drop view if exists relay.audit;
