-- Extensions the project needs, created the way a hosted Supabase project has them, so the
-- same files deploy with `supabase db push`:
--   vector          embeddings columns and similarity search
--   pg_cron         the scheduler that calls embed_queue.tick()
--   pg_net          asynchronous HTTP calls to the Edge Function (creates schema net itself)
--   supabase_vault  the function URL and its Bearer secret
--   moddatetime     keeps updated_at columns current

create extension if not exists vector with schema extensions;
create extension if not exists pg_cron with schema pg_catalog;
create extension if not exists pg_net with schema extensions;
create extension if not exists supabase_vault with schema vault;
create extension if not exists moddatetime with schema extensions;
