/**
 * Chunking, with the local provider's vectors: a summary of about 30,000 tokens whose one
 * distinctive sentence sits near its end is found by that sentence once chunked, and not
 * without chunking (its single vector embeds only the first 8,191 tokens). Everything runs in
 * one transaction that is rolled back, acting as the summary's owner.
 */
import assert from "node:assert/strict";
import { localEmbedding } from "../../supabase/functions/_shared/provider.ts";
import { countTokens, truncateToTokens } from "../../supabase/functions/_shared/tokens.ts";
import { toPgvector } from "../../supabase/functions/_shared/vectors.ts";
import { mulberry32 } from "../lib/prng.ts";
import { db, ignore } from "./helpers.ts";

const MODEL = "local-hash-v1";
const SENTENCE = "The lighthouse keeper's parrot recites Portuguese sonnets at midnight.";
const FILLER = [
  "quarterly",
  "budget",
  "review",
  "meeting",
  "agenda",
  "follow",
  "up",
  "items",
  "team",
  "shipping",
  "release",
  "planning",
  "metrics",
  "dashboard",
  "customer",
  "feedback",
  "roadmap",
  "estimate",
  "priority",
  "backlog",
  "sprint",
  "deploy",
  "staging",
  "invoice",
  "contract",
  "renewal",
  "hiring",
  "onboarding",
  "design",
  "draft",
];

function longText(): string {
  const r = mulberry32(14);
  const words: string[] = [];
  while (words.length < 29_000) words.push(FILLER[Math.floor(r() * FILLER.length)]);
  // The sentence about 1,000 words before the end: far past the 8,191-token cut.
  words.splice(words.length - 1000, 0, SENTENCE);
  return words.join(" ");
}

Deno.test({
  name: "chunking: a 30,000-token summary is found by a sentence near its end only when chunked",
  ignore,
}, async () => {
  const sql = db();
  const ROLLBACK = new Error("rollback");
  const text = longText();
  const tokens = countTokens(text);
  assert.ok(tokens >= 29_000 && tokens <= 32_000, `about 30,000 tokens (${tokens})`);
  const q = toPgvector(localEmbedding(SENTENCE, 1536));
  try {
    await sql.begin(async (tx) => {
      const user = crypto.randomUUID();
      await tx`insert into auth.users (id, email) values (${user}, ${`chunk-${user}@example.test`})`;
      const [{ id }] =
        await tx`insert into public.summaries (user_id, content) values (${user}, ${text}) returning id`;
      // The single vector, as the function makes it: the first 8,191 tokens.
      const head = truncateToTokens(text, 8191).text;
      await tx`update public.summaries set content_embedding = ${
        toPgvector(localEmbedding(head, 1536))
      }::extensions.vector where id = ${id}`;
      await tx`update public.embedding_queue set status = 'completed', model = ${MODEL}, completed_at = now()
        where table_name = 'summaries' and record_id = ${id}`;

      await tx`select embed_search.enable_chunking('summaries', 256, 32)`;
      const chunks =
        await tx`select id, content from public.summary_chunks where summary_id = ${id} order by chunk_index`;
      assert.ok(chunks.length > 100, `${chunks.length} chunks`);
      for (const c of chunks) {
        await tx`update public.summary_chunks set embedding = ${
          toPgvector(localEmbedding(c.content, 1536))
        }::extensions.vector where id = ${c.id}`;
      }
      await tx`update public.embedding_queue q set status = 'completed', model = ${MODEL}, completed_at = now()
        from public.summary_chunks c where q.table_name = 'summary_chunks' and q.record_id = c.id::text and c.summary_id = ${id}`;

      await tx`select set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${
        JSON.stringify({ sub: user, role: "authenticated" })
      }, true)`;
      // The local provider is lexical: one sentence among 256 tokens of other words scores about
      // 0.13 against its chunk, and about 0.02 against the first 8,191 tokens it is not part of.
      const THRESHOLD = 0.1;
      const chunked = await tx`select id::text, similarity, chunk_content
        from public.match_summaries_chunked(${q}::extensions.vector, 3, ${THRESHOLD}, query_model => ${MODEL})`;
      assert.equal(chunked.length, 1, JSON.stringify(chunked.map((c) => c.similarity)));
      assert.equal(chunked[0].id, id);
      assert.ok(chunked[0].chunk_content.includes(SENTENCE), "the matching chunk holds the sentence");
      const single = await tx`select id::text, similarity
        from public.match_summaries(${q}::extensions.vector, 3, ${THRESHOLD}, query_model => ${MODEL})`;
      assert.equal(single.length, 0, `without chunking it is not found: ${JSON.stringify(single)}`);
      const [{ s }] =
        await tx`select similarity as s from public.match_summaries(${q}::extensions.vector, 1, -1, query_model => ${MODEL})`;
      console.log(
        `similarity to the sentence: best chunk ${chunked[0].similarity.toFixed(3)}, single vector ${
          s.toFixed(3)
        }`,
      );
      throw ROLLBACK;
    });
  } catch (e) {
    if (e !== ROLLBACK) throw e;
  } finally {
    await sql.end();
  }
});
