-- The offline provider's model is named local-hash-v1 (supabase/functions/embed-queue/provider.ts):
-- price it, so the usage view shows its rows (at zero cost) instead of leaving them unpriced.
insert into embed_queue.models (model, usd_per_million_tokens) values ('local-hash-v1', 0)
on conflict (model) do nothing;
