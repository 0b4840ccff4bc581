-- Not on an adopted install: written for the project's own tables, not the guide's (tests/adopt).
-- Row level security on sessions and summaries: a user sees and changes only their own rows.
begin;
set local search_path = public, extensions;
select plan(10);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.new_summary('Alice''s summary', pg_temp.alice());
select pg_temp.new_session('Bob''s session', pg_temp.bob(), p_id => '7e570000-0000-4000-8000-000000000002');
select pg_temp.new_summary('Bob''s summary', pg_temp.bob(), p_id => '7e570000-0000-4000-8000-000000000502');

select ok((select relrowsecurity from pg_class where oid = 'public.sessions'::regclass), 'RLS is on for sessions');
select ok((select relrowsecurity from pg_class where oid = 'public.summaries'::regclass), 'RLS is on for summaries');

set local role authenticated;
set local request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
select is((select count(*)::integer from public.sessions where user_id <> 'a11ce000-0000-4000-8000-000000000001'), 0,
  'Alice sees none of Bob''s sessions');
select is((select count(*)::integer from public.sessions), (select count(*)::integer from public.sessions where user_id = 'a11ce000-0000-4000-8000-000000000001'),
  'Alice sees only her own sessions');
select ok((select count(*) > 0 from public.summaries), 'Alice sees her summaries');
select is((select count(*)::integer from public.summaries where user_id <> 'a11ce000-0000-4000-8000-000000000001'), 0,
  'Alice sees none of Bob''s summaries');
select throws_ok(
  $$insert into public.sessions (user_id, title) values ('b0b00000-0000-4000-8000-000000000002', 'Pretending to be Bob')$$,
  '42501', null, 'Alice cannot insert a row for Bob');
update public.sessions set title = 'Alice was here' where id = '7e570000-0000-4000-8000-000000000002';
delete from public.summaries where id = '7e570000-0000-4000-8000-000000000502';
reset role;

select isnt((select title from public.sessions where id = '7e570000-0000-4000-8000-000000000002'), 'Alice was here',
  'Alice cannot change Bob''s session');
select ok(exists (select 1 from public.summaries where id = '7e570000-0000-4000-8000-000000000502'),
  'Alice cannot delete Bob''s summary');

set local role anon;
select is((select count(*)::integer from public.sessions), 0, 'anon sees no sessions');
reset role;

select * from finish();
rollback;
