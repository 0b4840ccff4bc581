-- The backfill procedure could not pin its search_path (PostgreSQL refuses COMMIT in a
-- procedure with a SET clause), the one finding of the security advisor. Callers loop
-- embed_queue.backfill_page() instead, one page per transaction: the CLI's `backfill` does,
-- and so can plain SQL (see the README).
drop procedure embed_queue.backfill(text, integer);
