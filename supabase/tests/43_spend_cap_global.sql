-- The global daily token cap: once reached, claim() hands out nothing for anyone and touches no
-- job; embed_queue.spend_caps says so and when sending resumes. Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(5);

delete from public.embedding_queue;
delete from embed_queue.spend;
set local embed_queue.poke_skip_until = 'infinity';
update embed_queue.settings set user_daily_tokens = null, global_daily_tokens = 500, bulk_min_share = 0;
insert into auth.users (id, email) values
  ('610b0000-0000-4000-8000-00000000000a', 'g-one@example.com'),
  ('610b0000-0000-4000-8000-00000000000b', 'g-two@example.com');
insert into public.sessions (user_id, title)
select u, lpad(g::text, 400, 'g') from generate_series(1, 5) g,
  unnest(array['610b0000-0000-4000-8000-00000000000a', '610b0000-0000-4000-8000-00000000000b']::uuid[]) u;

select is((select count(*)::integer from embed_queue.claim('global-1', 100)), 5,
  'one claim stops at the global cap (5 inputs of 100 tokens)');
create temp table before as select id, run_at, status, attempts from embedding_queue where status = 'pending';
select is((select count(*)::integer from embed_queue.claim('global-2', 100)), 0, 'over the global cap nothing is handed out');
select set_eq($$select id, run_at, status, attempts from embedding_queue where status = 'pending'$$,
  $$select * from before$$, 'and no waiting job is touched: all wait, none fails');
select results_eq($$select scope, tokens, daily_tokens, reached, waiting, resumes_at = ((now() at time zone 'UTC')::date + 1)::timestamp at time zone 'UTC'
                    from embed_queue.spend_caps$$,
  $$values ('global'::text, 500::bigint, 500::bigint, true, 5::bigint, true)$$,
  'embed_queue.spend_caps shows the global cap reached and when sending resumes');
update embed_queue.settings set global_daily_tokens = null;
select is((select count(*)::integer from embed_queue.claim('global-3', 100)), 5, 'with the cap raised, the rest goes');

select * from finish();
rollback;
