-- pace_take reserves one request and its tokens from buckets every run shares, says how long to
-- wait, refuses (reserving nothing) past the caller's maximum wait, and refills by the clock.
-- Waits and levels move with the clock between statements (1,000 tokens a second here), so
-- each bound allows up to a second's drift on a loaded machine, never enough to pass a wrong wait.
begin;
set local search_path = public, extensions;
select plan(10);

insert into embed_queue.pace (key, limit_requests, limit_tokens, requests_level, tokens_level, level_at)
values ('t21', 600, 60000, 600, 10000, clock_timestamp());

select results_eq(
  $$select granted, wait_ms, limit_requests, limit_tokens from embed_queue.pace_take('t21', 8000)$$,
  $$values (true, 0, 600, 60000::bigint)$$,
  'within what is left: granted at once, with the limits');
select ok(
  (select granted and wait_ms between 2000 and 3000 from embed_queue.pace_take('t21', 5000)),
  '2,000 left, 1,000 tokens a second come back: reserved ahead, wait 3 s');
select ok(
  (select granted and wait_ms between 3000 and 4000 from embed_queue.pace_take('t21', 1000)),
  'the next request queues behind it');
select ok(
  (select not granted and wait_ms > 4000 from embed_queue.pace_take('t21', 1000, 1000)),
  'a wait past p_max_wait_ms is refused');
select ok(
  (select tokens_level between -4000 and -3000 from embed_queue.pace where key = 't21'),
  'and reserves nothing');

-- A minute later (backdated) the bucket is full again, and no fuller.
update embed_queue.pace set level_at = level_at - interval '2 minutes' where key = 't21';
select results_eq(
  $$select granted, wait_ms from embed_queue.pace_take('t21', 60000)$$,
  $$values (true, 0)$$,
  'refilled at the limit per minute');
select ok(
  (select granted and wait_ms between 500 and 1000 from embed_queue.pace_take('t21', 1000)),
  'capped at the limit: the next 1,000 tokens wait a second');

update embed_queue.pace set requests_level = 0, tokens_level = 60000, level_at = clock_timestamp() where key = 't21';
select ok(
  (select granted and wait_ms between 1 and 100 from embed_queue.pace_take('t21', 1)),
  'no request left: wait for one (600 a minute: 100 ms)');

update embed_queue.pace set requests_level = 600, tokens_level = 0, level_at = clock_timestamp() where key = 't21';
select ok(
  (select granted and wait_ms between 55000 and 60000 from embed_queue.pace_take('t21', 10000000)),
  'a request larger than the window waits for the whole window, not for ever');

select throws_ok($$select * from embed_queue.pace_take('t21', -1)$$, '22023', null, 'negative tokens are refused');

select * from finish();
rollback;
