-- Local stand-in for Supabase Vault 0.3.1: the objects of the real install script with the same
-- names, columns, argument names, types, defaults, return types and grants (supabase/vault, tag
-- v0.3.1, sql/supabase_vault--0.3.0.sql plus sql/supabase_vault--0.3.0--0.3.1.sql, which has
-- no SQL changes). vault.decrypted_secrets, vault.create_secret and vault.update_secret are
-- the real ones' logic; only the three vault._crypto_aead_det_* functions differ inside:
-- * real: C functions (libsodium, deterministic XChaCha20-Poly1305 with `additional` as
--   authenticated data) under a key derived from the server's root key, which SQL never sees.
-- * here: pgcrypto's OpenPGP symmetric encryption (AES-256) under a key derived with HMAC from
--   a random per-database root key in vault._stand_in_key, readable only by the extension's
--   owner; key_id, context, additional and nonce all enter the derivation, so a ciphertext
--   moved to another row (another id) no longer decrypts, as with the real AEAD. They are
--   security definer so they can read that key; the caller still needs EXECUTE on them, which
--   is revoked from public as in the real script.
-- Hosted Supabase grants `postgres` and service_role access after creating the extension
-- (supabase/postgres, ansible/files/postgresql_extension_custom_scripts/supabase_vault/
-- after-create.sql); that is the local bootstrap's job, not this script's.

create table vault._stand_in_key (root bytea not null);
comment on table vault._stand_in_key is
  'Local stand-in only (hosted Vault keeps its key outside the database): the root key of the pgcrypto encryption.';
insert into vault._stand_in_key (root) values (extensions.gen_random_bytes(32));
revoke all on vault._stand_in_key from public;

create function vault._crypto_aead_det_encrypt(message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null)
returns bytea
language sql immutable security definer set search_path = ''
as $$
  select extensions.pgp_sym_encrypt_bytea(
    message,
    pg_catalog.encode(extensions.hmac(
      pg_catalog.convert_to(key_id::text || '/', 'UTF8') || coalesce(context, ''::bytea) || '\x00'::bytea
        || coalesce(nonce, ''::bytea) || '\x00'::bytea || additional,
      (select k.root from vault._stand_in_key k limit 1), 'sha256'), 'hex'),
    'cipher-algo=aes256, s2k-mode=1')
$$;

create function vault._crypto_aead_det_decrypt(message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null)
returns bytea
language sql immutable security definer set search_path = ''
as $$
  select extensions.pgp_sym_decrypt_bytea(
    message,
    pg_catalog.encode(extensions.hmac(
      pg_catalog.convert_to(key_id::text || '/', 'UTF8') || coalesce(context, ''::bytea) || '\x00'::bytea
        || coalesce(nonce, ''::bytea) || '\x00'::bytea || additional,
      (select k.root from vault._stand_in_key k limit 1), 'sha256'), 'hex'))
$$;

-- 16 random bytes, as libsodium's deterministic AEAD nonce; declared immutable as the real one.
create function vault._crypto_aead_det_noncegen()
returns bytea
language sql immutable
as $$ select extensions.gen_random_bytes(16) $$;

create table vault.secrets (
  id uuid     primary key default gen_random_uuid(),
  name        text,
  description text not null default '',
  secret      text not null,
  key_id      uuid,
  nonce       bytea default vault._crypto_aead_det_noncegen(),
  created_at  timestamptz not null default current_timestamp,
  updated_at  timestamptz not null default current_timestamp
);

comment on table vault.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk.';

create unique index on vault.secrets using btree (name) where name is not null;

create view vault.decrypted_secrets as
select s.id,
  s.name,
  s.description,
  s.secret,
  convert_from(
    vault._crypto_aead_det_decrypt(
      message := decode(s.secret, 'base64'::text),
      additional := convert_to(s.id::text, 'utf8'),
      key_id := 0,
      context := 'pgsodium'::bytea,
      nonce := s.nonce
    ),
    'utf8'::name
  ) as decrypted_secret,
  s.key_id,
  s.nonce,
  s.created_at,
  s.updated_at
from vault.secrets s;

create function vault.create_secret(
  new_secret text,
  new_name text = null,
  new_description text = '',
  -- unused (as in the real one)
  new_key_id uuid = null
)
returns uuid
security definer
language plpgsql
set search_path = ''
as $$
declare
  rec record;
begin
  insert into vault.secrets (secret, name, description)
  values (new_secret, new_name, new_description)
  returning * into rec;
  update vault.secrets s
  set secret = pg_catalog.encode(vault._crypto_aead_det_encrypt(
    message := pg_catalog.convert_to(rec.secret, 'utf8'),
    additional := pg_catalog.convert_to(s.id::text, 'utf8'),
    key_id := 0,
    context := 'pgsodium'::bytea,
    nonce := rec.nonce
  ), 'base64')
  where id = rec.id;
  return rec.id;
end
$$;

create function vault.update_secret(
  secret_id uuid,
  new_secret text = null,
  new_name text = null,
  new_description text = null,
  -- unused (as in the real one)
  new_key_id uuid = null
)
returns void
security definer
language plpgsql
set search_path = ''
as $$
declare
  -- As the real one: reading the current secret first fails if it no longer decrypts.
  decrypted_secret text := (select ds.decrypted_secret from vault.decrypted_secrets ds where ds.id = secret_id);
begin
  update vault.secrets s
  set
    secret = case when new_secret is null then s.secret
                  else pg_catalog.encode(vault._crypto_aead_det_encrypt(
                    message := pg_catalog.convert_to(new_secret, 'utf8'),
                    additional := pg_catalog.convert_to(s.id::text, 'utf8'),
                    key_id := 0,
                    context := 'pgsodium'::bytea,
                    nonce := s.nonce
                  ), 'base64') end,
    name = coalesce(new_name, s.name),
    description = coalesce(new_description, s.description),
    updated_at = pg_catalog.now()
  where s.id = secret_id;
end
$$;

revoke all on function
  vault._crypto_aead_det_encrypt,
  vault._crypto_aead_det_decrypt,
  vault._crypto_aead_det_noncegen,
  vault.create_secret,
  vault.update_secret
from public;

select pg_catalog.pg_extension_config_dump('vault.secrets', '');
