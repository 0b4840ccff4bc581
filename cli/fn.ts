/**
 * Calls the Edge Function the way an application would: supabase-js `functions.invoke`, with the
 * service role key. A manual call waits for the run and returns its summary (RunSummary).
 */
import {
  createClient,
  FunctionsFetchError,
  FunctionsHttpError,
  FunctionsRelayError,
} from "@supabase/supabase-js";
import type { RunSummary } from "../supabase/functions/_shared/summary.ts";
import { CliError, describeFunctionStatus, describeFunctionUnreachable } from "./errors.ts";

export type { RunSummary };

export const FUNCTION_NAME = "embed-queue";

export interface RunRequest {
  trigger: "manual";
  batch_size?: number;
  max_jobs?: number;
  tables?: string[];
  time_budget_ms?: number;
  dry_run?: boolean;
}

export interface FunctionTarget {
  apiUrl: string;
  key: string;
  local: boolean;
  stackName?: string;
}

export function functionUrl(apiUrl: string): string {
  return `${apiUrl.replace(/\/+$/, "")}/functions/v1/${FUNCTION_NAME}`;
}

export function createCaller(t: FunctionTarget): (body: RunRequest) => Promise<RunSummary> {
  const client = createClient(t.apiUrl, t.key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  const url = functionUrl(t.apiUrl);
  return async (body) => {
    const { data, error } = await client.functions.invoke(FUNCTION_NAME, {
      body,
      // Sent explicitly: whatever the key's format, the function checks this header.
      headers: { Authorization: `Bearer ${t.key}` },
    });
    if (error) {
      if (error instanceof FunctionsHttpError) {
        const res = error.context as Response;
        let bodyError: string | null = null;
        try {
          const j = await res.json();
          bodyError = typeof j?.error === "string" ? j.error : typeof j?.msg === "string" ? j.msg : null;
        } catch { /* not JSON */ }
        throw new CliError(describeFunctionStatus(res.status, url, bodyError, t.local));
      }
      if (error instanceof FunctionsRelayError) {
        throw new CliError(
          `Supabase's relay could not reach the function at ${url}: try again, or check the Dashboard's function logs`,
        );
      }
      if (error instanceof FunctionsFetchError) {
        throw new CliError(describeFunctionUnreachable(url, t.local, t.stackName));
      }
      throw new CliError(`the call to ${url} failed: ${(error as Error).name}`);
    }
    const s = typeof data === "string" ? safeJson(data) : data;
    if (!s || typeof s !== "object" || typeof (s as RunSummary).claimed !== "number") {
      throw new CliError(
        `the function at ${url} answered something other than a run summary: is it embed-queue?`,
      );
    }
    return s as RunSummary;
  };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
