-- Local stand-in for pg_net 0.14: the SQL interface of the real extension.
-- net.http_post/net.http_get insert into net.http_request_queue and notify; the row and the
-- notification become visible only when the calling transaction commits, so a rolled-back
-- transaction sends nothing. A worker process (local/net_worker.ts) executes the requests
-- asynchronously and records responses in net._http_response, as pg_net's background worker does.

create schema if not exists net;

create table net.http_request_queue (
  id bigserial primary key,
  method text not null check (method in ('GET', 'POST', 'DELETE')),
  url text not null,
  headers jsonb not null default '{}',
  body bytea,
  timeout_milliseconds integer not null,
  created timestamptz not null default now()
);

create table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index on net._http_response (created);

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
create type net.http_response as (status_code integer, headers jsonb, body text);
create type net.http_response_result as (status net.request_status, message text, response net.http_response);

create function net._urlencode_string(string varchar)
returns text language sql immutable strict set search_path = ''
as $$
  select string_agg(
    case when b ~ '[A-Za-z0-9._~-]' then b
         else upper(regexp_replace(encode(convert_to(b, 'utf8'), 'hex'), '(..)', '%\1', 'g')) end, '')
  from regexp_split_to_table(string, '') as b
$$;

create function net._encode_url_with_params_array(url text, params_array text[])
returns text language sql immutable set search_path = ''
as $$
  select case when params_array is null or cardinality(params_array) = 0 then url
         else url || case when url like '%?%' then '&' else '?' end || array_to_string(params_array, '&') end
$$;

create function net._params(params jsonb)
returns text[] language sql immutable set search_path = ''
as $$
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
  from jsonb_each_text(coalesce(params, '{}'))
$$;

create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, net._params(params)), coalesce(headers, '{}'), timeout_milliseconds)
  returning id into request_id;
  perform pg_catalog.pg_notify('net_http_request', request_id::text);
  return request_id;
end
$$;

create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  request_id bigint;
  content_type text;
begin
  -- pg_net accepts only JSON bodies on http_post and requires a JSON content type.
  select value into content_type from jsonb_each_text(coalesce(headers, '{}')) where lower(key) = 'content-type';
  if content_type is null then
    headers := coalesce(headers, '{}') || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type not like 'application/json%' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, net._params(params)), headers,
          convert_to(coalesce(body, '{}')::text, 'utf8'), timeout_milliseconds)
  returning id into request_id;
  perform pg_catalog.pg_notify('net_http_request', request_id::text);
  return request_id;
end
$$;

create function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params_array(url, net._params(params)), coalesce(headers, '{}'), timeout_milliseconds)
  returning id into request_id;
  perform pg_catalog.pg_notify('net_http_request', request_id::text);
  return request_id;
end
$$;

create function net._http_collect_response(request_id bigint, async boolean default true)
returns net.http_response_result
language plpgsql volatile security definer set search_path = ''
as $$
declare
  rec net._http_response;
begin
  select * into rec from net._http_response where id = request_id;
  if rec is null then
    return row('PENDING', 'request is pending processing', null)::net.http_response_result;
  end if;
  if rec.error_msg is not null then
    return row('ERROR', rec.error_msg, null)::net.http_response_result;
  end if;
  return row('SUCCESS', 'ok', row(rec.status_code, rec.headers, rec.content)::net.http_response)::net.http_response_result;
end
$$;

-- pg_net keeps responses for a configurable time (pg_net.ttl, default 6 hours).
create function net._delete_expired_responses(ttl interval default interval '6 hours')
returns bigint language sql volatile security definer set search_path = ''
as $$
  with d as (delete from net._http_response where created < now() - ttl returning 1)
  select count(*) from d
$$;

revoke all on all tables in schema net from public;
revoke all on all functions in schema net from public;
grant usage on schema net to postgres;
