-- The search index: a column that already has a valid HNSW index (any operator class, e.g. one a
-- migration built) gets no second one; the build the CLI runs is concurrent, and an invalid
-- index left by a failed concurrent build is dropped first. Builds its own table.
begin;
set local search_path = public, extensions;
select plan(4);

create table public.idx_notes (id bigint primary key, body text, emb extensions.vector(3));
select embed_queue.register_target('idx_notes', 'body', 'emb', p_user_column => null, p_deleted_column => null);

select results_eq($$select table_name, drop_statement, create_statement from embed_queue.search_index_statements('idx_notes')$$,
  $$values ('idx_notes'::text, null::text,
            'create index concurrently if not exists idx_notes_emb_hnsw_idx on public.idx_notes using hnsw (emb extensions.vector_cosine_ops)'::text)$$,
  'a column without an index: one concurrent build');

create index idx_notes_emb_l2 on public.idx_notes using hnsw (emb extensions.vector_l2_ops);
select is_empty($$select * from embed_queue.search_index_statements('idx_notes')$$,
  'a column with an HNSW index of another operator class: nothing to build');
select is(embed_queue.ensure_search_index('idx_notes'), 0, 'ensure_search_index does nothing either');

-- An index of our name that is not a valid HNSW one (a failed concurrent build leaves it
-- invalid; postgres cannot fake that here, so a btree one stands in) is dropped first.
drop index public.idx_notes_emb_l2;
create index idx_notes_emb_hnsw_idx on public.idx_notes (id);
select is((select drop_statement from embed_queue.search_index_statements('idx_notes')),
  'drop index concurrently if exists public.idx_notes_emb_hnsw_idx', 'an index in the way is dropped first, concurrently');

select * from finish();
rollback;
