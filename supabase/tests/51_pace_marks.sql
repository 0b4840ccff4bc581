-- pace_take hands each reservation its mark (the tokens and requests every run reserved up to
-- and including it); pace_observe with a response's mark sets the level to what the provider says
-- remains less what was reserved after that request, raising it as well as lowering it. Without
-- a mark the old rule (only lowered) holds.
begin;
set local search_path = public, extensions;
select plan(7);

select embed_queue.pace_observe('t51', 3000, 60000, 3000, 0); -- a window full at the start
create temp table t51_a as select * from embed_queue.pace_take('t51', 6000);
create temp table t51_b as select * from embed_queue.pace_take('t51', 6000);
select results_eq($$select granted, tokens_mark, requests_mark from t51_a$$, $$values (true, 6000::bigint, 1::bigint)$$,
  'a granted reservation gets its mark');
select is((select b.tokens_mark - a.tokens_mark from t51_a a, t51_b b), 6000::bigint,
  'the next one''s mark counts the tokens reserved in between');
select ok((select not granted and tokens_mark is null from embed_queue.pace_take('t51', 60000, 0)),
  'a take that reserves nothing gets no mark');

-- A sliding window let old requests go: 30,000 remained when a was admitted; b is not in that count.
select embed_queue.pace_observe('t51', 3000, 60000, 3000, 30000, true,
  (select tokens_mark from t51_a), (select requests_mark from t51_a));
select ok((select tokens_level between 24000 and 24100 from embed_queue.pace where key = 't51'),
  'with the mark: raised to what remains less what was reserved after it');
select ok((select requests_level between 2999 and 3000 from embed_queue.pace where key = 't51'),
  'requests the same way');

create temp table t51_c as select * from embed_queue.pace_take('t51', 1000);
select embed_queue.pace_observe('t51', 3000, 60000, 3000, 2000, true,
  (select tokens_mark from t51_c), (select requests_mark from t51_c));
select ok((select tokens_level between 2000 and 2100 from embed_queue.pace where key = 't51'),
  'and lowered where less remains than counted');

select embed_queue.pace_observe('t51', 3000, 60000, 3000, 50000);
select ok((select tokens_level < 2200 from embed_queue.pace where key = 't51'),
  'without a mark, more remaining than counted still does not raise it');

select * from finish();
rollback;
