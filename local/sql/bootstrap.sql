-- What a Supabase Postgres image has before the project's migrations run: roles, schemas,
-- the auth helpers, default privileges, and the grants that let the non-superuser `postgres`
-- use pg_cron, pg_net and Vault. Applied by local/stack.ts to a fresh cluster as the bootstrap
-- superuser `supabase_admin` (initdb -U supabase_admin, as Supabase's image sets
-- POSTGRES_USER=supabase_admin); never deployed (a hosted project already has all of this).
--
-- Followed, from the repository supabase/postgres (commit 7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b):
--   ansible/playbook.yml                      create role postgres; alter database postgres owner to postgres
--   migrations/db/init-scripts/00000000000000-initial-schema.sql   API roles, extensions schema, default privileges
--   migrations/db/init-scripts/00000000000003-post-setup.sql       search paths; extensions.grant_pg_net_access
--   migrations/db/migrations/10000000000000_demote-postgres.sql    postgres loses SUPERUSER
--   migrations/db/migrations/20231020085357_revoke_writes_on_cron_job_from_postgres.sql
--                                             extensions.grant_pg_cron_access (SELECT only on cron.job)
--   migrations/db/migrations/20230201083204_grant_auth_roles_to_postgres.sql,
--   20230224042246_grant_extensions_perms_for_postgres.sql, 20230306081037_grant_pg_monitor_to_postgres.sql,
--   20240606060239_grant_predefined_roles_to_postgres.sql
--   ansible/files/postgresql_config/supautils.conf.j2   privileged_extensions, privileged_role_allowed_configs
--   ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql
--
-- Where this differs from the image, and why:
--   * supautils (not packaged for Debian) lets `postgres` create the extensions on its allow-list by
--     running CREATE EXTENSION as supabase_admin. Here PostgreSQL's own trusted-extension mechanism
--     does the same: scripts/setup.sh marks the allow-listed extensions the project uses
--     (vector, pg_cron, moddatetime, dblink, pg_net) `trusted = true`, so their scripts run as the bootstrap
--     superuser (supabase_admin) and `postgres` needs only CREATE on the database.
--   * On hosted, Supabase's event triggers run inside supautils' superuser context. With trusted
--     extensions ddl_command_end fires as `postgres`, so the two grant functions below are
--     SECURITY DEFINER (owned by supabase_admin) with an empty search_path.
--   * supautils lets `postgres` set a few superuser-only parameters (privileged_role_allowed_configs);
--     here `grant set on parameter` (PostgreSQL 15) gives exactly those that exist in this cluster.

-- The role that runs migrations, created a superuser and demoted at the end, as the image does.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres superuser login password 'postgres';
  end if;
end
$$;
alter database postgres owner to postgres;

create schema if not exists extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
end
$$;
grant anon, authenticated, service_role to authenticator;

-- Supabase grants the API roles everything in public by default; RLS decides the rest.
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for user supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for user supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for user supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
-- Supabase's image runs its init scripts as `postgres` (still a superuser then; migrations/db/
-- migrate.sh), so these default privileges are postgres's: whatever postgres creates in public
-- is granted to the API roles, and RLS decides the rest.
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

-- auth: owned by supabase_admin here (supabase_auth_admin on hosted; neither is `postgres`).
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key default extensions.gen_random_uuid(),
  email text unique,
  raw_user_meta_data jsonb default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- As in Supabase's image: the JWT claims PostgREST sets per request.
create or replace function auth.jwt() returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable security invoker set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable security invoker set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable security invoker set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email() to anon, authenticated, service_role;

-- supautils creates an allow-listed extension as supabase_admin, so supabase_admin owns it; a
-- trusted extension is owned by the role that created it. pg_cron writes cron.job as the
-- extension's owner (src/job_metadata.c, SetUserIdAndSecContext(CronExtensionOwner())), so the
-- owner matters: hand the extension to supabase_admin, as on hosted.
create or replace function extensions.privileged_extension_owner() returns event_trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update pg_catalog.pg_extension e set extowner = 'supabase_admin'::regrole
  from pg_catalog.pg_event_trigger_ddl_commands() ev
  where ev.objid = e.oid and ev.classid = 'pg_catalog.pg_extension'::regclass
    and e.extowner <> 'supabase_admin'::regrole;
end
$$;
comment on function extensions.privileged_extension_owner() is
  'Local stand-in for supautils: an extension created by postgres is owned by supabase_admin, as when supautils creates it.';
drop event trigger if exists issue_a_privileged_extension_owner;
create event trigger issue_a_privileged_extension_owner on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.privileged_extension_owner();

