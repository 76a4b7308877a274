import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { decodeFrame, encodeFrame, frameSize } from "./frames.ts";
import {
  DEFAULT_PRIORITY,
  mergePriority,
  parsePriority,
  parsePriorityParameters,
  priorityFromUpdate,
  priorityUpdateFrame,
  serializePriority,
} from "./priority.ts";

describe("priority header (RFC 9218 §4, §5)", () => {
  it("parses the RFC 9218 examples", () => {
    // §4.1: a CSS file with urgency 0.
    expect(parsePriority("u=0")).toEqual({ urgency: 0, incremental: false });
    // §4.2: a JPEG with urgency 5, incremental.
    expect(parsePriority("u=5, i")).toEqual({ urgency: 5, incremental: true });
    // §8: the origin's response "u=1" changes only the urgency.
    const client = parsePriority("u=5, i");
    const server = parsePriorityParameters("u=1");
    expect(server).toEqual({ urgency: 1 });
    expect(mergePriority(client, server)).toEqual({ urgency: 1, incremental: true });
  });

  it("applies the defaults: urgency 3, not incremental", () => {
    expect(DEFAULT_PRIORITY).toEqual({ urgency: 3, incremental: false });
    expect(parsePriority(undefined)).toEqual({ urgency: 3, incremental: false });
    expect(parsePriority("")).toEqual({ urgency: 3, incremental: false });
    expect(parsePriority("i")).toEqual({ urgency: 3, incremental: true });
    expect(parsePriority("u=7")).toEqual({ urgency: 7, incremental: false });
  });

  const cases: [string, { urgency?: number; incremental?: boolean } | undefined][] = [
    ["u=2", { urgency: 2 }],
    ["i=?1", { incremental: true }],
    ["i=?0", { incremental: false }],
    ["i", { incremental: true }],
    ["u=1,i", { urgency: 1, incremental: true }],
    ["u=1 ,\ti", { urgency: 1, incremental: true }],
    ["  u=1, i  ", { urgency: 1, incremental: true }],
    ["u=1, u=6", { urgency: 6 }], // last one wins (RFC 8941 §4.2.2)
    ["u=2;foo=bar, i;x", { urgency: 2, incremental: true }], // parameters ignored
    ['x=abc, u=4, y=?1, z=(1 2), w=:YWJj:, v="s\\"t", t=1.5', { urgency: 4 }], // unknown ignored
    // Out-of-range values and unexpected types are ignored (§4).
    ["u=8", {}],
    ["u=-1", {}],
    ["u=3.5", {}],
    ['u="1"', {}],
    ["u=?1", {}],
    ["u=(1)", {}],
    ["u", {}], // Boolean true
    ["i=1", {}],
    ["i=?1;a=1", { incremental: true }],
    ['i="?1"', {}],
    // Not a Dictionary: the whole field is ignored.
    ["u=1,", undefined],
    ["U=1", undefined],
    ["u=1;", undefined],
    ["u==1", undefined],
    ["u=1 i", undefined],
    ["u=1\ti", undefined],
    [",u=1", undefined],
    ["u=1234567890123456", undefined], // 16 digits
    ["u=1.2345", undefined],
    ["u=1.", undefined],
    ['u="unterminated', undefined],
    ["u=:not base64!:", undefined],
    ["u=é", undefined],
    ["i=?2", undefined],
    ["u=(1 2", undefined],
    ["\tu=1", undefined],
  ];

  it("handles valid, odd and invalid field values without throwing", () => {
    for (const [text, want] of cases) {
      expect(parsePriorityParameters(text), JSON.stringify(text)).toEqual(want);
      const full = parsePriority(text);
      expect(full).toEqual({ urgency: want?.urgency ?? 3, incremental: want?.incremental ?? false });
    }
  });

  it("combines repeated field lines", () => {
    expect(parsePriority(["u=1", "i"])).toEqual({ urgency: 1, incremental: true });
    expect(parsePriority(["u=1", ""])).toEqual({ urgency: 3, incremental: false }); // "u=1, " is invalid
  });

  it("never throws and stays in range on arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'ui=?01 ,;()"-.:*a\t7') })),
        (s) => {
          const p = parsePriority(s);
          expect(p.urgency).toBeGreaterThanOrEqual(0);
          expect(p.urgency).toBeLessThanOrEqual(7);
          expect(typeof p.incremental).toBe("boolean");
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("serializes and round-trips", () => {
    expect(serializePriority({ urgency: 5, incremental: true })).toBe("u=5, i");
    expect(serializePriority({ urgency: 0 })).toBe("u=0");
    expect(serializePriority({ incremental: false })).toBe("i=?0");
    expect(serializePriority({ urgency: 3, incremental: false }, { omitDefaults: true })).toBe("");
    expect(() => serializePriority({ urgency: 8 })).toThrow(QuicUsageError);
    expect(() => serializePriority({ urgency: 1.5 })).toThrow(QuicUsageError);
    fc.assert(
      fc.property(
        fc.record(
          { urgency: fc.integer({ min: 0, max: 7 }), incremental: fc.boolean() },
          { requiredKeys: [] },
        ),
        (p) => {
          expect(parsePriorityParameters(serializePriority(p))).toEqual(p);
        },
      ),
    );
  });
});

describe("PRIORITY_UPDATE (RFC 9218 §7.2)", () => {
  it("builds, encodes and reads back frames", () => {
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.boolean(),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        (elementId, push, urgency, incremental) => {
          const f = priorityUpdateFrame(elementId, { urgency, incremental }, push);
          const w = new ByteWriter(new Uint8Array(frameSize(f)));
          encodeFrame(w, f);
          const back = decodeFrame(new ByteReader(w.buf));
          expect(back).toEqual(f);
          if (back.kind !== "priority_update") return;
          expect(back.push).toBe(push);
          expect(priorityFromUpdate(back)).toEqual({ urgency, incremental });
        },
      ),
    );
    expect(priorityUpdateFrame(4, { urgency: 3, incremental: false })).toEqual({
      kind: "priority_update",
      push: false,
      elementId: 4,
      value: "",
    });
  });

  it("reports an unparsable Priority Field Value as undefined", () => {
    expect(
      priorityFromUpdate({ kind: "priority_update", push: false, elementId: 0, value: "u=1," }),
    ).toBeUndefined();
    expect(
      priorityFromUpdate({ kind: "priority_update", push: false, elementId: 0, value: "\u00ff" }),
    ).toBeUndefined();
    expect(priorityFromUpdate({ kind: "priority_update", push: false, elementId: 0, value: "" })).toEqual(
      DEFAULT_PRIORITY,
    );
  });
});
