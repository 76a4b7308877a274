/**
 * Frame codec throughput: encode and decode of the frames on the hot path (STREAM with 1100 bytes
 * of data, ACK with several ranges, MAX_STREAM_DATA, DATAGRAM) and of a full 1-RTT payload mix,
 * into and from preallocated buffers.
 *
 *   npm run bench:frames [-- --quick] [-- --no-write]
 */
import { ByteReader, ByteWriter } from "../src/quic/bytes.ts";
import { decodeFrame, encodeFrame, type Frame, frameSize } from "../src/quic/frames.ts";
import {
  type Bench,
  type BenchOptions,
  formatMBps,
  formatOps,
  formatRange,
  isMain,
  machineInfo,
  machineMarkdown,
  markdownTable,
  measureAll,
  parseBenchArgs,
  timingFor,
  writeBenchSection,
} from "./harness.ts";

const data = new Uint8Array(1100).fill(7);
const CASES: readonly [string, Frame[]][] = [
  ["STREAM (1100 B data)", [{ kind: "stream", streamId: 4, offset: 123_456_789, data, fin: false }]],
  [
    "ACK (4 ranges)",
    [
      {
        kind: "ack",
        largest: 100_000,
        ackDelay: 1234,
        ranges: [100_000, 99_990, 99_980, 99_970, 99_960, 99_950, 99_940, 99_900],
      },
    ],
  ],
  ["MAX_STREAM_DATA", [{ kind: "max_stream_data", streamId: 8, maximum: 16_777_216 }]],
  ["DATAGRAM (1100 B)", [{ kind: "datagram", data }]],
  [
    "1-RTT mix: ACK + MAX_DATA + STREAM",
    [
      { kind: "ack", largest: 5000, ackDelay: 100, ranges: [5000, 4990] },
      { kind: "max_data", maximum: 50_000_000 },
      { kind: "stream", streamId: 0, offset: 1_000_000, data: data.subarray(0, 1050), fin: false },
    ],
  ],
];

export const framesBench: Bench = {
  name: "frames",
  run(opts: BenchOptions): void {
    const timing = timingFor(opts);
    const machine = machineInfo();
    const buf = new Uint8Array(2048);
    const w = new ByteWriter(buf);
    const cases = CASES.flatMap(([name, frames]) => {
      const bytes = frames.reduce((n, f) => n + frameSize(f), 0);
      const encoded = new Uint8Array(bytes);
      const ew = new ByteWriter(encoded);
      for (const f of frames) encodeFrame(f, ew);
      const r = new ByteReader(encoded);
      return [
        {
          name,
          op: "encode",
          bytes,
          fn: () => {
            w.pos = 0;
            for (const f of frames) encodeFrame(f, w);
          },
        },
        {
          name,
          op: "decode",
          bytes,
          fn: () => {
            r.pos = 0;
            while (!r.done) decodeFrame(r);
          },
        },
      ];
    });
    console.log(
      `frames: ${cases.length} cases, ${timing.runs} interleaved runs × ${timing.runMs} ms${opts.quick ? " (--quick)" : ""}`,
    );
    const results = measureAll(cases, timing);
    const text = markdownTable(
      ["frames", "operation", "bytes", "ops/s (median)", "min–max ops/s", "MB/s"],
      cases.map((c, i) => [
        c.name,
        c.op,
        String(c.bytes),
        formatOps(results[i].median),
        formatRange(results[i]),
        formatMBps(results[i].median, c.bytes),
      ]),
      ["left", "left", "right", "right", "right", "right"],
    );
    console.log(`\n${text}\n`);
    if (opts.write) {
      const notes =
        "Encode writes into a preallocated buffer (`ByteWriter`); decode reads from one (`ByteReader`), " +
        "data fields are views (no copy). MB/s counts encoded bytes.";
      writeBenchSection(
        "frames",
        `${machineMarkdown(timing, machine)}\n\n${notes}\n\n${text}`,
        "Frame codec (`npm run bench:frames`)",
      );
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

if (isMain(import.meta.url)) await framesBench.run(parseBenchArgs());