-- pg_cron: `postgres` may use the schema and its functions, and only read cron.job
-- (20231020085357_revoke_writes_on_cron_job_from_postgres.sql).
create or replace function extensions.grant_pg_cron_access() returns event_trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if exists (
    select from pg_catalog.pg_event_trigger_ddl_commands() as ev
    join pg_catalog.pg_extension as ext on ev.objid = ext.oid
    where ext.extname = 'pg_cron'
  ) then
    grant usage on schema cron to postgres with grant option;
    -- From supautils' after-create script for pg_cron (ansible/files/
    -- postgresql_extension_custom_scripts/pg_cron/after-create.sql): cron.schedule, alter_job ...
    grant all on all functions in schema cron to postgres with grant option;
    alter default privileges in schema cron grant all on tables to postgres with grant option;
    alter default privileges in schema cron grant all on functions to postgres with grant option;
    alter default privileges in schema cron grant all on sequences to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all on sequences to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all on tables to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all on functions to postgres with grant option;
    grant all privileges on all tables in schema cron to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
  end if;
end
$$;
comment on function extensions.grant_pg_cron_access() is 'Grants access to pg_cron';
drop event trigger if exists issue_pg_cron_access;
create event trigger issue_pg_cron_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_cron_access();

-- pg_net: usage for postgres and the API roles; http_get/http_post security definer.
create or replace function extensions.grant_pg_net_access() returns event_trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if exists (
    select 1 from pg_catalog.pg_event_trigger_ddl_commands() as ev
    join pg_catalog.pg_extension as ext on ev.objid = ext.oid
    where ext.extname = 'pg_net'
  ) then
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_functions_admin') then
      create user supabase_functions_admin noinherit createrole login noreplication;
    end if;
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
    alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;
    alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;
    alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) set search_path = net;
    alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) set search_path = net;
    revoke all on function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) from public;
    revoke all on function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) from public;
    grant execute on function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer)
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
    grant execute on function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer)
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
end
$$;
comment on function extensions.grant_pg_net_access() is 'Grants access to pg_net';
drop event trigger if exists issue_pg_net_access;
create event trigger issue_pg_net_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_net_access();

-- Supabase ships these preinstalled; migrations may still say "create extension if not exists".
create schema if not exists vault;
create extension if not exists supabase_vault with schema vault;
create extension if not exists pgtap with schema extensions;
create extension if not exists plpgsql_check with schema extensions;

-- Vault as hosted grants it after creating the extension (supabase/postgres, ansible/files/
-- postgresql_extension_custom_scripts/supabase_vault/after-create.sql): postgres may read and
-- delete secrets and call create_secret, update_secret and the decrypting function (which
-- vault.decrypted_secrets calls, and a view's functions are checked against the caller); it
-- has no INSERT or UPDATE on vault.secrets.
grant usage on schema vault to postgres with grant option;
grant select, delete, truncate, references on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt
  to postgres with grant option;
grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt to service_role;

-- The extensions schema, as 20230224042246_grant_extensions_perms_for_postgres.sql grants it.
grant all privileges on all tables in schema extensions to postgres with grant option;
grant all privileges on all routines in schema extensions to postgres with grant option;
grant all privileges on all sequences in schema extensions to postgres with grant option;
alter default privileges in schema extensions grant all on tables to postgres with grant option;
alter default privileges in schema extensions grant all on routines to postgres with grant option;
alter default privileges in schema extensions grant all on sequences to postgres with grant option;

-- As on Supabase: the extensions schema is on the default search path (supabase db lint
-- calls plpgsql_check's functions unqualified).
alter role supabase_admin set search_path to "$user", public, auth, extensions;
alter role postgres set search_path to "$user", public, extensions;

-- supautils' privileged_role_allowed_configs, for the parameters this cluster has.
do $$
declare
  p text;
begin
  foreach p in array array['session_replication_role', 'log_min_messages', 'log_lock_waits', 'track_io_timing',
                           'pg_net.batch_size', 'pg_net.ttl'] loop
    if exists (select 1 from pg_catalog.pg_settings where name = p) then
      execute format('grant set on parameter %s to postgres', p);
    end if;
  end loop;
end
$$;

-- The demotion (10000000000000_demote-postgres.sql) and the predefined roles granted since.
grant all on database postgres to postgres;
grant all on schema auth to postgres;
grant all on schema extensions to postgres;
grant all on all tables in schema auth to postgres;
grant all on all sequences in schema auth to postgres;
grant all on all routines in schema auth to postgres;
grant anon, authenticated, service_role to postgres;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
alter role postgres nosuperuser createdb createrole login replication bypassrls;
