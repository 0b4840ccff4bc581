/**
 * Small process and file helpers the local stand-ins share (local only): running a command,
 * as the `postgres` OS user where PostgreSQL's tools insist on it, and reading pid files.
 */

const isRoot = Deno.uid() === 0;

/** Runs a command to its end; as root with `asPostgres`, through `runuser -u postgres`. */
export async function run(
  cmd: string,
  args: string[],
  opts: { asPostgres?: boolean; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ ok: boolean; code: number; text: string }> {
  const [c, a] = opts.asPostgres && isRoot
    ? ["runuser", ["-u", "postgres", "--", cmd, ...args]]
    : [cmd, args];
  const out = await new Deno.Command(c, {
    args: a,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

export function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The pid a pid file holds, or null (no file, or not a pid). */
export function readPid(file: string): number | null {
  try {
    const n = Number(Deno.readTextFileSync(file).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
