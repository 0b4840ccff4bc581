-- Chunk rows follow their summary while chunking is on: created and queued as an embed_queue
-- target of their own; unchanged chunks keep their vector when the text changes; soft delete
-- and delete of the summary reach its chunks and their jobs; off again, they go.
begin;
select plan(11);
\ir helpers/search.psql

insert into public.summaries (id, user_id, content) values
  ('c0ffee00-0000-4000-8000-0000000050a1', 'c0ffee00-0000-4000-8000-00000000000a', 'a b c d e f g h i j');
select is((select count(*)::int from public.summary_chunks), 0, 'off by default: no chunks');

select is(embed_search.enable_chunking('summaries', 16, 4) >= 1, true, 'enable_chunking chunks every summary');
create temp table n as select embed_search.enable_chunking('summaries', 4, 1) as live;
select is((select live from n), (select count(*)::int from public.summary_chunks where deleted_at is null),
  'again with other sizes: re-chunked, returns the live chunks');
select results_eq($$select chunk_index, content, user_id from public.summary_chunks
    where summary_id = 'c0ffee00-0000-4000-8000-0000000050a1' order by chunk_index$$,
  $$values (0, 'a b c d', 'c0ffee00-0000-4000-8000-00000000000a'::uuid), (1, 'd e f g', 'c0ffee00-0000-4000-8000-00000000000a'),
           (2, 'g h i j', 'c0ffee00-0000-4000-8000-00000000000a')$$, 'the summary''s chunks, with its owner');
select is((select count(*)::int from public.embedding_queue q join public.summary_chunks c on q.record_id = c.id::text
    where q.table_name = 'summary_chunks' and q.status = 'pending' and c.summary_id = 'c0ffee00-0000-4000-8000-0000000050a1'),
  3, 'each chunk is a pending job of the summary_chunks target');

-- Embed the chunks, then change the end of the text: the first chunks keep their vectors.
update public.summary_chunks set embedding = pg_temp.v(1) where summary_id = 'c0ffee00-0000-4000-8000-0000000050a1';
update public.embedding_queue set status = 'completed' where table_name = 'summary_chunks';
update public.summaries set content = 'a b c d e f g h i j k l' where id = 'c0ffee00-0000-4000-8000-0000000050a1';
select results_eq($$select chunk_index, content, embedding is not null from public.summary_chunks
    where summary_id = 'c0ffee00-0000-4000-8000-0000000050a1' order by chunk_index$$,
  $$values (0, 'a b c d', true), (1, 'd e f g', true), (2, 'g h i j', true), (3, 'j k l', false)$$,
  'a longer text: unchanged chunks keep their vector, the new one waits for its own');
update public.summaries set content = 'a b c d x' where id = 'c0ffee00-0000-4000-8000-0000000050a1';
select results_eq($$select chunk_index, content from public.summary_chunks
    where summary_id = 'c0ffee00-0000-4000-8000-0000000050a1' order by chunk_index$$,
  $$values (0, 'a b c d'), (1, 'd x')$$, 'a shorter text: chunks past the end are gone');

update public.summaries set deleted_at = now() where id = 'c0ffee00-0000-4000-8000-0000000050a1';
select ok((select bool_and(deleted_at is not null) from public.summary_chunks
    where summary_id = 'c0ffee00-0000-4000-8000-0000000050a1'), 'soft delete reaches the chunks');
select is((select count(*)::int from public.embedding_queue q join public.summary_chunks c on q.record_id = c.id::text
    where q.table_name = 'summary_chunks' and c.summary_id = 'c0ffee00-0000-4000-8000-0000000050a1'), 0,
  'and withdraws their jobs');

delete from public.summaries where id = 'c0ffee00-0000-4000-8000-0000000050a1';
select is((select count(*)::int from public.summary_chunks where summary_id = 'c0ffee00-0000-4000-8000-0000000050a1'), 0,
  'delete takes the chunks with it');

select embed_search.disable_chunking('summaries');
select is((select count(*)::int from public.summary_chunks) + (select count(*)::int from public.embedding_queue where table_name = 'summary_chunks'),
  0, 'disable_chunking: no chunk and no chunk job left');

select * from finish();
rollback;
