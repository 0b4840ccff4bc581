-- A claim for one table (the function's lanes take turns between the queue tables) takes that
-- table's jobs in the fair order, past the other tables' jobs queued before them, and walks an
-- index of that table's pending jobs instead of every job in line before them. Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(9);

\ir helpers/rows.sql
select pg_temp.reset();
set local embed_queue.poke_skip_until = 'infinity';
select count(*) from pg_temp.new_sessions(2000, 'Early');
select count(*) from pg_temp.new_summaries(5, 'Late'); -- and one session for them
-- The planner's picture of a queue with a long line of one table's jobs.
analyze public.embedding_queue;

select has_index('public', 'embedding_queue', 'embedding_queue_table_fair_idx', array['table_name', 'lane', 'vtime', 'id'],
  'an index of each table''s pending jobs in the fair order');

-- As on a big queue, where the planner would never sort all of a table's jobs for a few of them.
set local enable_seqscan = off;
set local enable_sort = off;
create temp table t52_scans as
  select pg_stat_get_xact_numscans('public.embedding_queue_table_fair_idx'::regclass) as by_table,
         pg_stat_get_xact_numscans('public.embedding_queue_fair_idx'::regclass) as all_tables;
create temp table c1 as select * from embed_queue.claim('t52-a', 3, null, array['summaries']);
select results_eq($$select content from c1$$, $$values ('Late 1'), ('Late 2'), ('Late 3')$$,
  'a claim for one table takes that table''s jobs first in line, in the fair order');
select is((select count(*)::integer from embedding_queue where table_name = 'sessions' and status = 'processing'), 0,
  'and none of the other table''s, queued before them');
select ok((select pg_stat_get_xact_numscans('public.embedding_queue_table_fair_idx'::regclass) > by_table from t52_scans),
  'its picks walk the index of that table''s jobs');
select is((select pg_stat_get_xact_numscans('public.embedding_queue_fair_idx'::regclass) - all_tables from t52_scans), 0::bigint,
  'and not the index of every table''s jobs');
reset enable_seqscan;
reset enable_sort;

create temp table c2 as select * from embed_queue.claim('t52-b', 100, null, array['summaries', 'sessions']);
select is((select count(*)::integer from c2), 100, 'a claim for several tables is full');
select is((select count(*)::integer from c2 where table_name = 'summaries'), 0,
  'in the fair order across them: the sessions queued first');
create temp table c3 as select * from embed_queue.claim('t52-c', 10000);
select is((select count(*)::integer from c3), 1903, 'a claim for all tables takes the rest of both');
create temp table c4 as select * from embed_queue.claim('t52-d', 100);
select is((select count(*)::integer from c4), 0, 'and then nothing is left');

select * from finish();
rollback;
