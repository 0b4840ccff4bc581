-- Two fixes found by the pgTAP tests.
-- 1. fail(): a rate-limited job without retry_after_ms waited 0 s instead of
--    settings.rate_limited_default_seconds (greatest() ignores the null). Same signature and
--    grants; only the run_at of rate_limited jobs changes.
-- 2. embed_queue.usage rounded cost_usd to 6 decimals, which shows small batches as 0.

create or replace function embed_queue.fail(p_worker text, p_failures jsonb)
returns table (id bigint, status text)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_bad text;
begin
  if p_failures is null or pg_catalog.jsonb_typeof(p_failures) <> 'array' then
    raise exception 'embed_queue.fail: failures must be a JSON array' using errcode = '22023';
  end if;

  select f.kind into v_bad
  from pg_catalog.jsonb_to_recordset(p_failures) as f (kind text)
  where f.kind is null or f.kind not in ('retryable', 'permanent', 'rate_limited')
  limit 1;
  if found then
    raise exception 'embed_queue.fail: unknown failure kind %', coalesce(pg_catalog.quote_literal(v_bad), 'null')
      using errcode = '22023', hint = 'kind is one of retryable, permanent, rate_limited.';
  end if;

  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  return query
    with f as (
      select * from pg_catalog.jsonb_to_recordset(p_failures)
        as f (id bigint, kind text, error text, retry_after_ms numeric)
    ),
    updated as (
      update public.embedding_queue q set
        status = case
          when f.kind = 'rate_limited' then 'pending'
          when f.kind = 'permanent' then 'failed'
          when q.attempts >= q.max_attempts then 'failed'
          else 'pending'
        end,
        attempts = case when f.kind = 'rate_limited' then greatest(q.attempts - 1, 0) else q.attempts end,
        run_at = case
          when f.kind = 'rate_limited' and f.retry_after_ms is not null
            then pg_catalog.now() + greatest(f.retry_after_ms, 0) * interval '1 millisecond'
          when f.kind = 'rate_limited' then pg_catalog.now() + s.rate_limited_default_seconds * interval '1 second'
          when f.kind = 'retryable' and q.attempts < q.max_attempts then pg_catalog.now() + embed_queue.backoff_delay(q.attempts)
          else q.run_at
        end,
        error_message = pg_catalog.left(f.error, s.error_message_max_chars),
        locked_by = null,
        locked_until = null
      from f, embed_queue.settings s
      where q.id = f.id and q.status = 'processing' and q.locked_by = p_worker
      returning q.id, q.status
    )
    select updated.id, updated.status from updated order by updated.id;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
end
$$;
comment on function embed_queue.fail(text, jsonb) is
  'Records failed jobs held by p_worker, from [{id, kind, error, retry_after_ms}]: rate_limited -> pending after retry_after, attempt refunded; '
  'retryable -> pending after backoff_delay(attempts), or failed when attempts are spent; permanent -> failed. Returns the new status per job.';

create or replace view embed_queue.usage with (security_invoker = true) as
  select q.table_name,
         q.embedding_column,
         q.model,
         pg_catalog.count(*) as completed,
         coalesce(pg_catalog.sum(q.tokens), 0) as tokens,
         coalesce(pg_catalog.sum(q.tokens), 0) * m.usd_per_million_tokens / 1000000 as cost_usd
  from public.embedding_queue q
  left join embed_queue.models m on m.model = q.model
  where q.status = 'completed'
  group by q.table_name, q.embedding_column, q.model, m.usd_per_million_tokens
  order by q.table_name, q.embedding_column, q.model;
comment on view embed_queue.usage is 'Completed embeddings per target and model, their tokens and cost in USD (price from embed_queue.models, not rounded).';
