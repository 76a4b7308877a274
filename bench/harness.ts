/**
 * Shared benchmark helpers: a timing loop (median / min / max over several runs after a warm-up),
 * an aligned Markdown table writer, replacement of one marked section of docs/BENCHMARKS.md, a
 * machine description, and command-line options. Every bench in this folder uses them:
 *
 *     const opts = parseBenchArgs();                      // --quick, --no-write
 *     const m = measure(() => work(), timingFor(opts));   // ops/s: median, min, max
 *     const [a, b] = measureAll([{ name: "a", fn: fa }, { name: "b", fn: fb }], timing);  // interleaved
 *     console.log(markdownTable(headers, rows));
 *     if (opts.write) writeBenchSection("crypto", `${machineMarkdown(timingFor(opts))}\n\n${table}`);
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, loadavg, platform, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// ---------------------------------------------------------------------------------------------
// Options

export interface BenchOptions {
  /** Fewer and shorter runs (CI smoke test): the numbers are only indicative. */
  readonly quick: boolean;
  /** Write results into docs/BENCHMARKS.md (false with `--no-write`). */
  readonly write: boolean;
  /** Non-flag arguments (e.g. bench names for bench/run.ts). */
  readonly names: readonly string[];
}

export function parseBenchArgs(argv: readonly string[] = process.argv.slice(2)): BenchOptions {
  let quick = false;
  let write = true;
  const names: string[] = [];
  for (const arg of argv) {
    if (arg === "--quick") quick = true;
    else if (arg === "--no-write") write = false;
    else if (arg === "--help" || arg === "-h") {
      console.log("options: --quick (short runs, CI smoke)  --no-write (leave docs/BENCHMARKS.md alone)");
      process.exit(0);
    } else if (arg.startsWith("-")) throw new Error(`unknown option ${arg}`);
    else names.push(arg);
  }
  return { quick, write, names };
}

/** A module that can be run on its own (`tsx bench/x.ts`) and from bench/run.ts. */
export interface Bench {
  readonly name: string;
  run(opts: BenchOptions): void | Promise<void>;
}

/** True when the module with this `import.meta.url` is the script node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolve(script)).href === importMetaUrl;
}

// ---------------------------------------------------------------------------------------------
// Timing

export interface Timing {
  /** Number of measured runs; the reported figure is their median. */
  readonly runs: number;
  /** Target duration of one run, in milliseconds. */
  readonly runMs: number;
  /** Warm-up before the first run (JIT, caches), in milliseconds. */
  readonly warmupMs: number;
}

export const FULL_TIMING: Timing = { runs: 7, runMs: 400, warmupMs: 300 };
export const QUICK_TIMING: Timing = { runs: 3, runMs: 60, warmupMs: 30 };

export function timingFor(opts: BenchOptions): Timing {
  return opts.quick ? QUICK_TIMING : FULL_TIMING;
}

export interface Measurement {
  /** Median operations per second over the runs. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Operations per second of every run, in run order. */
  readonly samples: readonly number[];
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** A named operation for {@link measureAll}. */
export interface BenchCase {
  readonly name: string;
  readonly fn: () => void;
}

/** Warms `fn` up for `ms` and returns a batch size for which one batch takes ≥ 1 ms. */
function warmUp(fn: () => void, ms: number): number {
  let batch = 1;
  const end = performance.now() + ms;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    const now = performance.now();
    const slow = now - t0 >= 1;
    if (!slow && batch < 1 << 24) batch *= 2;
    if ((now >= end && slow) || now >= end + 5 * ms) return batch;
  }
}

/** One run: calls `fn` in batches for about `ms` milliseconds, returns operations per second. */
function timedRun(fn: () => void, batch: number, ms: number): number {
  let ops = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    elapsed = performance.now() - t0;
  } while (elapsed < ms);
  return (ops * 1000) / elapsed;
}

/**
 * Measures several operations in operations per second. Each is warmed up for `warmupMs` (which
 * also sizes its call batches so a batch takes ~1 ms and clock reads stay out of the figures);
 * then the runs are interleaved round-robin (run 1 of every case, then run 2, ...), so a burst of
 * load from elsewhere on the machine spreads over all cases instead of skewing one, and the
 * median of each case's `runs` runs discards it.
 */
export function measureAll(cases: readonly BenchCase[], timing: Timing): Measurement[] {
  const batches = cases.map((c) => warmUp(c.fn, timing.warmupMs));
  const samples = cases.map((): number[] => []);
  for (let r = 0; r < timing.runs; r++) {
    cases.forEach((c, i) => {
      samples[i].push(timedRun(c.fn, batches[i], timing.runMs));
    });
  }
  return samples.map((s) => ({ median: median(s), min: Math.min(...s), max: Math.max(...s), samples: s }));
}

