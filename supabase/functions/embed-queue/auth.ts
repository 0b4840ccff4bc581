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
/** A Vault read that failed is not tried again for this long: a flood of calls makes no flood of reads. */
const FAILED_LOOKUP_TTL_MS = 5_000;
/**
 * The queue secret must be at least this long; a shorter one in Vault is treated as none, and a
 * token shorter than this cannot be it, so it is refused without reading Vault at all.
 */
export const MIN_QUEUE_SECRET_CHARS = 32;

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
 * within that time without a database call per request). Cheap refusal of unauthenticated
 * calls: no header, or a token shorter than MIN_QUEUE_SECRET_CHARS, is refused before any read;
 * concurrent calls on a cold cache share one read; a failed read is remembered for
 * FAILED_LOOKUP_TTL_MS (the calls meanwhile are refused).
 */
export function createAuthenticator(
  apiKeys: readonly string[],
  loadQueueSecret: () => Promise<string | null>,
  now: () => number = Date.now,
): Authenticator {
  let cached: { value: string | null; until: number } | null = null;
  let inFlight: Promise<string | null> | null = null;
  const queueSecret = (): Promise<string | null> => {
    if (cached && now() < cached.until) return Promise.resolve(cached.value);
    inFlight ??= loadQueueSecret().then(
      (value) => {
        cached = { value, until: now() + SECRET_TTL_MS };
        return value;
      },
      () => {
        cached = { value: null, until: now() + FAILED_LOOKUP_TTL_MS };
        return null;
      },
    ).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
  return {
    async check(req) {
      const token = bearerToken(req);
      if (!token) return false;
      if (matchesAny(token, apiKeys)) return true;
      if (token.length < MIN_QUEUE_SECRET_CHARS) return false;
      const secret = await queueSecret();
      return usableQueueSecret(secret) && sameSecret(token, secret!);
    },
  };
}

/** A Vault queue secret that may be used: present and at least MIN_QUEUE_SECRET_CHARS long (an empty one is none). */
export function usableQueueSecret(secret: string | null | undefined): boolean {
  return typeof secret === "string" && secret.length >= MIN_QUEUE_SECRET_CHARS;
}
