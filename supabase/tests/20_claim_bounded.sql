-- A claim hands out bounded text: a huge row leaves the database cut to claim_max_chars (its
-- hash still over the whole text, so complete() accepts the vector), and one claim hands out at
-- most claim_max_bytes of text (always at least one job). Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(11);

delete from public.embedding_queue;
insert into auth.users (id, email) values ('b0d0e000-0000-4000-8000-000000000001', 'bounded@example.com');
update embed_queue.settings set claim_max_chars = 2000, claim_max_bytes = 65536;
set local embed_queue.poke_skip_until = 'infinity';

create function pg_temp.vec(x float8) returns text language sql as $$
  select '[' || array_to_string(array_fill(x, array[1536]), ',') || ']'
$$;

-- One huge row.
insert into public.sessions (id, user_id, title)
values ('b0d0e000-0000-4000-8000-0000000000aa', 'b0d0e000-0000-4000-8000-000000000001', repeat('huge ', 10000));
create temp table big as select * from embed_queue.claim('bounded-1', 10);
select results_eq($$select length(content), clipped from big$$, $$values (2000, true)$$,
  'a 50,000-character text is handed out cut to claim_max_chars, and says so');
select is((select content_hash from big),
  encode(sha256(convert_to(repeat('huge ', 10000), 'UTF8')), 'hex'), 'its hash is over the whole text');
select results_eq($$select length(content), truncated from embedding_queue where id = (select id from big)$$,
  $$values (2000, true)$$, 'the queue keeps the cut text only, marked truncated');
select results_eq(
  $$select c.outcome from big, embed_queue.complete('bounded-1', array[big.id], array[big.content_hash],
      array[pg_temp.vec(0.1)], array[8191], array[true], 'text-embedding-3-small', 1536) c$$,
  $$values ('completed'::text)$$, 'a vector made from the cut text is written: the row still hashes to it');

-- 40 rows of 2,000 bytes: 32 fit in 65,536 bytes, 8 stay pending, untouched.
insert into public.sessions (user_id, title)
select 'b0d0e000-0000-4000-8000-000000000001', lpad(g::text, 2000, 'm') from generate_series(1, 40) g;
create temp table many as select * from embed_queue.claim('bounded-2', 100);
select is((select count(*)::integer from many), 32, 'one claim stops at claim_max_bytes of text');
select is((select sum(octet_length(content))::integer from many), 64000, 'the text it hands out is within the budget');
select results_eq(
  $$select count(*)::integer, max(attempts), bool_and(locked_by is null) from embedding_queue where status = 'pending'$$,
  $$values (8, 0, true)$$, 'the rest stay pending with no attempt spent and no lease');
create temp table rest as select * from embed_queue.claim('bounded-3', 100);
select is((select count(*)::integer from rest), 8, 'the next claim takes them');

-- A single job bigger than the whole budget still goes, alone.
update embed_queue.settings set claim_max_chars = 100000;
insert into public.sessions (user_id, title)
select 'b0d0e000-0000-4000-8000-000000000001', repeat('z', 70000) from generate_series(1, 2);
create temp table alone as select * from embed_queue.claim('bounded-4', 100);
select is((select count(*)::integer from alone), 1, 'a job over the budget goes alone');
select is((select octet_length(content) from alone), 70000, 'whole, as it is under claim_max_chars');
select is((select count(*)::integer from embedding_queue where status = 'pending'), 1, 'the other waits for the next claim');

select * from finish();
rollback;
