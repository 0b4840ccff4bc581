-- The application's own tables: sessions and their summaries, each with an embedding column
-- kept in step with its text by embed_queue (registered in a later migration).
--
-- On a database where the guide's app already runs, these tables exist and hold the users'
-- data: every statement here adopts what it finds instead of failing. A missing table is
-- created as below; an existing one keeps its rows, columns, indexes and policies, and gets
-- only what embed_queue needs and it lacks (the text and vector columns, deleted_at, user_id,
-- created_at, updated_at). What we assume of the guide's app is in README.md, "Coming from the
-- guide's script".

create table if not exists public.sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  title text,
  title_embedding extensions.vector(1536),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Adopted tables: added only where absent (nullable, with no foreign key: existing rows would
-- have no value for them).
alter table public.sessions add column if not exists user_id uuid;
alter table public.sessions add column if not exists title text;
alter table public.sessions add column if not exists title_embedding extensions.vector(1536);
alter table public.sessions add column if not exists deleted_at timestamptz;
alter table public.sessions add column if not exists created_at timestamptz not null default now();
alter table public.sessions add column if not exists updated_at timestamptz not null default now();

comment on table public.sessions is
  'A user''s session. title_embedding is kept in step with title by embed_queue.';
comment on column public.sessions.title_embedding is
  'Embedding of title (1536 dimensions). Cleared whenever title changes, written by embed_queue.complete().';
comment on column public.sessions.deleted_at is
  'Soft delete: set means the row is gone for the user; its embedding jobs are withdrawn.';

create index if not exists sessions_user_id_idx on public.sessions (user_id);

create table if not exists public.summaries (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  session_id uuid references public.sessions (id) on delete set null,
  content text,
  content_embedding extensions.vector(1536),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

alter table public.summaries add column if not exists user_id uuid;
alter table public.summaries add column if not exists session_id uuid;
alter table public.summaries add column if not exists content text;
alter table public.summaries add column if not exists content_embedding extensions.vector(1536);
alter table public.summaries add column if not exists deleted_at timestamptz;
alter table public.summaries add column if not exists created_at timestamptz not null default now();
alter table public.summaries add column if not exists updated_at timestamptz not null default now();

comment on table public.summaries is
  'A summary, usually of one session. content_embedding is kept in step with content by embed_queue.';
comment on column public.summaries.session_id is 'The session this summarises, if any.';
comment on column public.summaries.content_embedding is
  'Embedding of content (1536 dimensions). Cleared whenever content changes, written by embed_queue.complete().';
comment on column public.summaries.deleted_at is
  'Soft delete: set means the row is gone for the user; its embedding jobs are withdrawn.';

create index if not exists summaries_user_id_idx on public.summaries (user_id);
create index if not exists summaries_session_id_idx on public.summaries (session_id);

create or replace trigger sessions_updated_at before update on public.sessions
  for each row execute function extensions.moddatetime(updated_at);
create or replace trigger summaries_updated_at before update on public.summaries
  for each row execute function extensions.moddatetime(updated_at);

-- Row level security: a signed-in user sees and changes only their own rows. A table that
-- already has policies keeps exactly those (the app's access rules are the app's): ours are
-- added only to a table with none, so adopting never widens what anyone may see.
alter table public.sessions enable row level security;
alter table public.summaries enable row level security;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_policies p where p.schemaname = 'public' and p.tablename = 'sessions') then
    create policy sessions_select_own on public.sessions
      for select to authenticated using ((select auth.uid()) = user_id);
    create policy sessions_insert_own on public.sessions
      for insert to authenticated with check ((select auth.uid()) = user_id);
    create policy sessions_update_own on public.sessions
      for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
    create policy sessions_delete_own on public.sessions
      for delete to authenticated using ((select auth.uid()) = user_id);
  end if;

  if not exists (select 1 from pg_catalog.pg_policies p where p.schemaname = 'public' and p.tablename = 'summaries') then
    create policy summaries_select_own on public.summaries
      for select to authenticated using ((select auth.uid()) = user_id);
    create policy summaries_insert_own on public.summaries
      for insert to authenticated with check ((select auth.uid()) = user_id);
    create policy summaries_update_own on public.summaries
      for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
    create policy summaries_delete_own on public.summaries
      for delete to authenticated using ((select auth.uid()) = user_id);
  end if;
end
$$;
