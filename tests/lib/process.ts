/** Helpers for tests that kill processes. */

/**
 * Until the process is dead and its sockets closed: gone, or a zombie whose files are released
 * (its parent has not reaped it; a multi-threaded process shows Z for its main thread while
 * other threads still hold them).
 */
export async function waitDead(pid: number) {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      if (
        stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z") &&
        [...Deno.readDirSync(`/proc/${pid}/fd`)].length === 0
      ) {
        return;
      }
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`process ${pid} did not die`);
}
