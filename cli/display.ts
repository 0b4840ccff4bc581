/**
 * The live display: one cli-progress bar per target on a terminal, or a plain line per update
 * when stdout is not a terminal (CI logs, pipes). The text of every line comes from format.ts.
 */
import cliProgress from "cli-progress";
import { type DisplayItem, itemText, progressLine } from "./format.ts";

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
    format: " {label} |{bar}| {value}/{total} | {stats}",
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: true,
    barsize: 24,
  }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, cliProgress.SingleBar>();
  let stopped = false;
  return {
    update(_elapsedMs, items) {
      if (stopped) return;
      const width = Math.max(0, ...items.map((i) => i.label.length));
      for (const i of items) {
        const payload = { label: i.label.padEnd(width), stats: itemText(i) };
        let bar = bars.get(i.label);
        if (!bar) {
          bar = multi.create(Math.max(i.total, 1), i.done, payload);
          bars.set(i.label, bar);
        }
        bar.setTotal(Math.max(i.total, 1));
        bar.update(i.done, payload);
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
