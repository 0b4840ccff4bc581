-- embed_search.split_text: chunks of at most the estimated tokens, overlapping, covering the text.
begin;
select plan(6);

select results_eq($$select chunk_index, content from embed_search.split_text('a b c d e f g h i j', 4, 1)$$,
  $$values (0, 'a b c d'), (1, 'd e f g'), (2, 'g h i j')$$, 'four one-token words a chunk, one word of overlap');
select results_eq($$select content from embed_search.split_text('  one   two three  ', 10, 2)$$,
  $$values ('one two three')$$, 'a short text is one chunk, whitespace normalised');
select is_empty($$select * from embed_search.split_text('   ', 10, 2)$$, 'a blank text has no chunk');
select results_eq($$select content from embed_search.split_text(repeat('x', 40) || ' y', 5, 0)$$,
  $$values (repeat('x', 40)), ('y')$$, 'a word longer than a chunk is a chunk of its own');
select is((select count(*)::int from embed_search.split_text(repeat('word ', 30000), 512, 64)), 67,
  '30,000 one-token words at 512 with 64 overlap: 67 chunks (448 new words each)');
select ok((select bool_and(
    (select sum(greatest(1, ceil(octet_length(w) / 4.0))) from regexp_split_to_table(content, ' ') w) <= 512)
  from embed_search.split_text(repeat('hydration ', 5000), 512, 64)), 'no chunk over the estimated limit');

select * from finish();
rollback;
