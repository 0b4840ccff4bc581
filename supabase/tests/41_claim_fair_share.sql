-- A fair share: among users with waiting jobs claims take them in turn, so one user's backlog
-- delays another user's new row by at most one claim. Rows written as the Data API writes them
-- (role authenticated, the user's claims). Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(6);

delete from public.embedding_queue;
set local embed_queue.poke_skip_until = 'infinity';
update embed_queue.settings set bulk_min_share = 0.1;
insert into auth.users (id, email) values
  ('fa150000-0000-4000-8000-00000000000a', 'flood@example.com'),
  ('fa150000-0000-4000-8000-00000000000b', 'single@example.com'),
  ('fa150000-0000-4000-8000-00000000000c', 'pair@example.com');

create function pg_temp.write_as(p_user uuid, p_rows integer) returns void language plpgsql as $$
begin
  perform set_config('request.jwt.claims', json_build_object('sub', p_user, 'role', 'authenticated')::text, true);
  set local role authenticated;
  insert into public.sessions (user_id, title) select p_user, 'row ' || g from generate_series(1, p_rows) g;
  reset role;
end
$$;
create function pg_temp.owners(p_worker text, p_limit integer) returns table (owner uuid) language sql as $$
  select s.user_id from embed_queue.claim(p_worker, p_limit) c join public.sessions s on s.id::text = c.record_id
$$;

-- A floods 500 rows in one statement; then B writes one row and C two.
select pg_temp.write_as('fa150000-0000-4000-8000-00000000000a', 500);
select pg_temp.write_as('fa150000-0000-4000-8000-00000000000b', 1);
select pg_temp.write_as('fa150000-0000-4000-8000-00000000000c', 2);

select ok(
  (select count(distinct vtime) = 500 and max(vtime) - min(vtime) = 499 from embedding_queue
   where user_id = 'fa150000-0000-4000-8000-00000000000a'),
  'one user''s rows of one statement take consecutive turns');

create temp table c1 as select * from pg_temp.owners('fair-1', 10);
select results_eq($$select owner, count(*)::integer from c1 group by owner order by owner$$,
  $$values ('fa150000-0000-4000-8000-00000000000a'::uuid, 7),
           ('fa150000-0000-4000-8000-00000000000b'::uuid, 1),
           ('fa150000-0000-4000-8000-00000000000c'::uuid, 2)$$,
  'the next claim takes the rows of the users behind the flood along with it');

-- Later, while A's backlog drains, B writes again: the very next claim takes it.
create temp table c2 as select * from pg_temp.owners('fair-2', 10);
select pg_temp.write_as('fa150000-0000-4000-8000-00000000000b', 1);
create temp table c3 as select * from pg_temp.owners('fair-3', 10);
select is((select count(*)::integer from c3 where owner = 'fa150000-0000-4000-8000-00000000000b'), 1,
  'a row written behind a backlog of another user''s goes with the next claim');

-- Two users flooding and one writing: the floods alternate, the single row goes next.
select pg_temp.write_as('fa150000-0000-4000-8000-00000000000c', 300);
create temp table c4 as select * from pg_temp.owners('fair-4', 20);
select results_eq($$select owner, count(*)::integer from c4 group by owner order by owner$$,
  $$values ('fa150000-0000-4000-8000-00000000000a'::uuid, 10),
           ('fa150000-0000-4000-8000-00000000000c'::uuid, 10)$$,
  'two backlogs share the claims equally');
select pg_temp.write_as('fa150000-0000-4000-8000-00000000000b', 1);
create temp table c5 as select * from pg_temp.owners('fair-5', 3);
select is((select count(*)::integer from c5 where owner = 'fa150000-0000-4000-8000-00000000000b'), 1,
  'with two floods, a single row still goes with the next claim');

-- A job updated again while it waits keeps its place.
create temp table before as
  select id, vtime from embedding_queue where status = 'pending' and user_id = 'fa150000-0000-4000-8000-00000000000a'
  order by vtime limit 1;
update public.sessions set title = 'changed while waiting'
where id::text = (select q.record_id from embedding_queue q where q.id = (select id from before));
select is((select vtime from embedding_queue where id = (select id from before)), (select vtime from before),
  'a waiting job whose row changes again keeps its place');


select * from finish();
rollback;
