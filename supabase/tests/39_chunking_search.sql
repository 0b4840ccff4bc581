-- match_summaries_chunked: the caller's summaries ranked by their best chunk, with that chunk;
-- another user's and soft-deleted summaries never; a user's own insert creates chunks it may read.
begin;
select plan(6);
\ir helpers/search.psql

select embed_search.enable_chunking('summaries', 4, 0);
insert into public.summaries (id, user_id, content) values
  ('c0ffee00-0000-4000-8000-0000000050a1', 'c0ffee00-0000-4000-8000-00000000000a', 'a b c d e f g h'),
  ('c0ffee00-0000-4000-8000-0000000050a2', 'c0ffee00-0000-4000-8000-00000000000a', 'i j k l'),
  ('c0ffee00-0000-4000-8000-0000000050b1', 'c0ffee00-0000-4000-8000-00000000000b', 'm n o p');
create function pg_temp.embed_chunk(p_summary uuid, p_index int, p_vec extensions.vector) returns void language sql as $$
  update public.summary_chunks set embedding = p_vec where summary_id = p_summary and chunk_index = p_index;
  update public.embedding_queue q set status = 'completed', model = 'm-test', completed_at = clock_timestamp()
  from public.summary_chunks c
  where q.table_name = 'summary_chunks' and q.record_id = c.id::text and c.summary_id = p_summary and c.chunk_index = p_index;
$$;
-- a1's second chunk is the query itself; a2 is near; B's is identical to the query too.
select pg_temp.embed_chunk('c0ffee00-0000-4000-8000-0000000050a1', 0, pg_temp.v(0, 1));
select pg_temp.embed_chunk('c0ffee00-0000-4000-8000-0000000050a1', 1, pg_temp.v(1));
select pg_temp.embed_chunk('c0ffee00-0000-4000-8000-0000000050a2', 0, pg_temp.v(1, 0.5));
select pg_temp.embed_chunk('c0ffee00-0000-4000-8000-0000000050b1', 0, pg_temp.v(1));

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select id, chunk_index, chunk_content, round(similarity::numeric, 3) from public.match_summaries_chunked(pg_temp.v(1), 5, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050a1'::uuid, 1, 'e f g h'::text, 1.000::numeric),
           ('c0ffee00-0000-4000-8000-0000000050a2', 0, 'i j k l', 0.894)$$,
  'parents ranked by their best chunk, each once, with that chunk; B''s left out');
select results_eq($$select content from public.match_summaries_chunked(pg_temp.v(1), 1, query_model => 'm-test')$$,
  $$values ('a b c d e f g h'::text)$$, 'the parent''s whole content comes with it');
select is((select count(*)::int from public.summary_chunks), 3, 'A reads only A''s chunks');
insert into public.summaries (user_id, content) values ('c0ffee00-0000-4000-8000-00000000000a', 'q r s t u');
select is((select count(*)::int from public.summary_chunks), 5, 'a user''s own insert is chunked (the trigger writes for them)');
reset role;

update public.summaries set deleted_at = now() where id = 'c0ffee00-0000-4000-8000-0000000050a1';
set local role authenticated;
select results_eq($$select id from public.match_summaries_chunked(pg_temp.v(1), 5, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050a2'::uuid)$$, 'a soft-deleted summary is never found by its chunks');
reset role;

set local role anon;
select throws_ok($$select * from public.match_summaries_chunked(pg_temp.v(1))$$, '42501', null, 'anon may not call it');
reset role;

select * from finish();
rollback;
