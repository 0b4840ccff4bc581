-- The Batch API path's SQL (migration 20261124001300_batches.sql): a batch opens only over its
-- threshold and holds its jobs as 'batch:<id>' past the 24 h window; one run at a time works on a
-- batch; vectors go through complete()'s fence; what a batch still holds goes back with the
-- attempt refunded; cancel; tick() calls the function for a batch with a step due.
begin;
set local search_path = public, extensions;
select plan(22);

-- The seed's 55 pending jobs, made bulk work.
update embedding_queue set lane = 'bulk';
update embed_queue.settings set batch_min_jobs = 56, batch_max_jobs = 10, batch_inputs_per_request = 4;

select is((select count(*)::integer from embed_queue.batch_open('w1', 'text-embedding-3-small', 1536)), 0,
  'under batch_min_jobs runnable bulk jobs: no batch');
update embed_queue.settings set batch_enabled = false, batch_min_jobs = 55;
select is((select count(*)::integer from embed_queue.batch_open('w1', 'text-embedding-3-small', 1536)), 0,
  'batch_enabled off: no batch');
update embed_queue.settings set batch_enabled = true;
select is((select count(*)::integer from embed_queue.batch_open('w1', 'text-embedding-3-small', 99)), 0,
  'no batch of a size no target column takes');

create temp table b1 as select * from embed_queue.batch_open('w1', 'text-embedding-3-small', 1536);
select is((select jobs from b1), 10, 'a batch of batch_max_jobs jobs');
select results_eq(
  $$select count(*)::integer, bool_and(attempts = 1), bool_and(locked_until > now() + interval '25 hours'),
           bool_and(content_hash is not null)
    from embedding_queue where locked_by = 'batch:' || (select batch_id from b1) and status = 'processing'
      and batch_id = (select batch_id from b1)$$,
  $$values (10, true, true, true)$$,
  'its jobs: processing, locked_by batch:<id>, batch_id set, attempt counted, held past the 24 h window, hashed');
select is((select count(*)::integer from embedding_queue where status = 'pending' and lane = 'batch'), 45,
  'the rest of the backlog waits in the batch lane, which claim() does not take');
select is((select count(*)::integer from embed_queue.claim('sync', 100)), 0, 'the synchronous path leaves it alone');
select is((select inputs_per_request from embed_queue.batches where id = (select batch_id from b1)), 4,
  'the batch keeps the line size it was opened with');
select is(embed_queue.rescue(), 0, 'rescue() leaves a batch''s jobs alone');

-- One run at a time: the opener holds the batch; another worker gets nothing, the opener again.
select is((select count(*)::integer from embed_queue.batch_take('w2')), 0, 'another run cannot take a leased batch');
select is((select count(*)::integer from embed_queue.batch_take('w1')), 1, 'the run that leases it takes it again');

-- The same fence as the synchronous path: a row edited while its batch runs takes its job back.
create temp table edited as
  select q.id, q.record_id, q.content_hash from embedding_queue q
  where q.locked_by = 'batch:' || (select batch_id from b1) and q.table_name = 'sessions' limit 1;
update sessions set title = title || ' (edited)' where id::text = (select record_id from edited);
select results_eq(
  $$select outcome from embed_queue.complete('batch:' || (select batch_id from b1),
      array[(select id from edited)], array[(select content_hash from edited)],
      array[(select '[' || array_to_string(array_fill(0.01::float4, array[1536]), ',') || ']')],
      array[3], array[false], 'text-embedding-3-small', 1536)$$,
  $$values ('lost'::text)$$,
  'complete() under the batch''s name writes nothing for an edited row');
select is((select title_embedding from sessions where id::text = (select record_id from edited)), null,
  'the edited row holds no vector');

-- Uploaded, then submitted: only by the run that leases it.
select ok(not embed_queue.batch_uploaded((select batch_id from b1), 'w2', 'file-x', '[]'), 'another run cannot record a step');
select ok(embed_queue.batch_uploaded((select batch_id from b1), 'w1', 'file-x',
  '[{"line": 0, "job_ids": [1, 2], "hashes": ["a", "b"], "truncated": [false, false]}]'), 'uploaded: the file and its lines');
select ok(embed_queue.batch_submitted((select batch_id from b1), 'w1', 'batch_x', 'validating'), 'submitted');
select is(embed_queue.batch_due(), false, 'a submitted batch is not due before its poll');
update embed_queue.batches set next_poll_at = now() - interval '1 second', locked_by = null, locked_until = null;
select is(embed_queue.batch_due(), true, 'a poll due: tick() calls the function (batch_due)');

-- Cancel of a submitted batch: asked, for the next run; finishing releases what it holds.
select matches(embed_queue.cancel_batch((select batch_id from b1)), '^cancel requested', 'cancel of a submitted batch is asked for');
select is(embed_queue.batch_finish((select batch_id from b1), null, 'cancelled'), 9,
  'the batch ends and releases the 9 jobs it still held');
select results_eq(
  $$select count(*)::integer, bool_and(attempts = 0), bool_and(locked_by is null)
    from embedding_queue where batch_id = (select batch_id from b1) and status = 'pending'$$,
  $$values (10, true, true)$$,
  'released: pending, attempt refunded, lease cleared (and the edited one pending with its new text)');
select is((select count(*)::integer from embed_queue.batch_candidates(100)
           where batch_candidates in (select id from embedding_queue where batch_id = (select batch_id from b1))), 0,
  'a job a batch gave back is left to the synchronous path, not taken by the next batch');

select * from finish();
rollback;
