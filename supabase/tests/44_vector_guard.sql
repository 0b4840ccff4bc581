-- Vectors only the system writes: an end user's insert or update of an embedding column (role
-- authenticated, the user's own row, as the Data API sends it) is ignored, the old vector kept,
-- while the text stays writable; complete() still writes. Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(6);

set local embed_queue.poke_skip_until = 'infinity';
insert into auth.users (id, email) values ('f0e60000-0000-4000-8000-00000000000a', 'forger@example.com');
create function pg_temp.vec(x float8) returns extensions.vector language sql as $$
  select ('[' || array_to_string(array_fill(x, array[1536]), ',') || ']')::extensions.vector
$$;
insert into public.sessions (id, user_id, title, title_embedding)
values ('f0e60000-0000-4000-8000-0000000000a1', 'f0e60000-0000-4000-8000-00000000000a', 'honest title', pg_temp.vec(0.1));
-- The job's vector as complete() left it.
update public.embedding_queue set status = 'completed'
where record_id = 'f0e60000-0000-4000-8000-0000000000a1';

set local role authenticated;
set local request.jwt.claims = '{"sub": "f0e60000-0000-4000-8000-00000000000a", "role": "authenticated"}';
update public.sessions set title_embedding = pg_temp.vec(0.9) where id = 'f0e60000-0000-4000-8000-0000000000a1';
reset role;
select is((select title_embedding from public.sessions where id = 'f0e60000-0000-4000-8000-0000000000a1'), pg_temp.vec(0.1),
  'a user''s write of the vector alone is ignored: the old vector stays');

set local role authenticated;
insert into public.sessions (id, user_id, title, title_embedding)
values ('f0e60000-0000-4000-8000-0000000000a2', 'f0e60000-0000-4000-8000-00000000000a', 'new row', pg_temp.vec(0.9));
update public.sessions set title = 'changed title', title_embedding = pg_temp.vec(0.9)
where id = 'f0e60000-0000-4000-8000-0000000000a1';
reset role;
select is((select title_embedding from public.sessions where id = 'f0e60000-0000-4000-8000-0000000000a2'), null,
  'a vector a user inserts is dropped; the row waits for its own');
select results_eq(
  $$select title, title_embedding is null from public.sessions where id = 'f0e60000-0000-4000-8000-0000000000a1'$$,
  $$values ('changed title'::text, true)$$, 'the text stays writable; with new text the vector is cleared, not forged');
select is((select status from public.embedding_queue where record_id = 'f0e60000-0000-4000-8000-0000000000a1'), 'pending',
  'and the row is queued again');

-- The worker writes vectors as before.
create temp table c as select * from embed_queue.claim('guard-1', 100)
  where record_id = 'f0e60000-0000-4000-8000-0000000000a1';
select results_eq(
  $$select x.outcome from c, embed_queue.complete('guard-1', array[c.id], array[c.content_hash],
      array[pg_temp.vec(0.3)::text], array[3], array[false], 'text-embedding-3-small', 1536) x$$,
  $$values ('completed'::text)$$, 'complete() still writes the vector');
select is((select title_embedding from public.sessions where id = 'f0e60000-0000-4000-8000-0000000000a1'), pg_temp.vec(0.3),
  'the system''s vector is in place');

select * from finish();
rollback;
