#!/usr/bin/env bash
# Installs everything the project needs on Debian 12 (bookworm) or 13 (trixie).
# Idempotent: on a ready machine it checks and returns in seconds.
# Runs as root, or as a user with sudo.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo -n); fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
case "$codename" in
  bookworm) PG=15 ;;
  trixie) PG=17 ;;
  *) log "unsupported Debian release '$codename' (need bookworm or trixie)"; exit 1 ;;
esac
PG_BIN=/usr/lib/postgresql/$PG/bin

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" apt-get update -qq >/dev/null
    apt_updated=1
  fi
}

need=()
want_pkgs=(
  "postgresql-$PG" "postgresql-contrib"
  "postgresql-$PG-cron" "postgresql-$PG-pgtap" "libtap-parser-sourcehandler-pgtap-perl"
  "postgresql-$PG-plpgsql-check" "pgbouncer"
)
[ "$PG" = 17 ] && want_pkgs+=("postgresql-17-pgvector")
for p in "${want_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt_update
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's postgresql-common creates and starts a default cluster on install; the project
# runs its own cluster, so stop any packaged one that holds the port range we use.
PG_CONFIG=$PG_BIN/pg_config
[ -x "$PG_CONFIG" ] || PG_CONFIG=/usr/bin/pg_config
sharedir=$("$PG_CONFIG" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$PG")

# pgvector: bookworm has no binary package; build Debian's source package from trixie.
if [ ! -f "$sharedir/extension/vector.control" ]; then
  build_need=()
  for p in "postgresql-server-dev-$PG" dpkg-dev make gcc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || build_need+=("$p")
  done
  if [ ${#build_need[@]} -gt 0 ]; then
    apt_update
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${build_need[@]}" >/dev/null
  fi
  src_list=/etc/apt/sources.list.d/embed-queue-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | awk '{print $2}')
    [ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -1 | awk '{print $2}')
    [ -n "$uri" ] || { log "cannot find the Debian archive URI in the apt sources"; exit 1; }
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
      | "${SUDO[@]}" tee "$src_list" >/dev/null
    apt_updated=0
  fi
  apt_update
  work=$(mktemp -d)
  log "building pgvector from Debian's source package"
  ( cd "$work" && apt-get source --download-only -qq pgvector >/dev/null 2>&1 \
      && tar xzf pgvector_*.orig.tar.gz \
      && cd pgvector-*/ \
      && make -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null 2>&1 \
      && "${SUDO[@]}" make -s PG_CONFIG="$PG_CONFIG" install >/dev/null )
  rm -rf "$work"
  [ -f "$sharedir/extension/vector.control" ] || { log "pgvector build failed"; exit 1; }
fi

# Local stand-ins packaged as pure-SQL extensions under the real names (pg_net, supabase_vault).
for ext in local/extensions/*/; do
  for f in "$ext"*.control "$ext"*.sql; do
    dest="$sharedir/extension/$(basename "$f")"
    cmp -s "$f" "$dest" 2>/dev/null || "${SUDO[@]}" install -m 0644 "$f" "$dest"
  done
done

# supautils' privileged extensions, reproduced with PostgreSQL's trusted extensions: a trusted
# extension's script runs as the bootstrap superuser (supabase_admin, as supautils'
# privileged_extensions_superuser), so the non-superuser `postgres` can create the allow-listed
# extensions the project and its tests use and nothing else (local/sql/bootstrap.sql says more).
for ext in vector pg_cron moddatetime dblink; do
  f="$sharedir/extension/$ext.control"
  [ -f "$f" ] || { log "missing $f"; exit 1; }
  grep -qE '^\s*trusted\s*=' "$f" || printf 'trusted = true\n' | "${SUDO[@]}" tee -a "$f" >/dev/null
done

# npm packages (the deno and supabase binaries ship inside them).
if [ ! -x node_modules/.bin/deno ] || [ ! -x node_modules/.bin/supabase ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm install (from the lock file)"
  # npm ci refuses this lock: the CLI's other-platform binaries are optional and never resolved here.
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
# The deno package fetches its binary in a postinstall step; make sure it is there.
if ! node_modules/.bin/deno --version >/dev/null 2>&1; then
  log "deno binary missing after npm install"; exit 1
fi

# Deno's module cache (npm: specifiers) for everything the project imports.
stamp=.cache/deno-cache.stamp
mkdir -p .cache
if [ ! -f "$stamp" ] || [ deno.json -nt "$stamp" ] || [ -n "$(find supabase/functions local cli tests \( -name '*.ts' -o -name deno.json \) -newer "$stamp" 2>/dev/null | head -1)" ]; then
  log "deno cache (module cache)"
  # A function with its own deno.json resolves with it alone (as the gateway and the CLI run it);
  # one `deno cache` would apply the first entry's config to every file, so cache those apart.
  mapfile -t own < <(find supabase/functions tests/fixtures/functions -mindepth 2 -maxdepth 2 \
    \( -name deno.json -o -name deno.jsonc \) 2>/dev/null)
  skip=()
  for c in "${own[@]}"; do skip+=(-not -path "$(dirname "$c")/*"); done
  mapfile -t entries < <(find supabase/functions local cli tests -name '*.ts' "${skip[@]}" 2>/dev/null)
  [ ${#entries[@]} -eq 0 ] || node_modules/.bin/deno cache --quiet --config deno.json "${entries[@]}" >/dev/null
  for c in "${own[@]}"; do
    mapfile -t fn < <(find "$(dirname "$c")" -name '*.ts')
    node_modules/.bin/deno cache --quiet --config "$c" --no-lock --node-modules-dir=none "${fn[@]}" >/dev/null
  done
  touch "$stamp"
fi
log "ready (Debian $codename, PostgreSQL $PG)"
