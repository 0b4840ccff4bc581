-- Row builders for the pgTAP files (the model: River's testfactory). A test includes this
-- file inside its transaction with
--   \ir helpers/rows.sql
-- calls pg_temp.reset() to start from empty tables whatever the seed holds, and builds exactly
-- the rows it tests. Everything here lives in pg_temp and is gone with the test's rollback.
-- Only supabase/tests/01_guide_statements.sql (the guide's statements over the seed) reads the
-- seed's rows.

-- Empty app tables and queue (the delete triggers withdraw the seed's jobs; the rest goes too).
create function pg_temp.reset() returns void
language sql as $$
  delete from public.summaries;
  delete from public.sessions;
  delete from public.embedding_queue;
$$;

-- A user of auth.users (the given id, or a new one); an existing id is kept as it is.
create function pg_temp.new_user(p_id uuid default gen_random_uuid()) returns uuid
language sql as $$
  insert into auth.users (id, email) values (p_id, p_id::text || '@example.com') on conflict (id) do nothing;
  select p_id;
$$;

-- The two users most tests need, with fixed ids.
create function pg_temp.alice() returns uuid
language sql as $$ select pg_temp.new_user('a11ce000-0000-4000-8000-000000000001') $$;
create function pg_temp.bob() returns uuid
language sql as $$ select pg_temp.new_user('b0b00000-0000-4000-8000-000000000002') $$;

-- A session with this title (queued by its insert trigger); soft-deleted with p_deleted.
create function pg_temp.new_session(
  p_title text,
  p_user uuid default null,
  p_deleted boolean default false,
  p_id uuid default gen_random_uuid()
) returns uuid
language sql as $$
  insert into public.sessions (id, user_id, title, deleted_at)
  values (p_id, coalesce(p_user, pg_temp.alice()), p_title, case when p_deleted then now() end)
  returning id;
$$;

-- p_count sessions titled '<p_prefix> 1' ... '<p_prefix> N', in one statement.
create function pg_temp.new_sessions(p_count integer, p_prefix text default 'Session', p_user uuid default null)
returns setof uuid
language sql as $$
  insert into public.sessions (user_id, title)
  select coalesce(p_user, pg_temp.alice()), p_prefix || ' ' || g from generate_series(1, p_count) g
  returning id;
$$;

-- A summary with this content, in a session of its user (a new one unless given).
create function pg_temp.new_summary(
  p_content text,
  p_user uuid default null,
  p_session uuid default null,
  p_deleted boolean default false,
  p_id uuid default gen_random_uuid()
) returns uuid
language sql as $$
  insert into public.summaries (id, user_id, session_id, content, deleted_at)
  values (p_id, coalesce(p_user, pg_temp.alice()),
          coalesce(p_session, pg_temp.new_session('Session of a summary', coalesce(p_user, pg_temp.alice()))),
          p_content, case when p_deleted then now() end)
  returning id;
$$;

-- p_count summaries '<p_prefix> 1' ... '<p_prefix> N' in one session, in one statement.
create function pg_temp.new_summaries(p_count integer, p_prefix text default 'Summary', p_user uuid default null)
returns setof uuid
language sql as $$
  with owner as (select coalesce(p_user, pg_temp.alice()) as id),
       session as (select pg_temp.new_session('Session of summaries', owner.id) as id from owner)
  insert into public.summaries (user_id, session_id, content)
  select owner.id, session.id, p_prefix || ' ' || g
  from owner, session, generate_series(1, p_count) g
  returning id;
$$;

-- The job of a session titled p_title, put in the given state: 'pending' (as queued),
-- 'processing' (held by p_worker, attempt counted, leased for a minute, with the content's
-- hash), 'completed', 'failed' (attempts spent) or 'skipped'. Returns the job's id.
create function pg_temp.new_job(
  p_status text default 'pending',
  p_title text default 'A job''s text',
  p_worker text default 'test-worker'
) returns bigint
language plpgsql as $$
declare
  v_session uuid := pg_temp.new_session(p_title);
  v_id bigint;
begin
  update public.embedding_queue q set
    status = p_status,
    attempts = case p_status when 'processing' then 1 when 'failed' then q.max_attempts else 0 end,
    locked_by = case when p_status = 'processing' then p_worker end,
    locked_until = case when p_status = 'processing' then now() + interval '1 minute' end,
    content_hash = case when p_status = 'processing' then embed_queue.content_hash(p_title) end,
    completed_at = case when p_status = 'completed' then now() end,
    error_message = case when p_status = 'failed' then 'failed in a test' end
  where q.table_name = 'sessions' and q.record_id = v_session::text
  returning q.id into v_id;
  return v_id;
end
$$;
