-- Local stand-in for supabase_vault 0.3: vault.secrets holds ciphertext; the view
-- vault.decrypted_secrets decrypts it for roles allowed to read it.

create table vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text unique,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);

-- The key lives in a table only superusers and the extension's functions can read.
create table vault._key (k text not null);
insert into vault._key select encode(extensions.gen_random_bytes(32), 'hex');

create function vault._crypt(plain text)
returns text language sql volatile security definer set search_path = ''
as $$ select encode(extensions.pgp_sym_encrypt(plain, (select k from vault._key limit 1)), 'base64') $$;

create function vault._decrypt(cipher text)
returns text language sql stable security definer set search_path = ''
as $$ select extensions.pgp_sym_decrypt(decode(cipher, 'base64'), (select k from vault._key limit 1)) $$;

create function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  rec_id uuid;
begin
  insert into vault.secrets (secret, name, description, key_id)
  values (vault._crypt(new_secret), new_name, coalesce(new_description, ''), new_key_id)
  returning id into rec_id;
  return rec_id;
end
$$;

create function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
) returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  update vault.secrets s set
    secret = coalesce(vault._crypt(new_secret), s.secret),
    name = coalesce(new_name, s.name),
    description = coalesce(new_description, s.description),
    key_id = coalesce(new_key_id, s.key_id),
    updated_at = current_timestamp
  where s.id = secret_id;
end
$$;

create view vault.decrypted_secrets as
select s.id, s.name, s.description, s.secret,
       vault._decrypt(s.secret) as decrypted_secret,
       s.key_id, s.nonce, s.created_at, s.updated_at
from vault.secrets s;

revoke all on all tables in schema vault from public;
revoke all on all functions in schema vault from public;
revoke all on vault._key from public;
