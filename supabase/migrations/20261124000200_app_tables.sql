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
  session_id uuid,
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

-- A summary may point only at a session of its own user. A foreign key on (session_id,
-- user_id) to the session's (id, user_id): checked by PostgreSQL as the table owner, so RLS does
-- not hide the session from the check, and a session of another user and one that does not
-- exist fail alike (23503, the same message), so the answer tells nobody whether an id exists.
-- A plain foreign key on session_id alone would fail first, and differently, for an unknown id:
-- it is replaced by this one (which covers it). Deleting a session clears session_id only.
-- Rows an adopted table already holds are not checked (not valid) when some break the rule: a
-- warning says so; new and changed rows always are.
do $$
declare
  v_con record;
begin
  if not exists (
    select 1 from pg_catalog.pg_constraint c
    where c.conrelid = 'public.sessions'::regclass and c.contype in ('u', 'p')
      and (select pg_catalog.array_agg(a.attname::text order by a.attname) from pg_catalog.pg_attribute a
           where a.attrelid = c.conrelid and a.attnum = any (c.conkey)) = array['id', 'user_id']
  ) then
    alter table public.sessions add constraint sessions_id_user_id_key unique (id, user_id);
  end if;

  if not exists (select 1 from pg_catalog.pg_constraint c where c.conname = 'summaries_session_owner_fkey'
                 and c.conrelid = 'public.summaries'::regclass) then
    for v_con in
      select c.conname from pg_catalog.pg_constraint c
      where c.conrelid = 'public.summaries'::regclass and c.contype = 'f'
        and c.confrelid = 'public.sessions'::regclass
        and c.conkey = array[(select a.attnum from pg_catalog.pg_attribute a
                              where a.attrelid = 'public.summaries'::regclass and a.attname = 'session_id')]
    loop
      execute pg_catalog.format('alter table public.summaries drop constraint %I', v_con.conname);
    end loop;
    alter table public.summaries add constraint summaries_session_owner_fkey
      foreign key (session_id, user_id) references public.sessions (id, user_id)
      on delete set null (session_id) not valid;
    begin
      alter table public.summaries validate constraint summaries_session_owner_fkey;
    exception
      when foreign_key_violation then
        raise warning 'public.summaries has rows whose session belongs to another user (or is gone): they are kept, '
                      'new and changed rows are checked'
          using hint = 'Find them with: select s.id from public.summaries s where s.session_id is not null and not exists '
                       '(select 1 from public.sessions x where x.id = s.session_id and x.user_id = s.user_id);';
    end;
  end if;
end
$$;
comment on constraint summaries_session_owner_fkey on public.summaries is
  'A summary''s session is one of its own user''s (checked as the owner, past RLS; an unknown id fails the same way).';

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
