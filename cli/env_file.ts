/**
 * Env files (`KEY=value` lines), read as `supabase functions serve --env-file` reads them: by the
 * CLI for the local stack's supabase/functions/.env, and by the local stand-ins (gateway, stack).
 * Imports nothing, so a remote command loads none of the stand-ins to read one.
 */

/** `KEY=value` lines, as `supabase functions serve --env-file` reads them. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/);
    if (!m) continue;
    let v = m[2];
    const q = v.match(/^(["'])(.*)\1\s*(?:#.*)?$/);
    if (q) v = q[2];
    else v = v.replace(/\s+#.*$/, "").trim();
    out[m[1]] = v;
  }
  return out;
}
