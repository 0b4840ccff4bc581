/**
 * Packs jobs' texts into provider requests (pure). A request stays within OpenAI's limits:
 * at most `maxInputs` inputs, and at most `maxTokens` both by the real token count and by the
 * bytes/4 estimate the API uses for its pre-check (which is larger for CJK text and emoji).
 * `maxTokens` comes from requestTokenCap: a small share of the provider's own token limit, so
 * that a request never waits for more capacity than it needs (BENCHMARKS.md F5).
 */
import { estimateTokens } from "../_shared/tokens.ts";

/** One job's text, already truncated to the per-input limit, with its token count. */
export interface BatchItem {
  id: number;
  text: string;
  tokens: number;
}

/** One provider request: `owners[i]` are the job ids whose text is `inputs[i]`. */
export interface ProviderRequest {
  inputs: string[];
  owners: number[][];
  /** Real token count of each input. */
  counts: number[];
  /** Sum of the inputs' real token counts. */
  tokens: number;
  /** Sum of the inputs' bytes/4 estimates. */
  estimate: number;
}

/**
 * Packs items in order into as few requests as the limits allow. Identical texts are sent once,
 * in the request where the text first appears, with every id that has it in `owners`. Items
 * must not be empty strings (the caller skips those). An item that alone exceeds `maxTokens`
 * gets a request of its own (the caller truncates inputs far below the request limit).
 */
export function packRequests(
  items: BatchItem[],
  limits: { maxInputs: number; maxTokens: number },
): ProviderRequest[] {
  if (!(limits.maxInputs >= 1) || !(limits.maxTokens >= 1)) {
    throw new RangeError(
      "packRequests: maxInputs and maxTokens must be at least 1",
    );
  }
  const unique = new Map<
    string,
    { tokens: number; estimate: number; ids: number[] }
  >();
  for (const item of items) {
    if (item.text === "") {
      throw new RangeError(`packRequests: job ${item.id} has an empty text`);
    }
    const seen = unique.get(item.text);
    if (seen) seen.ids.push(item.id);
    else {unique.set(item.text, {
        tokens: item.tokens,
        estimate: estimateTokens(item.text),
        ids: [item.id],
      });}
  }

  const requests: ProviderRequest[] = [];
  let cur: ProviderRequest | null = null;
  for (const [text, u] of unique) {
    const fits = cur !== null &&
      cur.inputs.length < limits.maxInputs &&
      cur.tokens + u.tokens <= limits.maxTokens &&
      cur.estimate + u.estimate <= limits.maxTokens;
    if (!fits) {
      cur = { inputs: [], owners: [], counts: [], tokens: 0, estimate: 0 };
      requests.push(cur);
    }
    cur!.inputs.push(text);
    cur!.owners.push(u.ids);
    cur!.counts.push(u.tokens);
    cur!.tokens += u.tokens;
    cur!.estimate += u.estimate;
  }
  return requests;
}

/**
 * Share of the provider's tokens per minute one request may take. Against a sliding 60 s window
 * a request waits until that much capacity is back, and the last request of a drain ends its
 * latency after the window allowed it: requests of 18 % of the window (a batch of 1,000
 * summaries at 1M TPM) reached 92 % of the ceiling, requests of 5 % 97.7 % (BENCHMARKS.md 1.2).
 */
export const REQUEST_SHARE_OF_TOKEN_LIMIT = 0.05;
/** Of the provider's requests per minute, the share that requests of the cap may use at full token rate. */
const REQUEST_SHARE_OF_REQUEST_LIMIT = 0.5;

/**
 * Tokens one request may carry: REQUEST_SHARE_OF_TOKEN_LIMIT of the provider's
 * `x-ratelimit-limit-tokens`, raised where requests that small would spend more than half of
 * `x-ratelimit-limit-requests`, never above `max` (OpenAI's 300,000, or the configured cap).
 * `max` when the limits are not known yet.
 */
export function requestTokenCap(
  limits: { tokens?: number; requests?: number },
  max: number,
): number {
  if (limits.tokens === undefined || !(limits.tokens > 0)) return max;
  let cap = limits.tokens * REQUEST_SHARE_OF_TOKEN_LIMIT;
  if (limits.requests !== undefined && limits.requests > 0) {
    cap = Math.max(
      cap,
      limits.tokens / (limits.requests * REQUEST_SHARE_OF_REQUEST_LIMIT),
    );
  }
  return Math.max(1, Math.min(max, Math.floor(cap)));
}

/**
 * Cuts a request into requests within `limits`, in order, by its inputs' real counts and bytes/4
 * estimates; a request already within them comes back alone. An input alone over `maxTokens`
 * gets a request of its own.
 */
export function repack(
  req: ProviderRequest,
  limits: { maxInputs: number; maxTokens: number },
): ProviderRequest[] {
  if (
    req.inputs.length <= limits.maxInputs && req.tokens <= limits.maxTokens &&
    req.estimate <= limits.maxTokens
  ) return [req];
  const out: ProviderRequest[] = [];
  let cur: ProviderRequest | null = null;
  req.inputs.forEach((text, i) => {
    const tokens = req.counts[i];
    const estimate = estimateTokens(text);
    const fits = cur !== null && cur.inputs.length < limits.maxInputs &&
      cur.tokens + tokens <= limits.maxTokens &&
      cur.estimate + estimate <= limits.maxTokens;
    if (!fits) {
      cur = { inputs: [], owners: [], counts: [], tokens: 0, estimate: 0 };
      out.push(cur);
    }
    cur!.inputs.push(text);
    cur!.owners.push(req.owners[i]);
    cur!.counts.push(tokens);
    cur!.tokens += tokens;
    cur!.estimate += estimate;
  });
  return out;
}
