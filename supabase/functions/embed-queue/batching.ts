/**
 * Packs jobs' texts into provider requests (pure). A request stays within OpenAI's limits:
 * at most `maxInputs` inputs, and at most `maxTokens` both by the real token count and by the
 * bytes/4 estimate the API uses for its pre-check (which is larger for CJK text and emoji).
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
    throw new RangeError("packRequests: maxInputs and maxTokens must be at least 1");
  }
  const unique = new Map<string, { tokens: number; estimate: number; ids: number[] }>();
  for (const item of items) {
    if (item.text === "") throw new RangeError(`packRequests: job ${item.id} has an empty text`);
    const seen = unique.get(item.text);
    if (seen) seen.ids.push(item.id);
    else unique.set(item.text, { tokens: item.tokens, estimate: estimateTokens(item.text), ids: [item.id] });
  }

  const requests: ProviderRequest[] = [];
  let cur: ProviderRequest | null = null;
  for (const [text, u] of unique) {
    const fits = cur !== null &&
      cur.inputs.length < limits.maxInputs &&
      cur.tokens + u.tokens <= limits.maxTokens &&
      cur.estimate + u.estimate <= limits.maxTokens;
    if (!fits) {
      cur = { inputs: [], owners: [], tokens: 0, estimate: 0 };
      requests.push(cur);
    }
    cur!.inputs.push(text);
    cur!.owners.push(u.ids);
    cur!.tokens += u.tokens;
    cur!.estimate += u.estimate;
  }
  return requests;
}
