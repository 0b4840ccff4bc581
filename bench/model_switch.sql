-- What a model switch costs as the table grows: reembed() (add the shadow column, queue every
-- row), then the swap (switch_model: move the jobs, swap the target rows, rename the columns,
-- install the triggers), and how long the swap holds the table's ACCESS EXCLUSIVE lock.
--
-- Run on a throwaway stack (it creates and drops its own table, bench_switch, 8 dimensions so
-- the table stays small: the swap's cost is in the queue, not the vectors):
--   psql "$DB_URL" -v rows=100000 -f bench/model_switch.sql
-- Prints one line per step with its milliseconds (clock_timestamp differences).
\set ON_ERROR_STOP 1
\if :{?rows}
\else
  \set rows 100000
\endif

drop table if exists public.bench_switch;
create table public.bench_switch (id bigint primary key, body text, emb extensions.vector(8));
select embed_queue.register_target('bench_switch', 'body', 'emb', p_user_column => null, p_deleted_column => null);

-- Rows with a vector of the old model and a completed job each.
set session_replication_role = replica;
insert into public.bench_switch select g, 'text ' || g, '[1,0,0,0,0,0,0,0]' from generate_series(1, :rows) g;
set session_replication_role = origin;
insert into public.embedding_queue (table_name, record_id, embedding_column, content, status, model, completed_at)
select 'bench_switch', g::text, 'emb', 'text ' || g, 'completed', 'm-old', now() from generate_series(1, :rows) g;
update embed_queue.targets set model = 'm-old' where queue_table = 'bench_switch';
analyze public.bench_switch;

create temp table t (step text, ms numeric);
do $$
declare t0 timestamptz := clock_timestamp();
begin
  perform * from embed_queue.reembed('bench_switch', 'm-new', 8);
  insert into t values ('reembed (shadow column, every row queued)', extract(epoch from clock_timestamp() - t0) * 1000);
end $$;

-- The new model's vectors, as its runs would have written them.
set session_replication_role = replica;
update public.bench_switch set emb_next = '[0,1,0,0,0,0,0,0]';
set session_replication_role = origin;
update public.embedding_queue set status = 'completed', model = 'm-new', completed_at = now()
where table_name = 'bench_switch' and embedding_column = 'emb_next';

do $$
declare t0 timestamptz := clock_timestamp();
begin
  perform embed_queue.generation_ready(x) from embed_queue.targets x where queue_table = 'bench_switch' and generation = 'next';
  insert into t values ('generation_ready (the tick''s check)', extract(epoch from clock_timestamp() - t0) * 1000);
end $$;

-- The swap, with the moment it took the table's lock (the column renames come last).
do $$
declare t0 timestamptz := clock_timestamp();
begin
  perform * from embed_queue.switch_model('bench_switch');
  insert into t values ('switch_model (one transaction)', extract(epoch from clock_timestamp() - t0) * 1000);
end $$;
do $$
declare t0 timestamptz := clock_timestamp(); v_ms numeric;
begin
  begin
    -- The table-locking part alone (renames, triggers), without the job moves; undone after.
    execute 'alter table public.bench_switch rename column emb to emb_x';
    execute 'alter table public.bench_switch rename column emb_prev to emb';
    execute 'alter table public.bench_switch rename column emb_x to emb_prev';
    perform embed_queue.register_target('public.bench_switch', 'body', 'emb', null, null, null);
    perform embed_queue.register_target('public.bench_switch', 'body', 'emb_prev', null, null, null);
    v_ms := extract(epoch from clock_timestamp() - t0) * 1000;
    raise exception using errcode = 'P0001', message = 'undo';
  exception when raise_exception then
    insert into t values ('of which under the table lock (renames, triggers)', v_ms);
  end;
end $$;

select :rows as rows, step, round(ms, 1) as ms from t;

select * from embed_queue.drop_old_vectors('bench_switch');
select embed_queue.drop_triggers('public', 'bench_switch', 'emb');
delete from public.embedding_queue where table_name = 'bench_switch';
delete from embed_queue.targets where queue_table = 'bench_switch';
drop table public.bench_switch;
