/**
 * RFC 9204 Appendix B: the encoding and decoding examples, byte for byte, through the decoder and
 * through the encoder (with Huffman coding off, as in the RFC, and the RFC's explicit speculative
 * insert and Duplicate).
 */
import { describe, expect, it } from "vitest";
import { QpackDecoder } from "./decoder.ts";
import { QpackEncoder } from "./encoder.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// B.1
const S0 = "0000 510b 2f69 6e64 6578 2e68 746d 6c";
// B.2
const ENC_B2 = "3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468";
const S4 = "0381 10 11";
// B.3
const ENC_B3 = "4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565";
// B.4
const ENC_B4 = "02";
const S8 = "0500 80 c1 81";
// B.5
const ENC_B5 = "810d 6375 7374 6f6d 2d76 616c 7565 32";

function tableOf(t: {
  dropped: number;
  insertCount: number;
  name(a: number): string;
  value(a: number): string;
}) {
  const rows: [number, string, string][] = [];
  for (let a = t.dropped; a < t.insertCount; a++) rows.push([a, t.name(a), t.value(a)]);
  return rows;
}

describe("RFC 9204 Appendix B through the decoder", () => {
  it("B.1–B.5: decodes the field sections, builds the table, emits the decoder instructions", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });

    // B.1 Literal Field Line with Name Reference
    expect(dec.decodeFieldSection(0, hex(S0))).toEqual({
      kind: "done",
      fields: [[":path", "/index.html"]],
      requiredInsertCount: 0,
      size: 5 + 11 + 32,
    });
    expect(toHex(dec.takeDecoderStreamData())).toBe("");

    // B.2 Dynamic Table
    expect(dec.receiveEncoderStream(hex(ENC_B2))).toEqual([]);
    expect(dec.table.capacity).toBe(220);
    expect(dec.table.size).toBe(106);
    const r4 = dec.decodeFieldSection(4, hex(S4));
    expect(r4.kind === "done" && r4.fields).toEqual([
      [":authority", "www.example.com"],
      [":path", "/sample/path"],
    ]);
    expect(r4.requiredInsertCount).toBe(2);
    expect(toHex(dec.takeDecoderStreamData())).toBe("84"); // Section Acknowledgment (stream=4)

    // B.3 Speculative Insert
    dec.receiveEncoderStream(hex(ENC_B3));
    expect(dec.table.size).toBe(160);
    expect(toHex(dec.takeDecoderStreamData())).toBe("01"); // Insert Count Increment (1)

    // B.4 Duplicate Instruction, Stream Cancellation: the encoder stream data is delayed, the
    // section blocks, the stream is cancelled.
    expect(dec.decodeFieldSection(8, hex(S8))).toEqual({ kind: "blocked", requiredInsertCount: 4 });
    expect(dec.blockedStreamCount).toBe(1);
    dec.cancelStream(8);
    expect(dec.blockedStreamCount).toBe(0);
    expect(toHex(dec.takeDecoderStreamData())).toBe("48"); // Stream Cancellation (Stream=8)
    expect(dec.receiveEncoderStream(hex(ENC_B4))).toEqual([]);
    expect(dec.table.size).toBe(217);
    expect(tableOf(dec.table)[3]).toEqual([3, ":authority", "www.example.com"]);

    // B.5 Dynamic Table Insert, Eviction
    dec.receiveEncoderStream(hex(ENC_B5));
    expect(dec.table.size).toBe(215);
    expect(tableOf(dec.table)).toEqual([
      [1, ":path", "/sample/path"],
      [2, "custom-key", "custom-value"],
      [3, ":authority", "www.example.com"],
      [4, "custom-key", "custom-value2"],
    ]);
  });

  it("B.4 variant: the blocked section unblocks when the Duplicate arrives", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
    dec.receiveEncoderStream(hex(ENC_B2));
    dec.decodeFieldSection(4, hex(S4));
    dec.receiveEncoderStream(hex(ENC_B3));
    expect(toHex(dec.takeDecoderStreamData())).toBe("8401");
    expect(dec.decodeFieldSection(8, hex(S8)).kind).toBe("blocked");
    expect(dec.receiveEncoderStream(hex(ENC_B4))).toEqual([8]);
    const r = dec.decodeFieldSection(8, hex(S8));
    expect(r).toEqual({
      kind: "done",
      fields: [
        [":authority", "www.example.com"],
        [":path", "/"],
        ["custom-key", "custom-value"],
      ],
      requiredInsertCount: 4,
      size: 57 + 38 + 54,
    });
    expect(toHex(dec.takeDecoderStreamData())).toBe("88");
  });

  it("decodes the encoder stream delivered one byte at a time", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220 });
    const all = hex(ENC_B2 + ENC_B3 + ENC_B4 + ENC_B5);
    for (let i = 0; i < all.length; i++) dec.receiveEncoderStream(all.subarray(i, i + 1));
    expect(dec.table.size).toBe(215);
    expect(dec.table.insertCount).toBe(5);
    expect(toHex(dec.takeDecoderStreamData())).toBe("05");
  });
});

