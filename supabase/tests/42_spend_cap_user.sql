-- A user's daily token cap: counted at claim before sending, passed by at most one input; over
-- it the user's jobs wait (pending, reason and resume time visible, no attempt spent) while
-- other users' go on; an operator can lift it. Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(11);

delete from public.embedding_queue;
delete from embed_queue.spend;
set local embed_queue.poke_skip_until = 'infinity';
update embed_queue.settings set user_daily_tokens = 1000, global_daily_tokens = null, bulk_min_share = 0;
insert into auth.users (id, email) values
  ('ca900000-0000-4000-8000-00000000000a', 'spender@example.com'),
  ('ca900000-0000-4000-8000-00000000000b', 'frugal@example.com');

-- 30 rows of 400 bytes (estimated 100 tokens each) for A, 2 for B.
insert into public.sessions (user_id, title)
select 'ca900000-0000-4000-8000-00000000000a', lpad(g::text, 400, 'a') from generate_series(1, 30) g;
insert into public.sessions (user_id, title)
select 'ca900000-0000-4000-8000-00000000000b', lpad(g::text, 400, 'b') from generate_series(1, 2) g;

create temp table c1 as
  select s.user_id from embed_queue.claim('cap-1', 100) c join public.sessions s on s.id::text = c.record_id;
select results_eq($$select user_id, count(*)::integer from c1 group by user_id order by user_id$$,
  $$values ('ca900000-0000-4000-8000-00000000000a'::uuid, 10), ('ca900000-0000-4000-8000-00000000000b'::uuid, 2)$$,
  'a claim hands a user no more than their cap allows; others are not held back');
select is((select sum(tokens)::bigint from embed_queue.spend where fair_key = 'ca900000-0000-4000-8000-00000000000a'), 1000::bigint,
  'the tokens are counted at claim, before anything is sent');
select results_eq(
  $$select count(*)::integer, max(attempts), bool_and(locked_by is null) from embedding_queue
    where status = 'pending' and user_id = 'ca900000-0000-4000-8000-00000000000a'$$,
  $$values (20, 0, true)$$, 'the jobs over the cap stay pending with no attempt spent');

-- The next claim: A is capped. Their jobs wait for the next UTC day, saying so.
select is((select count(*)::integer from embed_queue.claim('cap-2', 100)), 0, 'a capped user''s jobs are not handed out');
select results_eq(
  $$select count(*)::integer, bool_and(run_at = ((now() at time zone 'UTC')::date + 1)::timestamp at time zone 'UTC'),
           bool_and(error_message like 'waiting: this user''s daily token cap (1000) is reached; resumes at %')
    from embedding_queue where status = 'pending' and user_id = 'ca900000-0000-4000-8000-00000000000a'$$,
  $$values (20, true, true)$$, 'they wait until the next UTC day, with the reason and the time they resume');
select results_eq(
  $$select scope, fair_key, tokens, daily_tokens, waiting from embed_queue.spend_caps$$,
  $$values ('user'::text, 'ca900000-0000-4000-8000-00000000000a'::text, 1000::bigint, 1000::bigint, 20::bigint)$$,
  'embed_queue.spend_caps shows who is capped, by how much, and what waits');
select is((select count(*)::integer from embedding_queue where status = 'failed'), 0, 'nothing fails');

-- B, under the cap, is not held back by A.
insert into public.sessions (user_id, title) values ('ca900000-0000-4000-8000-00000000000b', 'one more');
select is((select count(*)::integer from embed_queue.claim('cap-3', 100)), 1, 'another user''s new row still goes');

-- The operator lifts A's cap.
select is(embed_queue.lift_cap('ca900000-0000-4000-8000-00000000000a', 100000), 20, 'lift_cap lets the waiting jobs go');
select is((select count(*)::integer from embed_queue.claim('cap-4', 100)), 20, 'and the next claim takes them');

-- tick() sums the ledger: one row per user and day, the same total.
insert into embed_queue.spend (day, fair_key, tokens)
values ((now() at time zone 'UTC')::date, 'ca900000-0000-4000-8000-00000000000a', 5);
select embed_queue.compact_spend();
select results_eq($$select count(*)::integer, sum(tokens)::bigint from embed_queue.spend
                    where fair_key = 'ca900000-0000-4000-8000-00000000000a'$$,
  $$values (1, 3005::bigint)$$, 'the spend ledger is summed into one row per user and day');

select * from finish();
rollback;
