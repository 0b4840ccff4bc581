/**
 * Deterministic text for the benchmarks: short session titles and multi-paragraph summaries,
 * built from a fixed vocabulary with a seeded PRNG, so every run embeds the same texts.
 *
 *   titles:    3 to 14 words, sometimes "topic: detail", sometimes a number or a date
 *   summaries: 1 to 4 paragraphs of 2 to 5 sentences of 8 to 24 words, with a few figures,
 *              names and non-ASCII words, the shape of the guide's own summaries
 *
 * `unique` appends a short row tag so that no two texts are equal (the chaos run needs each
 * text to belong to one row to account for tokens); otherwise duplicates are left to chance,
 * which with this vocabulary is almost never.
 */

import { mulberry32 as prng } from "../../tests/lib/prng.ts";

export { prng };

const NOUNS = (
  "roadmap review incident deploy release migration schema index query cache queue worker " +
  "budget forecast contract invoice customer renewal onboarding funnel pricing experiment " +
  "retrospective sprint standup interview debrief hiring plan offsite agenda workshop " +
  "certificate cluster ingress gateway latency throughput outage alert dashboard metric " +
  "kitchen renovation garden bicycle marathon training recipe sourdough starter hydration " +
  "reading chapter notes essay draft outline proposal feedback mentoring session pairing " +
  "search relevance ranking embedding vector model prompt dataset evaluation baseline " +
  "accessibility audit contrast focus screen reader signup flow checkout payment refund " +
  "vendor questionnaire security policy compliance audit backup restore replica failover " +
  "network firewall router subnet printer laptop keyboard monitor battery charger " +
  "trip itinerary flight hotel visa passport museum concert festival dinner birthday " +
  "physiotherapy knee shoulder appointment prescription insurance claim mortgage tax return"
).split(" ");

const VERBS = (
  "review plan fix migrate ship measure compare decide draft discuss prioritize estimate " +
  "debug profile refactor document test deploy rollback schedule cancel renew negotiate " +
  "summarize investigate reproduce escalate monitor tune replace upgrade archive share"
).split(" ");

const ADJECTIVES = (
  "weekly quarterly urgent slow flaky new legacy shared public private annual monthly " +
  "first final rough detailed quick careful expensive cheap noisy stable broken healthy " +
  "internal external remote local mobile offline async manual automatic partial full"
).split(" ");

const NAMES = (
  "Priya Tomás Léa Northwind Acme Jürgen Chloé Amara Kenji Søren Zoë Mateo Aiko Rafael " +
  "Fatima Olusegun Ingrid Dmitri Noor Beatriz"
).split(" ");

const FILLER = (
  "the a an of to for with on in after before during because so and but or then while " +
  "we they it this that these our their its about around within without across"
).split(" ");

const TITLE_PREFIX = [
  "Weekly 1:1 with",
  "Incident review:",
  "Design critique:",
  "Customer call:",
  "Planning",
  "Notes on",
  "Reading group:",
  "Follow-up:",
  "Brainstorm:",
  "Q3",
  "Draft:",
  "Debugging",
];

function pick<T>(r: () => number, xs: T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

function word(r: () => number): string {
  const x = r();
  if (x < 0.42) return pick(r, NOUNS);
  if (x < 0.62) return pick(r, FILLER);
  if (x < 0.77) return pick(r, VERBS);
  if (x < 0.9) return pick(r, ADJECTIVES);
  if (x < 0.95) return pick(r, NAMES);
  const y = r();
  if (y < 0.4) return String(int(r, 2, 999));
  if (y < 0.7) return `${int(r, 1, 99)}%`;
  return `${int(r, 1, 28)}/${int(r, 1, 12)}`;
}

export function title(r: () => number): string {
  const n = int(r, 3, 14);
  const words: string[] = [];
  if (r() < 0.35) words.push(pick(r, TITLE_PREFIX));
  while (words.length < n) words.push(word(r));
  let s = words.join(" ");
  if (r() < 0.25) {
    const cut = s.indexOf(" ", Math.floor(s.length / 2));
    if (cut > 0) s = `${s.slice(0, cut)}:${s.slice(cut)}`;
  }
  return s[0].toUpperCase() + s.slice(1);
}

function sentence(r: () => number): string {
  const n = int(r, 8, 24);
  const words = Array.from({ length: n }, () => word(r));
  if (n > 12 && r() < 0.4) words[int(r, 4, n - 4)] += ",";
  const s = words.join(" ");
  return s[0].toUpperCase() + s.slice(1) + (r() < 0.9 ? "." : "?");
}

export function summary(r: () => number): string {
  const paragraphs = int(r, 1, 4);
  const out: string[] = [];
  for (let p = 0; p < paragraphs; p++) {
    const sentences = int(r, 2, 5);
    out.push(Array.from({ length: sentences }, () => sentence(r)).join(" "));
  }
  return out.join("\n\n");
}

export interface Row {
  table: "sessions" | "summaries";
  text: string;
}

/**
 * `n` rows: a share `summaryShare` of them summaries, the rest titles, interleaved at random.
 * The same (n, seed, summaryShare, unique) gives the same rows.
 */
export function rows(
  n: number,
  opts: { seed?: number; summaryShare?: number; unique?: string } = {},
): Row[] {
  const r = prng(opts.seed ?? 20261124);
  const share = opts.summaryShare ?? 0.4;
  const out: Row[] = [];
  for (let i = 0; i < n; i++) {
    const isSummary = r() < share;
    let text = isSummary ? summary(r) : title(r);
    if (opts.unique !== undefined) text += ` [${opts.unique}${i}]`;
    out.push({ table: isSummary ? "summaries" : "sessions", text });
  }
  return out;
}

/** A different text for the same row (the chaos run's edits). */
export function edited(row: Row, r: () => number, tag: string): string {
  return (row.table === "summaries" ? summary(r) : title(r)) + ` [${tag}]`;
}
