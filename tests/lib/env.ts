/** The test stack and test server that tests/run.ts started, as it hands them to the tests. */
const get = (name: string) => Deno.env.get(`EQ_TEST_${name}`) ?? "";

export const testEnv = {
  dbUrl: get("DB_URL"),
  apiUrl: get("API_URL"),
  functionsUrl: get("FUNCTIONS_URL"),
  serviceRoleKey: get("SERVICE_ROLE_KEY"),
  anonKey: get("ANON_KEY"),
  stateDir: get("STATE_DIR"),
  fakeOpenAIUrl: get("FAKE_OPENAI_URL"),
  fakeOpenAIKey: get("FAKE_OPENAI_KEY"),
  fakeAdminUrl: get("FAKE_OPENAI_ADMIN_URL"),
};

/**
 * Added to every fixed port the tests use, so two checkouts can run `npm test` side by side
 * (EQ_PORT_OFFSET=1000 npm test). 0 by default.
 */
export const portOffset = Number(Deno.env.get("EQ_PORT_OFFSET") ?? 0);
