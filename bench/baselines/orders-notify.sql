-- The baselines' capture: the trigger their public descriptions use, one pg_notify per changed row carrying
-- the operation and row_to_json of the row (the old row for deletes). No log, no sequence, no resume.
create function orders_notify() returns trigger
language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    perform pg_notify('orders_changes', json_build_object('op', tg_op, 'row', row_to_json(old))::text);
  else
    perform pg_notify('orders_changes', json_build_object('op', tg_op, 'row', row_to_json(new))::text);
  end if;
  return null;
end
$$;

create trigger orders_notify after insert or update or delete on orders
  for each row execute function orders_notify();
