-- Backfill: rows that existed before registration are queued page by page, idempotently.
begin;
set local search_path = public, extensions;
select plan(8);

create table public.articles (
  id integer primary key,
  body text,
  body_embedding extensions.vector(3),
  deleted_at timestamptz
);
insert into public.articles (id, body, body_embedding, deleted_at)
select g,
       case when g = 7 then '' else 'Article ' || g end,
       case when g % 10 = 0 then '[1,0,0]'::extensions.vector end,
       case when g % 11 = 0 then now() end
from generate_series(1, 25) g;
-- live rows without embedding: 25 - 2 embedded (10, 20) - 2 deleted (11, 22) = 21, one of them empty (7)

select embed_queue.register_target('articles', 'body', 'body_embedding', p_user_column => null);
select is((select count(*)::integer from embedding_queue where table_name = 'articles'), 0, 'registration alone queues nothing');

select results_eq($$select queued, last_key from embed_queue.backfill_page('articles', null, 10)$$,
  $$values (9, '10'::text)$$, 'page 1: keys 1-10, 9 queued (10 has its embedding), continue after 10');
select results_eq($$select queued, last_key from embed_queue.backfill_page('articles', '10', 10)$$,
  $$values (8, '20'::text)$$, 'page 2: keys 11-20, 8 queued (11 deleted, 20 embedded); keys compare as integers');
select results_eq($$select queued, last_key from embed_queue.backfill_page('articles', '20', 10)$$,
  $$values (4, null::text)$$, 'page 3: keys 21-25, 4 queued; last page: last_key null');
select results_eq(
  $$select status, count(*)::integer from embedding_queue where table_name = 'articles' group by status order by status$$,
  $$values ('pending'::text, 20), ('skipped', 1)$$,
  '21 jobs: 20 pending, the empty one skipped');
select results_eq($$select queued, last_key from embed_queue.backfill_page('articles')$$,
  $$values (0, null::text)$$, 'again: nothing more to queue (idempotent)');

-- Existing jobs are left as they are.
update embedding_queue set status = 'failed', error_message = 'kept' where table_name = 'articles' and record_id = '1';
select embed_queue.backfill_page('articles');
select is((select status from embedding_queue where table_name = 'articles' and record_id = '1'), 'failed', 'existing jobs are not touched');

select throws_ok($$select * from embed_queue.backfill_page('nope')$$, 'P0002', null, 'unknown table: P0002');


select * from finish();
rollback;
