/**
 * The function checks its own credential, whatever the gateway's verify_jwt says: a bearer
 * token equal to one of the project's API keys that bypass RLS (the legacy service role key,
 * or any of the new `sb_secret_...` keys) or to the queue secret kept in Vault (the one pg_cron
 * and the webhook send). Anything else, a publishable or anon key included, is refused before
 * any work is done.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Config } from "../_shared/config.ts";

const SECRET_TTL_MS = 60_000;

function digest(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}

/** Constant-time equality (over digests, so lengths do not leak either). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function bearerToken(req: Request): string | null {
  const m = (req.headers.get("authorization") ?? "").match(/^Bearer\s+(\S+)\s*$/i);
  return m ? m[1] : null;
}

/** The API keys that may call the function: the service role key and every secret key. */
export function adminKeys(config: Pick<Config, "serviceRoleKey" | "secretKeys">): string[] {
  return [config.serviceRoleKey, ...config.secretKeys].filter((k): k is string => !!k);
}

/** True when `token` equals one of `keys`; every key is compared, so timing does not tell which. */
export function matchesAny(token: string, keys: readonly string[]): boolean {
  let hit = false;
  for (const k of keys) if (k !== "" && sameSecret(token, k)) hit = true;
  return hit;
}

export interface Authenticator {
  check(req: Request): Promise<boolean>;
}

/**
 * `loadQueueSecret` reads the Vault secret (cached for a minute, so a rotation takes effect
 * within that time without a database call per request).
 */
export function createAuthenticator(
  apiKeys: readonly string[],
  loadQueueSecret: () => Promise<string | null>,
  now: () => number = Date.now,
): Authenticator {
  let cached: { value: string | null; at: number } | null = null;
  return {
    async check(req) {
      const token = bearerToken(req);
      if (!token) return false;
      if (matchesAny(token, apiKeys)) return true;
      if (!cached || now() - cached.at > SECRET_TTL_MS) {
        cached = { value: await loadQueueSecret(), at: now() };
      }
      return cached.value !== null && cached.value !== "" && sameSecret(token, cached.value);
    },
  };
}
