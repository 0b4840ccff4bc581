-- The queue's identity sequence got the default grants of schema public (usage for anon and
-- authenticated): they could burn job ids with nextval(). Nobody but service_role needs it.
revoke all on sequence public.embedding_queue_id_seq from public, anon, authenticated;
grant usage, select on sequence public.embedding_queue_id_seq to service_role;