describe("RFC 9204 Appendix B through the encoder", () => {
  it("B.1–B.5: produces the RFC's field sections and encoder instructions", () => {
    const enc = new QpackEncoder({ huffman: false });

    // B.1: before the peer's SETTINGS, no dynamic table.
    expect(toHex(enc.encodeFieldSection(0, [[":path", "/index.html"]]))).toBe(toHex(hex(S0)));
    expect(toHex(enc.takeEncoderStreamData())).toBe("");

    // B.2
    enc.applyPeerSettings({ maxTableCapacity: 220, blockedStreams: 1 });
    const s4 = enc.encodeFieldSection(4, [
      [":authority", "www.example.com"],
      [":path", "/sample/path"],
    ]);
    expect(toHex(s4)).toBe(toHex(hex(S4)));
    expect(toHex(enc.takeEncoderStreamData())).toBe(toHex(hex(ENC_B2)));
    expect(enc.table.size).toBe(106);
    expect([enc.table.refCount(0), enc.table.refCount(1)]).toEqual([1, 1]);
    expect(enc.blockingStreamCount).toBe(1);
    enc.receiveDecoderStream(hex("84"));
    expect([enc.table.refCount(0), enc.table.refCount(1)]).toEqual([0, 0]);
    expect(enc.knownReceivedCount).toBe(2);
    expect(enc.blockingStreamCount).toBe(0);

    // B.3
    expect(enc.insert("custom-key", "custom-value")).toBe(2);
    expect(toHex(enc.takeEncoderStreamData())).toBe(toHex(hex(ENC_B3)));
    expect(enc.table.size).toBe(160);
    enc.receiveDecoderStream(hex("01"));
    expect(enc.knownReceivedCount).toBe(3);

    // B.4
    expect(enc.duplicate(0)).toBe(3);
    expect(toHex(enc.takeEncoderStreamData())).toBe(toHex(hex(ENC_B4)));
    const s8 = enc.encodeFieldSection(8, [
      [":authority", "www.example.com"],
      [":path", "/"],
      ["custom-key", "custom-value"],
    ]);
    expect(toHex(s8)).toBe(toHex(hex(S8)));
    expect(toHex(enc.takeEncoderStreamData())).toBe("");
    expect(enc.table.size).toBe(217);
    expect([0, 1, 2, 3].map((a) => enc.table.refCount(a))).toEqual([0, 0, 1, 1]);
    enc.receiveDecoderStream(hex("48"));
    expect([0, 1, 2, 3].map((a) => enc.table.refCount(a))).toEqual([0, 0, 0, 0]);
    expect(enc.unacknowledgedSectionCount).toBe(0);

    // B.5
    expect(enc.insert("custom-key", "custom-value2")).toBe(4);
    expect(toHex(enc.takeEncoderStreamData())).toBe(toHex(hex(ENC_B5)));
    expect(enc.table.size).toBe(215);
    expect(tableOf(enc.table).map((r) => r[0])).toEqual([1, 2, 3, 4]);
  });
});
