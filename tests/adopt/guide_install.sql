-- A production database as the user's guide leaves it, before embed_queue's migrations:
-- the app's tables, the guide's embedding_queue (its columns and unique key), a guide-style
-- trigger on each table feeding that queue, the backfill run (55 jobs pending), 3 jobs failed
-- with messages, and 10 rows already embedded by the old script with their jobs completed.
-- Run as postgres, as the app's own migrations were. What we assume of the guide's app beyond
-- what the guide shows is listed in README.md ("Coming from the guide's script").

create extension if not exists vector with schema extensions;

insert into auth.users (id, email) values
  ('9a1de000-0000-4000-8000-000000000001', 'ana@example.com'),
  ('9a1de000-0000-4000-8000-000000000002', 'ben@example.com');

create table public.sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  title text,
  title_embedding extensions.vector(1536),
  deleted_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table public.summaries (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  session_id uuid references public.sessions (id),
  content text,
  content_embedding extensions.vector(1536),
  deleted_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

alter table public.sessions enable row level security;
create policy "Users manage their own sessions" on public.sessions
  for all to authenticated using (auth.uid() = user_id) with check (auth.uid() = user_id);
alter table public.summaries enable row level security;
create policy "Users manage their own summaries" on public.summaries
  for all to authenticated using (auth.uid() = user_id) with check (auth.uid() = user_id);

-- The guide's queue: its columns and its key, a uuid id and timestamps of its own.
create table public.embedding_queue (
  id uuid primary key default gen_random_uuid(),
  table_name text not null,
  record_id uuid not null,
  content text not null,
  embedding_column text not null,
  user_id uuid,
  status text not null default 'pending' check (status in ('pending', 'processing', 'completed', 'failed')),
  error_message text,
  created_at timestamptz default now(),
  processed_at timestamptz,
  unique (table_name, record_id, embedding_column)
);

-- "Triggers are already in place": queue a row when its text is new or changed.
create function public.queue_session_embedding() returns trigger
language plpgsql security definer as $$
begin
  if new.deleted_at is null and new.title is not null
     and (tg_op = 'INSERT' or old.title is distinct from new.title) then
    insert into public.embedding_queue (table_name, record_id, content, embedding_column, user_id)
    values ('sessions', new.id, new.title, 'title_embedding', new.user_id)
    on conflict (table_name, record_id, embedding_column)
    do update set content = excluded.content, status = 'pending', error_message = null;
  end if;
  return new;
end
$$;
create trigger queue_session_embedding after insert or update on public.sessions
  for each row execute function public.queue_session_embedding();

create function public.queue_summary_embedding() returns trigger
language plpgsql security definer as $$
begin
  if new.deleted_at is null and new.content is not null
     and (tg_op = 'INSERT' or old.content is distinct from new.content) then
    insert into public.embedding_queue (table_name, record_id, content, embedding_column, user_id)
    values ('summaries', new.id, new.content, 'content_embedding', new.user_id)
    on conflict (table_name, record_id, embedding_column)
    do update set content = excluded.content, status = 'pending', error_message = null;
  end if;
  return new;
end
$$;
create trigger queue_summary_embedding after insert or update on public.summaries
  for each row execute function public.queue_summary_embedding();

-- The app's rows (the triggers queue each one): 41 sessions, 27 summaries.
insert into public.sessions (id, user_id, title, created_at)
select ('5e55a000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       case when i % 2 = 0 then '9a1de000-0000-4000-8000-000000000001'::uuid else '9a1de000-0000-4000-8000-000000000002'::uuid end,
       'Guide session ' || i || ': notes on topic ' || md5(i::text),
       now() - (100 - i) * interval '1 hour'
from generate_series(1, 41) as i;

insert into public.summaries (id, user_id, session_id, content, created_at)
select ('50aa0000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       s.user_id, s.id,
       'Guide summary ' || i || ': what was decided about ' || md5((1000 + i)::text),
       now() - (50 - i) * interval '1 hour'
from generate_series(1, 27) as i
join public.sessions s on s.id = ('5e55a000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid;

-- The old script's work: sessions 1-6 and summaries 1-4 embedded, their jobs completed.
update public.sessions set title_embedding = array_fill(0.5::real, array[1536])::extensions.vector
where id in (select ('5e55a000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid from generate_series(1, 6) i);
update public.summaries set content_embedding = array_fill(0.25::real, array[1536])::extensions.vector
where id in (select ('50aa0000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid from generate_series(1, 4) i);
update public.embedding_queue set status = 'completed', processed_at = now() - interval '1 day'
where (table_name = 'sessions' and record_id in (select ('5e55a000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid from generate_series(1, 6) i))
   or (table_name = 'summaries' and record_id in (select ('50aa0000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid from generate_series(1, 4) i));

-- Three jobs failed with the script's messages: sessions 7 and 8, summary 5.
update public.embedding_queue set status = 'failed', processed_at = now() - interval '1 day',
  error_message = 'Failed to generate embedding: 429 Too Many Requests'
where table_name = 'sessions' and record_id in ('5e55a000-0000-4000-8000-000000000007', '5e55a000-0000-4000-8000-000000000008');
update public.embedding_queue set status = 'failed', processed_at = now() - interval '1 day',
  error_message = 'Failed to generate embedding: fetch failed (ECONNRESET)'
where table_name = 'summaries' and record_id = '50aa0000-0000-4000-8000-000000000005';
