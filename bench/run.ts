/**
 * Runs every benchmark (or those named on the command line) and writes their tables into
 * docs/BENCHMARKS.md.
 *
 *     npm run bench [-- [--quick] [--no-write] [name ...]]
 *
 * To add a bench: export a {@link Bench} from bench/<name>.ts (see bench/crypto.ts) and list it
 * in BENCHES below.
 */
import { cryptoBench } from "./crypto.ts";
import { datagramsBench } from "./datagrams.ts";
import { framesBench } from "./frames.ts";
import { h3Bench } from "./h3.ts";
import { handshakesBench } from "./handshakes.ts";
import { type Bench, parseBenchArgs } from "./harness.ts";
import { memoryBench } from "./memory.ts";
import { reverseBench } from "./reverse.ts";
import { streamsBench } from "./streams.ts";
import { transferBench } from "./transfer.ts";

const BENCHES: readonly Bench[] = [
  cryptoBench,
  framesBench,
  transferBench,
  reverseBench,
  handshakesBench,
  streamsBench,
  memoryBench,
  datagramsBench,
  h3Bench,
];

const opts = parseBenchArgs();
const unknown = opts.names.filter((n) => !BENCHES.some((b) => b.name === n));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(", ")}; known: ${BENCHES.map((b) => b.name).join(", ")}`);
  process.exit(2);
}
for (const bench of BENCHES) {
  if (opts.names.length > 0 && !opts.names.includes(bench.name)) continue;
  await bench.run(opts);
}
