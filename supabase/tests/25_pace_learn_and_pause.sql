-- pace_observe learns the limits from a response's headers and lowers (never raises) the levels;
-- before any answer one request probes while the others wait; pace_pause holds every run, for
-- settings.rate_limited_default_seconds when the 429 named no retry-after, and gives the refused
-- request's reservation back.
begin;
set local search_path = public, extensions;
select plan(12);

select results_eq($$select granted, wait_ms from embed_queue.pace_take('t22', 500)$$, $$values (true, 0)$$,
  'limits unknown: the first request goes, to learn them');
select ok((select not granted and wait_ms between 1 and 200 from embed_queue.pace_take('t22', 500)),
  'the others wait for its answer');
select lives_ok($$select embed_queue.pace_observe('t22', null, null, null, null, false)$$, 'an error answer ...');
select ok((select granted from embed_queue.pace_take('t22', 500)), '... ends the probe: the next request probes');

select embed_queue.pace_observe('t22', 3000, 1000000, 2900, 400000);
select results_eq(
  $$select limit_requests, limit_tokens, requests_level, tokens_level, probe_until from embed_queue.pace where key = 't22'$$,
  $$values (3000, 1000000::bigint, 2900::float8, 400000::float8, null::timestamptz)$$,
  'first headers: the limits, and what remains as the levels');
select embed_queue.pace_observe('t22', 3000, 1000000, 3000, 900000);
select ok((select tokens_level < 401000 from embed_queue.pace where key = 't22'),
  'more remaining than counted does not raise the level (reservations in flight are not in it yet)');
select embed_queue.pace_observe('t22', 3000, 1000000, 3000, 1000);
select ok((select tokens_level = 1000 from embed_queue.pace where key = 't22'), 'less remaining lowers it');

create temp table t22_before as select tokens_level, level_at from embed_queue.pace where key = 't22';
select embed_queue.pace_pause('t22', 0, 5000);
-- The level also refills by the clock between the two statements (1,000,000 a minute).
select ok((select p.tokens_level - b.tokens_level - 5000
                  between 0 and 1 + extract(epoch from p.level_at - b.level_at) * 1000000 / 60.0
           from embed_queue.pace p, t22_before b where p.key = 't22'),
  'a 429 gives the refused request''s tokens back: it takes them again when it is sent again');

update embed_queue.settings set rate_limited_default_seconds = 7;
select is(embed_queue.pace_pause('t22', null), 7000, 'a 429 with no retry-after: settings.rate_limited_default_seconds');
select ok((select wait_ms between 5000 and 7000 from embed_queue.pace_take('t22', 1)), 'every run waits for it');
select is(embed_queue.pace_pause('t22', 2000), 2000, 'a shorter pause ...');
select ok((select paused_until > clock_timestamp() + interval '6 seconds' from embed_queue.pace where key = 't22'),
  '... does not shorten the longer one');

select * from finish();
rollback;
