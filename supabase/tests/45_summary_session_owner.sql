-- A summary may point only at a session of its own user; a session of another user and one that
-- does not exist are refused alike, so the answer tells nothing about other users' ids.
begin;
set local search_path = public, extensions;
select plan(5);

set local embed_queue.poke_skip_until = 'infinity';
insert into auth.users (id, email) values
  ('5e550000-0000-4000-8000-00000000000a', 'owner-a@example.com'),
  ('5e550000-0000-4000-8000-00000000000b', 'owner-b@example.com');
insert into public.sessions (id, user_id, title) values
  ('5e550000-0000-4000-8000-0000000000a1', '5e550000-0000-4000-8000-00000000000a', 'A''s session'),
  ('5e550000-0000-4000-8000-0000000000b1', '5e550000-0000-4000-8000-00000000000b', 'B''s session');

create function pg_temp.try_as_a(p_sql text) returns text language plpgsql as $$
begin
  perform set_config('request.jwt.claims', '{"sub": "5e550000-0000-4000-8000-00000000000a", "role": "authenticated"}', true);
  set local role authenticated;
  execute p_sql;
  reset role;
  return 'ok';
exception when others then
  reset role;
  -- the error with the ids taken out: what a caller could compare
  return sqlstate || ' ' || regexp_replace(sqlerrm, '[0-9a-f]{8}-[0-9a-f-]{27}', '<id>', 'g');
end
$$;

select is(pg_temp.try_as_a($$insert into public.summaries (user_id, session_id, content)
  values ('5e550000-0000-4000-8000-00000000000a', '5e550000-0000-4000-8000-0000000000a1', 'mine')$$), 'ok',
  'a summary of one''s own session is accepted');
select matches(pg_temp.try_as_a($$insert into public.summaries (user_id, session_id, content)
  values ('5e550000-0000-4000-8000-00000000000a', '5e550000-0000-4000-8000-0000000000b1', 'theirs')$$), '^23503 ',
  'a summary pointing at another user''s session is refused');
select is(
  pg_temp.try_as_a($$insert into public.summaries (user_id, session_id, content)
    values ('5e550000-0000-4000-8000-00000000000a', '5e550000-0000-4000-8000-0000000000b1', 'theirs')$$),
  pg_temp.try_as_a($$insert into public.summaries (user_id, session_id, content)
    values ('5e550000-0000-4000-8000-00000000000a', '5e550000-0000-4000-8000-0000000000ff', 'nobody''s')$$),
  'another user''s session and a session that does not exist are refused alike');
select matches(pg_temp.try_as_a($$update public.summaries set session_id = '5e550000-0000-4000-8000-0000000000b1'
  where content = 'mine'$$), '^23503 ', 'a summary cannot be moved to another user''s session');

delete from public.sessions where id = '5e550000-0000-4000-8000-0000000000a1';
select results_eq($$select user_id, session_id from public.summaries where content = 'mine'$$,
  $$values ('5e550000-0000-4000-8000-00000000000a'::uuid, null::uuid)$$,
  'deleting the session clears session_id only');

select * from finish();
rollback;
