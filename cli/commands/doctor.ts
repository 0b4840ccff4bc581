/**
 * `doctor`: what needs doing on an install adopted from the guide's script: old triggers of the
 * user's that also write into embedding_queue (and the one statement that drops them), and the
 * vectors of unknown origin with the policy that applies to them. Exit 1 while old triggers remain.
 */
import { bool } from "../args.ts";
import { connect, type Ctx, withDb } from "../context.ts";
import { adoptionJson, doctorText, jsonText } from "../format.ts";

export async function doctor(ctx: Ctx): Promise<number> {
  const conn = await connect(ctx);
  const report = await withDb(conn, "doctor", (db) => db.adoption());
  const { text, problems } = doctorText(report);
  if (bool(ctx.args, "json")) console.log(jsonText({ problems, ...adoptionJson(report) }));
  else console.log(`embed-queue doctor (${conn.label})\n\n${text}`);
  return problems ? 1 : 0;
}
