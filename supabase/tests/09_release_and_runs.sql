-- release gives jobs back with their attempt refunded; runs are recorded; pending_count and
-- queue_secret answer the function.
begin;
set local search_path = public, extensions;
select plan(11);

\ir helpers/rows.sql
select pg_temp.reset();
select count(*) from pg_temp.new_summaries(5, 'Released summary');
select count(*) from pg_temp.new_sessions(3, 'Waiting session');

create temp table held as select * from embed_queue.claim('w', 5, null, array['summaries']);
select is(embed_queue.release('w', array[(select min(id) from held)]), 1, 'release of one id gives back one job');
select results_eq(
  $$select status, attempts, locked_by, locked_until, run_at <= now() from embedding_queue where id = (select min(id) from held)$$,
  $$values ('pending'::text, 0, null::text, null::timestamptz, true)$$,
  'released: pending now, attempt refunded, lease cleared');
select is(embed_queue.release('someone-else'), 0, 'a worker cannot release what it does not hold');
select is(embed_queue.release('w'), 4, 'null ids: everything the worker holds');
select is((select count(*)::integer from embedding_queue where status = 'processing'), 0, 'nothing held any more');

select is(embed_queue.pending_count(), 9::bigint, 'pending_count: 9 jobs to do (the summaries'' session too)');
select is(embed_queue.pending_count(array['sessions']), 4::bigint, 'pending_count for one table');

-- Runs.
select ok(embed_queue.start_run('w', 'webhook') is not null, 'start_run returns an id');
select lives_ok(
  $$select embed_queue.finish_run((select max(id) from embed_queue.runs),
      '{"claimed": 5, "completed": 4, "failed": 1, "skipped": 0, "stale": 0, "requests": 1,
        "rate_limited": 0, "tokens": 321, "cost_usd": 0.00000642, "error": null}')$$,
  'finish_run records the counts');
select results_eq(
  $$select worker, trigger, claimed, completed, failed, requests, tokens, cost_usd, finished_at is not null
    from embed_queue.runs where id = (select max(id) from embed_queue.runs)$$,
  $$values ('w'::text, 'webhook'::text, 5, 4, 1, 1, 321::bigint, 0.00000642::numeric, true)$$,
  'the run row holds them');

select is(embed_queue.queue_secret(),
  (select decrypted_secret from vault.decrypted_secrets where name = 'embed_queue_secret'),
  'queue_secret is the Vault secret embed_queue_secret');

select * from finish();
rollback;
