/**
 * `doctor`: what needs doing on an install adopted from the guide's script: old triggers of the
 * user's that also write into embedding_queue (and the one statement that drops them), and the
 * vectors of unknown origin with the policy that applies to them. Exit 1 while old triggers remain.
 */
import { bool } from "../args.ts";
import { connect, type Ctx, withDb } from "../context.ts";
import { adoptionJson, doctorText, jsonText, printable } from "../format.ts";

export async function doctor(ctx: Ctx): Promise<number> {
  const conn = await connect(ctx);
  const [report, invokeProblem] = await withDb(
    conn,
    "doctor",
    async (db) => [await db.adoption(), await db.invokeProblem()],
  );
  const { text, problems } = doctorText(report);
  const all = problems + (invokeProblem ? 1 : 0);
  if (bool(ctx.args, "json")) {
    console.log(
      jsonText({ problems: all, ...adoptionJson(report), warnings: invokeProblem ? [invokeProblem] : [] }),
    );
  } else {
    const warning = invokeProblem ? `\n\nwarning: ${printable(invokeProblem)}` : "";
    console.log(`embed-queue doctor (${conn.label})\n\n${text}${warning}`);
  }
  return all ? 1 : 0;
}
