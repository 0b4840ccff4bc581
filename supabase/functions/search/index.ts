// search: a signed-in user's nearest sessions and summaries. Wiring only; see handler.ts.
import { loadConfig, LOCAL_MODEL } from "../_shared/config.ts";
import { createProvider } from "../_shared/provider.ts";
import { createSearchApi } from "./db.ts";
import { createSearchHandler } from "./handler.ts";
import { log } from "./log.ts";

const env = Deno.env.toObject();
const config = loadConfig(env);
const url = env.SUPABASE_URL;
const anonKey = env.SUPABASE_ANON_KEY;
if (!url || !anonKey) {
  throw new Error("SUPABASE_URL and SUPABASE_ANON_KEY must be set");
}

Deno.serve(createSearchHandler({
  provider: createProvider(config),
  // A column pinned to another model (a model change): the same provider with that model.
  providerFor: (model, dimensions) => {
    if (config.provider === "local" && model !== LOCAL_MODEL) {
      throw new Error(`the local provider cannot make model ${model}: set OPENAI_API_KEY`);
    }
    return createProvider({ ...config, model, dimensions });
  },
  api: (authorization) => createSearchApi(url, anonKey, authorization),
  log,
}));
