-- Local stand-in for pg_net 0.19.5: the install script's objects with the same names, columns,
-- argument names, types, defaults, return types, volatility, security and grants as the real
-- one (supabase/pg_net, tag v0.19.5, sql/pg_net.sql, which its Makefile installs as
-- pg_net--0.19.5.sql). What the real extension does in C is done here in SQL or by the worker
-- process local/net_worker.ts:
-- * net.wake() is a NOTIFY. PostgreSQL delivers it only when the calling transaction commits,
--   as pg_net's commit callback wakes its worker only then; a rolled-back transaction leaves
--   no queued row and no notification, so nothing is sent.
-- * net._urlencode_string / net._encode_url_with_params_array follow curl_escape and
--   curl_url's query appending (src/util.c).
-- * net.worker_restart / wait_until_running / check_worker_is_up find the worker by its
--   application_name (the real worker is a background worker, found by backend_type).
-- Hosted Supabase then changes http_get/http_post with its event trigger
-- extensions.grant_pg_net_access (supabase/postgres, migrations/db/init-scripts/
-- 00000000000003-post-setup.sql); that is the local bootstrap's job, not this script's.

create schema if not exists net;

create domain net.http_method as text
check (
  value ilike 'get'
  or value ilike 'post'
  or value ilike 'delete'
);

-- Requests waiting for the worker; it deletes them when it takes them.
create unlogged table net.http_request_queue(
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb,
  body bytea,
  timeout_milliseconds int not null
);

create or replace function net.check_worker_is_up() returns void as $$
begin
  if not exists (
    select a.pid from pg_catalog.pg_stat_activity a
    where a.backend_type ilike '%pg_net%'
       or a.application_name ilike 'pg_net % worker%'
  ) then
    raise exception using
      message = 'the pg_net background worker is not up'
    , detail  = 'the pg_net background worker is down due to an internal error and cannot process requests'
    , hint    = 'make sure that you didn''t modify any of pg_net internal tables';
  end if;
end
$$ language plpgsql;
comment on function net.check_worker_is_up() is 'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

-- One row per finished request; the worker deletes rows older than pg_net.ttl (6 hours).
create unlogged table net._http_response(
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out bool,
  error_msg text,
  created timestamptz not null default now()
);

create index on net._http_response (created);

-- Blocks until the response of request_id is recorded.
create or replace function net._await_response(
  request_id bigint
)
  returns bool
  language plpgsql
as $$
begin
  while not exists (select 1 from net._http_response r where r.id = request_id) loop
    perform pg_catalog.pg_sleep(0.05);
  end loop;
  return true;
end;
$$;

-- curl_escape: every byte but ALPHA / DIGIT / - . _ ~ as %XX (upper-case hex); null stays null.
create or replace function net._urlencode_string(string varchar)
  returns text
  language sql
  immutable
