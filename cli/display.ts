/**
 * The live display: one cli-progress bar per target on a terminal, or a plain line per update
 * when stdout is not a terminal (CI logs, pipes). The text of every line comes from format.ts.
 */
import cliProgress from "cli-progress";
import { type DisplayItem, itemText, itemTextCompact, progressLine } from "./format.ts";

export interface Display {
  /** Draws the current state. `quiet` (plain mode only): print only when something changed. */
  update(elapsedMs: number, items: DisplayItem[], quiet?: boolean): void;
  /** A line of text above the bars (or just a line). */
  note(line: string): void;
  stop(): void;
}

export function isTerminal(): boolean {
  try {
    return Deno.stdout.isTerminal();
  } catch {
    return false;
  }
}

export function createDisplay(tty = isTerminal()): Display {
  return tty ? barDisplay() : plainDisplay();
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

function plainDisplay(): Display {
  let last = "";
  return {
    update(elapsedMs, items, quiet = false) {
      const state = items.map((i) =>
        `${i.label}:${i.done}/${i.total}:${i.pending}:${i.processing}:${i.completed}:${i.failed}`
      )
        .join("|");
      if (quiet && state === last) return;
      last = state;
      console.log(progressLine(elapsedMs, items));
    },
    note(line) {
      console.log(line);
    },
    stop() {},
  };
}

function barDisplay(): Display {
  const multi = new cliProgress.MultiBar({
    format: " {label} |{bar}| {done}/{all} | {stats}",
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: true,
    barsize: 20,
  }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, cliProgress.SingleBar>();
  let stopped = false;
  return {
    update(_elapsedMs, items) {
      if (stopped) return;
      const width = Math.max(0, ...items.map((i) => i.label.length));
      const columns = terminalColumns();
      for (const i of items) {
        const long = itemText(i);
        // label, bar, counts and separators take about width + 40 columns
        const stats = width + 40 + long.length <= columns ? long : itemTextCompact(i);
        const payload = { label: i.label.padEnd(width), stats, done: i.done, all: i.total };
        // Nothing to do is a full bar, not an empty one.
        const [value, total] = i.total > 0 ? [i.done, i.total] : [1, 1];
        let bar = bars.get(i.label);
        if (!bar) {
          bar = multi.create(total, value, payload);
          bars.set(i.label, bar);
        }
        bar.setTotal(total);
        bar.update(value, payload);
      }
    },
    note(line) {
      if (stopped || bars.size === 0) console.log(line);
      else multi.log(line + "\n");
    },
    stop() {
      if (stopped) return;
      stopped = true;
      multi.stop();
    },
  };
}
