/**
 * The local stack's JWT secret and API keys, made the way `supabase start` makes them:
 * HS256 tokens with `role` anon / service_role, issuer "supabase-demo", signed with the
 * well-known local secret. Local only: a hosted project has its own keys.
 */
import { jwtVerify, SignJWT } from "jose";

export const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
const secret = new TextEncoder().encode(JWT_SECRET);

// Fixed issue and expiry times (as Supabase's demo keys have) keep the keys stable across runs.
const IAT = 1641769200;
const EXP = 1799535600;

async function sign(role: string): Promise<string> {
  return await new SignJWT({ iss: "supabase-demo", role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(IAT)
    .setExpirationTime(EXP)
    .sign(secret);
}

let cache: Promise<[string, string]> | undefined;
function keys() {
  cache ??= Promise.all([sign("anon"), sign("service_role")]);
  return cache;
}

export async function anonKey(): Promise<string> {
  return (await keys())[0];
}

export async function serviceRoleKey(): Promise<string> {
  return (await keys())[1];
}

/**
 * The new API keys a Supabase project gives its functions as SUPABASE_SECRET_KEYS and
 * SUPABASE_PUBLISHABLE_KEYS (JSON objects of name → key, as the CLI's serve template sets them).
 * Fixed local values, like the demo JWTs above; a hosted project has its own.
 */
export const SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";
export const PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH";

/** The verified claims of a token signed with `jwtSecret`, or null for anything else. */
export async function verifyJwt(
  token: string,
  jwtSecret = JWT_SECRET,
): Promise<Record<string, unknown> | null> {
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(jwtSecret), {
      algorithms: ["HS256"],
    });
    return payload as Record<string, unknown>;
  } catch {
    return null;
  }
}
