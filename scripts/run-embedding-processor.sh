#!/usr/bin/env bash
# The user's guide's entry point, kept working:
#
#   ./scripts/run-embedding-processor.sh [batch_size] [delay_ms]
#
# Runs `drain` (cli/main.ts): calls the embed-queue function until nothing is pending, then
# prints the guide's summary. Without arguments it uses the function's own batch size and no
# pause; `5 1000` reproduces the guide's old pacing.
#
# Where it talks to: the local stack "dev" (start it with `npm start` or `npm run stack -- up`),
# or the project given by SUPABASE_URL (or the guide's NEXT_PUBLIC_SUPABASE_URL),
# SUPABASE_SERVICE_ROLE_KEY and, optionally, SUPABASE_DB_URL.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

usage() {
  echo "usage: $0 [batch_size] [delay_ms]   (whole numbers; see: node_modules/.bin/deno run -A cli/main.ts drain --help)" >&2
  exit 2
}
[ $# -le 2 ] || usage
for a in "$@"; do
  case "$a" in
    -h|--help) exec node_modules/.bin/deno run -A cli/main.ts drain --help ;;
    ''|*[!0-9]*) usage ;;
  esac
done

# `source frontend/.env.local` sets variables without exporting them; pass them on.
if [ -n "${NEXT_PUBLIC_SUPABASE_URL:-}" ] && [ -z "${SUPABASE_URL:-}" ]; then export SUPABASE_URL="$NEXT_PUBLIC_SUPABASE_URL"; fi
[ -z "${SUPABASE_URL:-}" ] || export SUPABASE_URL
[ -z "${SUPABASE_SERVICE_ROLE_KEY:-}" ] || export SUPABASE_SERVICE_ROLE_KEY
[ -z "${SUPABASE_DB_URL:-}" ] || export SUPABASE_DB_URL

# Set-up only when this machine has not had it yet (it is idempotent, but needs root for apt).
if ! node_modules/.bin/deno --version >/dev/null 2>&1; then
  bash scripts/setup.sh
fi

args=(drain)
[ -z "${1:-}" ] || args+=(--batch-size "$1")
[ -z "${2:-}" ] || args+=(--delay-ms "$2")
echo "Starting Embedding Queue Processor"
exec node_modules/.bin/deno run -A cli/main.ts "${args[@]}"