as $$
  select case when string is null then null else coalesce((
    select pg_catalog.string_agg(
      case when c ~ '^[A-Za-z0-9._~-]$' then c
           else pg_catalog.upper(pg_catalog.regexp_replace(
             pg_catalog.encode(pg_catalog.convert_to(c, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
      end, '' order by n)
    from pg_catalog.regexp_split_to_table(string::text, '') with ordinality as t(c, n)
  ), '') end
$$;

-- curl_url_set(URL) then CURLU_APPENDQUERY per parameter: '?' or '&' before the fragment; an
-- empty path becomes '/'; a URL without a scheme is refused when the request is made, as
-- curl_url_set refuses it. Null url or null array gives null.
create or replace function net._encode_url_with_params_array(url text, params_array text[])
  returns text
  language plpgsql
  immutable
as $$
declare
  base text;
  fragment text;
  p text;
begin
  if url is null or params_array is null then
    return null;
  end if;
  if url !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#[:space:]]+[^[:space:]]*$' then
    raise exception 'URL using bad/illegal format or missing URL';
  end if;
  base := pg_catalog.split_part(url, '#', 1);
  fragment := pg_catalog.substr(url, pg_catalog.length(base) + 1);
  base := pg_catalog.regexp_replace(base, '^([^:]+://[^/?]+)($|\?)', '\1/\2');
  foreach p in array params_array loop
    continue when p is null;
    base := base || case when pg_catalog.strpos(base, '?') > 0 then '&' else '?' end || p;
  end loop;
  return base || fragment;
end;
$$;

-- pg_net reloads the configuration and restarts its worker; here the worker (which runs as a
-- superuser) does both when this notification arrives.
create or replace function net.worker_restart()
  returns bool
  language plpgsql
as $$
begin
  perform pg_catalog.pg_notify('pg_net_worker_restart', '');
  return true;
end;
$$;

create or replace function net.wait_until_running()
  returns void
  language plpgsql
as $$
begin
  loop
    begin
      perform net.check_worker_is_up();
      return;
    exception when raise_exception then
      perform pg_catalog.pg_sleep(0.05);
    end;
  end loop;
end;
$$;
comment on function net.wait_until_running() is 'waits until the worker is running';

-- Wakes the worker when (and only if) the calling transaction commits.
create or replace function net.wake()
  returns void
  language sql
as $$
  select pg_catalog.pg_notify('pg_net_wake', '')
$$;

create or replace function net.http_get(
  -- url for the request
  url text,
  -- key/value pairs to be url encoded and appended to the `url`
  params jsonb default '{}'::jsonb,
  -- key/values to be included in request headers
  headers jsonb default '{}'::jsonb,
  -- the maximum number of milliseconds the request may take before being cancelled
  timeout_milliseconds int default 5000
)
  -- request_id reference
  returns bigint
  language plpgsql
as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(pg_catalog.array_agg(net._urlencode_string(e.key) || '=' || net._urlencode_string(e.value)), '{}')
  into params_array
  from pg_catalog.jsonb_each_text(params) e;

  insert into net.http_request_queue(method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, params_array), headers, timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

create or replace function net.http_post(
  -- url for the request
  url text,
  -- body of the POST request
  body jsonb default '{}'::jsonb,
  -- key/value pairs to be url encoded and appended to the `url`
  params jsonb default '{}'::jsonb,
  -- key/values to be included in request headers
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  -- the maximum number of milliseconds the request may take before being cancelled
  timeout_milliseconds int default 5000
)
  -- request_id reference
  returns bigint
  language plpgsql
as $$
declare
  request_id bigint;
  params_array text[];
  content_type text;
begin
  select h.header_value into content_type
  from pg_catalog.jsonb_each_text(coalesce(headers, '{}'::jsonb)) h(header_name, header_value)
  where pg_catalog.lower(h.header_name) = 'content-type'
  limit 1;

  -- As pg_net: a missing Content-Type is added (null headers stay null), and any other value
  -- than exactly application/json is refused.
  if content_type is null then
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  end if;
  if content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;

  select coalesce(pg_catalog.array_agg(net._urlencode_string(e.key) || '=' || net._urlencode_string(e.value)), '{}')
  into params_array
  from pg_catalog.jsonb_each_text(params) e;

  insert into net.http_request_queue(method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, params_array), headers,
          pg_catalog.convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

create or replace function net.http_delete(
  -- url for the request
  url text,
  -- key/value pairs to be url encoded and appended to the `url`
  params jsonb default '{}'::jsonb,
  -- key/values to be included in request headers
  headers jsonb default '{}'::jsonb,
  -- the maximum number of milliseconds the request may take before being cancelled
  timeout_milliseconds int default 5000,
  -- optional body of the request
  body jsonb default null
)
  -- request_id reference
  returns bigint
  language plpgsql
as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(pg_catalog.array_agg(net._urlencode_string(e.key) || '=' || net._urlencode_string(e.value)), '{}')
  into params_array
  from pg_catalog.jsonb_each_text(params) e;

  insert into net.http_request_queue(method, url, headers, body, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params_array(url, params_array), headers,
          pg_catalog.convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');

create type net.http_response as (
  status_code integer,
  headers jsonb,
  body text
);

create type net.http_response_result as (
  status net.request_status,
  message text,
  response net.http_response
);

create or replace function net._http_collect_response(
  -- request_id reference
  request_id bigint,
  -- when `true`, return immediately. when `false` wait for the request to complete before returning
  async bool default true
)
  returns net.http_response_result
  language plpgsql
as $$
declare
  rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;

  select * into rec from net._http_response r where r.id = request_id;

  -- As pg_net: a pending request and an unknown id look the same.
  if rec is null or rec.error_msg is not null then
    return (
      'ERROR',
      coalesce(rec.error_msg, 'request matching request_id not found'),
      null
    )::net.http_response_result;
  end if;

  return (
    'SUCCESS',
    'ok',
    (rec.status_code, rec.headers, rec.content)::net.http_response
  )::net.http_response_result;
end;
$$;

-- Deprecated in pg_net, and its body fails after the notice there as well (a select with no
-- destination in PL/pgSQL).
create or replace function net.http_collect_response(
  -- request_id reference
  request_id bigint,
  -- when `true`, return immediately. when `false` wait for the request to complete before returning
  async bool default true
)
  returns net.http_response_result
  language plpgsql
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  select net._http_collect_response(request_id, async);
end;
$$;

-- The real script's own grants (hosted Supabase narrows http_get/http_post afterwards).
grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;