/** {@link measureAll} for a single operation. */
export function measure(fn: () => void, timing: Timing): Measurement {
  return measureAll([{ name: "", fn }], timing)[0];
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** 1234567.8 → "1,234,568". */
export function formatInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Compact ops/s: "1,234,568" below 10M, "12.3M" above. */
export function formatOps(n: number): string {
  return n >= 1e7 ? `${(n / 1e6).toFixed(1)}M` : formatInt(n);
}

/** "min–max" of a measurement in ops/s. */
export function formatRange(m: Measurement): string {
  return `${formatOps(m.min)}–${formatOps(m.max)}`;
}

/** Megabytes (10^6 bytes) per second for `bytesPerOp` at `opsPerSec`. */
export function formatMBps(opsPerSec: number, bytesPerOp: number): string {
  const mbps = (opsPerSec * bytesPerOp) / 1e6;
  return mbps >= 100 ? mbps.toFixed(0) : mbps.toFixed(1);
}

export type Align = "left" | "right";

/**
 * A Markdown table with every column padded to its widest cell, readable as plain text too.
 * `align` defaults to left for the first column and right for the others.
 */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align?: readonly Align[],
): string {
  const cols = headers.length;
  const al = (i: number): Align => align?.[i] ?? (i === 0 ? "left" : "right");
  const width = headers.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const cell = (s: string, i: number) => (al(i) === "right" ? s.padStart(width[i]) : s.padEnd(width[i]));
  const line = (cells: readonly string[]) =>
    `| ${Array.from({ length: cols }, (_, i) => cell(cells[i] ?? "", i)).join(" | ")} |`;
  // Delimiter row in the style Biome's Markdown formatter produces (`| :--- | ---: |`), so
  // `npm run lint` stays clean on generated files.
  const rule = line(
    width.map((w, i) => (al(i) === "right" ? `${"-".repeat(w - 1)}:` : `:${"-".repeat(w - 1)}`)),
  );
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Machine

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly memoryGiB: number;
  /** 1-minute load average when the bench started (0 on Windows): other work skews the figures. */
  readonly load: number;
  readonly date: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim().replace(/\s+/g, " ") ?? "unknown",
    cores: list.length,
    node: process.version,
    platform: `${platform()}-${arch()}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    load: loadavg()[0],
    date: new Date().toISOString(),
  };
}

/** One-paragraph Markdown description of the machine and of the timing method. */
export function machineMarkdown(timing: Timing, info: MachineInfo = machineInfo()): string {
  return [
    `Measured ${info.date} on ${info.cpu} (${info.cores} logical cores, ${info.memoryGiB} GiB), ` +
      `Node ${info.node}, ${info.platform}, load average ${info.load.toFixed(2)} at start.`,
    `Each figure is the median of ${timing.runs} runs of ~${timing.runMs} ms (after a ` +
      `${timing.warmupMs} ms warm-up, runs of all cases interleaved); min–max is the spread over those runs.`,
  ].join(" ");
}

// ---------------------------------------------------------------------------------------------
// docs/BENCHMARKS.md

const HERE = dirname(fileURLToPath(import.meta.url));
export const BENCHMARKS_FILE = resolve(HERE, "../docs/BENCHMARKS.md");

const BENCHMARKS_HEADER =
  "# Benchmarks\n\nThe tables below are written by `npm run bench` (or `npm run bench:<name>`); " +
  "each one is replaced in place between its markers on every run, so do not edit them by hand.\n";

/**
 * Replaces the content between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in
 * docs/BENCHMARKS.md with `content`, leaving the rest of the file untouched. Creates the file with
 * a short header when missing, and appends the marked section (after a `## title` heading, when
 * given) when the markers are not there yet.
 */
export function writeBenchSection(
  name: string,
  content: string,
  title?: string,
  file: string = BENCHMARKS_FILE,
): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const body = `${start}\n${content.trim()}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, "utf8") : BENCHMARKS_HEADER;
  const i = text.indexOf(start);
  const j = i < 0 ? -1 : text.indexOf(end, i + start.length);
  if (i >= 0 && j >= 0) {
    text = text.slice(0, i) + body + text.slice(j + end.length);
  } else {
    if (i >= 0) throw new Error(`${file}: ${start} without ${end}`);
    const heading = title === undefined ? "" : `## ${title}\n\n`;
    text = `${text.replace(/\n*$/, "")}\n\n${heading}${body}\n`;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
