-- take_search_token: a token bucket per user (embed_search.settings: burst, rate_per_minute),
-- kept in the database so it holds across the search function's workers.
begin;
select plan(6);
\ir helpers/search.psql

update embed_search.settings set burst = 2, rate_per_minute = 6;

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select allowed from public.take_search_token()$$, $$values (true)$$, 'first call allowed');
select results_eq($$select allowed from public.take_search_token()$$, $$values (true)$$, 'second call allowed (burst 2)');
select results_eq($$select allowed, retry_after_ms between 1 and 10000 from public.take_search_token()$$,
  $$values (false, true)$$, 'third call refused, with the wait for the next token (6 a minute: at most 10 s)');
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000b", "role": "authenticated"}';
select results_eq($$select allowed from public.take_search_token()$$, $$values (true)$$, 'another user has a bucket of their own');
reset role;

-- Ten seconds later (backdated, not waited for) A has one token again.
update embed_search.rate_limits set updated_at = updated_at - interval '10 seconds'
where user_id = 'c0ffee00-0000-4000-8000-00000000000a';
set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select allowed from public.take_search_token()$$, $$values (true)$$, 'refilled at rate_per_minute');
reset role;

set local role authenticated;
set local request.jwt.claims = '{"role": "authenticated"}';
select throws_ok($$select * from public.take_search_token()$$, '42501', null, 'no user, no token');
reset role;

select * from finish();
rollback;
