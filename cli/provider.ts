/**
 * The function's own provider and config modules, used by the CLI so that `search` embeds its
 * text exactly as the function embeds rows, and `estimate` counts tokens as the function does.
 * The configuration comes from the same variables (OPENAI_*, EMBEDDING_*, EMBED_QUEUE_*); for the
 * local stack, supabase/functions/.env is read too, as the gateway reads it.
 */
import { join } from "node:path";
import { type Config, ConfigError, loadConfig } from "../supabase/functions/_shared/config.ts";
import { createProvider } from "../supabase/functions/_shared/provider.ts";
import { operatorMessage, toProviderError } from "../supabase/functions/_shared/errors.ts";
import { toPgvector } from "../supabase/functions/_shared/vectors.ts";
import { truncateToTokens } from "../supabase/functions/_shared/tokens.ts";
import { parseEnvFile } from "./env_file.ts";
import { CliError, UsageError } from "./errors.ts";
import { describeProvider, type ProviderInfo } from "./format.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The environment the function sees on the local stack: supabase/functions/.env, then ours. */
export function functionEnv(local: boolean): Record<string, string> {
  let file: Record<string, string> = {};
  if (local) {
    try {
      file = parseEnvFile(Deno.readTextFileSync(join(ROOT, "supabase/functions/.env")));
    } catch { /* no .env */ }
  }
  return { ...file, ...Deno.env.toObject() };
}

/** The function's configuration from our environment; a bad variable is a usage error. */
export function cliConfig(local = true): Config {
  try {
    return loadConfig(functionEnv(local));
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}

export function providerInfo(c: Config): ProviderInfo {
  return {
    provider: c.provider,
    model: c.model,
    dimensions: c.dimensions,
    usdPerMillionTokens: c.usdPerMillionTokens,
  };
}

/** One line describing the provider the local stack's function will use. */
export function functionProviderLine(): string {
  return describeProvider(providerInfo(cliConfig(true)));
}

/** Tokens of one input as the function sends it (cut at the per-input limit). */
export function inputTokens(text: string, maxTokensPerInput: number): { tokens: number; truncated: boolean } {
  const t = truncateToTokens(text, maxTokensPerInput);
  return { tokens: t.tokens, truncated: t.truncated };
}

/** Embeds one text with the function's provider; returns the pgvector literal. */
export async function embedQuery(
  c: Config,
  text: string,
  signal?: AbortSignal,
): Promise<{ vector: string; dimensions: number }> {
  const provider = createProvider(c);
  const input = truncateToTokens(text, c.maxTokensPerInput).text;
  try {
    const res = await provider.embed([input], signal);
    const v = res.vectors[0];
    return { vector: toPgvector(v), dimensions: v.length };
  } catch (e) {
    throw new CliError(`embedding the search text failed: ${operatorMessage(toProviderError(e))}`);
  }
}
