-- Needs the seed (supabase/seed.sql): not run on an adopted install of the guide (tests/adopt).
-- The user's guide: each of its SQL statements runs unchanged and does what it says.
begin;
set local search_path = public, extensions;
select plan(14);

-- "Check Queue Status": 33 sessions and 22 summaries queued by the seed.
select results_eq(
  $$SELECT 
    table_name,
    status,
    COUNT(*) as count
FROM embedding_queue 
GROUP BY table_name, status
ORDER BY table_name, status;$$,
  $$values ('sessions'::text, 'pending'::text, 33::bigint), ('summaries', 'pending', 22)$$,
  'guide status query: 33 sessions and 22 summaries pending'
);

-- "Check Embedding Status"
select results_eq(
  $$SELECT 
    COUNT(*) as total_sessions,
    COUNT(title_embedding) as sessions_with_embeddings,
    COUNT(*) - COUNT(title_embedding) as sessions_missing_embeddings
FROM sessions 
WHERE deleted_at IS NULL;$$,
  $$values (33::bigint, 0::bigint, 33::bigint)$$,
  'guide sessions coverage: 33 live, none embedded yet'
);
select results_eq(
  $$SELECT 
    COUNT(*) as total_summaries,
    COUNT(content_embedding) as summaries_with_embeddings,
    COUNT(*) - COUNT(content_embedding) as summaries_missing_embeddings
FROM summaries 
WHERE deleted_at IS NULL;$$,
  $$values (22::bigint, 0::bigint, 22::bigint)$$,
  'guide summaries coverage: 22 live, none embedded yet'
);

-- "Check failed items": none yet; then one job fails for good and shows up.
select is_empty($$SELECT * FROM embedding_queue WHERE status = 'failed';$$, 'guide failed list: empty at first');

select ok((select count(*) = 1 from embed_queue.claim('guide-worker', 1, null, array['summaries'])), 'a worker claims one summary');
select results_eq(
  $$select status from embed_queue.fail('guide-worker',
      (select jsonb_agg(jsonb_build_object('id', q.id, 'kind', 'permanent', 'error', 'input rejected by provider'))
       from embedding_queue q where q.locked_by = 'guide-worker'))$$,
  $$values ('failed'::text)$$,
  'a permanent error fails it'
);
select results_eq(
  $$select table_name, error_message, attempts from (SELECT * FROM embedding_queue WHERE status = 'failed') f$$,
  $$values ('summaries'::text, 'input rejected by provider'::text, 1)$$,
  'guide failed list: shows the failed job with its error'
);

-- "Retry failed items": back to pending with a fresh start, and claimable again.
UPDATE embedding_queue 
SET status = 'pending', error_message = NULL 
WHERE status = 'failed';

select results_eq(
  $$select status, attempts, run_at <= now(), locked_by is null, error_message is null
    from embedding_queue where table_name = 'summaries' and updated_at = now() order by id limit 1$$,
  $$values ('pending'::text, 0, true, true, true)$$,
  'guide retry: pending, attempts reset to 0, runnable now, lease cleared'
);
select ok(
  (select bool_or(c.record_id = '50a40000-0000-4000-8000-000000000001')
   from embed_queue.claim('guide-worker-2', 100, null, array['summaries']) c),
  'guide retry: the retried job is claimed again'
);

-- "Manual Requeue" (the placeholder id replaced by a real session id): a completed job
-- goes back to pending with a fresh start.
select is(
  (select c.outcome from embed_queue.claim('guide-worker-3', 1, null, array['sessions']) j,
     embed_queue.complete('guide-worker-3', array[j.id], array[j.content_hash],
       array['[' || array_to_string(array_fill(0.01::float8, array[1536]), ',') || ']'],
       array[12], array[false], 'text-embedding-3-small', 1536) c),
  'completed',
  'a session is embedded and its job completed'
);

INSERT INTO embedding_queue (table_name, record_id, content, embedding_column, user_id)
SELECT 'sessions', id, title, 'title_embedding', user_id
FROM sessions 
WHERE id = '5e551000-0000-4000-8000-000000000001'
ON CONFLICT (table_name, record_id, embedding_column) 
DO UPDATE SET status = 'pending';

select results_eq(
  $$select status, attempts, locked_by is null, content_hash is null
    from embedding_queue where table_name = 'sessions' and record_id = '5e551000-0000-4000-8000-000000000001'$$,
  $$values ('pending'::text, 0, true, true)$$,
  'guide requeue: the completed job is pending again, attempts 0'
);

-- The same statement inserts a job when the row has none.
delete from embedding_queue where record_id = '5e551000-0000-4000-8000-000000000002';

INSERT INTO embedding_queue (table_name, record_id, content, embedding_column, user_id)
SELECT 'sessions', id, title, 'title_embedding', user_id
FROM sessions 
WHERE id = '5e551000-0000-4000-8000-000000000002'
ON CONFLICT (table_name, record_id, embedding_column) 
DO UPDATE SET status = 'pending';

select results_eq(
  $$select status, content, attempts, max_attempts from embedding_queue
    where table_name = 'sessions' and record_id = '5e551000-0000-4000-8000-000000000002'$$,
  $$values ('pending'::text, 'Kubernetes ingress TLS certificates not renewing after the cert-manager upgrade'::text, 0, 5)$$,
  'guide requeue: inserts a pending job (uuid id cast to record_id) when none exists'
);

select results_eq(
  $$SELECT 
    COUNT(*) as total_sessions,
    COUNT(title_embedding) as sessions_with_embeddings,
    COUNT(*) - COUNT(title_embedding) as sessions_missing_embeddings
FROM sessions 
WHERE deleted_at IS NULL;$$,
  $$values (33::bigint, 1::bigint, 32::bigint)$$,
  'guide sessions coverage counts the embedded session'
);
select results_eq(
  $$select total, with_embeddings, missing from embed_queue.coverage where table_name = 'sessions'$$,
  $$values (33::bigint, 1::bigint, 32::bigint)$$,
  'embed_queue.coverage agrees with the guide''s query'
);

select * from finish();
rollback;
