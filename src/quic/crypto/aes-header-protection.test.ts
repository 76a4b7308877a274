import { createCipheriv } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AesHeaderProtection } from "./aes-header-protection.ts";

const h = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** The reference: the first 5 bytes of one AES-ECB block from OpenSSL. */
function opensslMask(key: Uint8Array, sample: Uint8Array): string {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return hex(c.update(sample.subarray(0, 16)).subarray(0, 5));
}

describe("AesHeaderProtection", () => {
  it("produces the RFC 9001 §A.2 client Initial mask", () => {
    const hp = new AesHeaderProtection(h("9f50449e04a0e810283a1e9933adedd2"));
    const out = new Uint8Array(5);
    hp.mask(h("d1b1c98dd7689fb8ec11d242b123dc9b"), out);
    expect(hex(out)).toBe("437b9aec36");
  });

  it("produces the RFC 9001 §A.3 server Initial mask", () => {
    const hp = new AesHeaderProtection(h("c206b8d9b9f0f37644430b490eeaa314"));
    const out = new Uint8Array(5);
    hp.mask(h("2cd0991cd25b0aac406a5816b6394100"), out);
    expect(hex(out)).toBe("2ec0d8356a");
  });

  for (const keyLength of [16, 32]) {
    it(`matches OpenSSL AES-${keyLength * 8}-ECB for random keys and samples`, () => {
      const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
      fc.assert(
        fc.property(bytes(keyLength), fc.array(bytes(16), { minLength: 1, maxLength: 8 }), (key, samples) => {
          const hp = new AesHeaderProtection(key);
          const out = new Uint8Array(5);
          for (const s of samples) {
            hp.mask(s, out);
            expect(hex(out)).toBe(opensslMask(key, s));
          }
        }),
        { numRuns: 200 },
      );
    });
  }

  it("uses only the first 16 bytes of a longer sample and touches only out[0..5)", () => {
    const key = h("9f50449e04a0e810283a1e9933adedd2");
    const sample = h("d1b1c98dd7689fb8ec11d242b123dc9bffee");
    const out = new Uint8Array(8).fill(0xaa);
    new AesHeaderProtection(key).mask(sample, out);
    expect(hex(out)).toBe("437b9aec36aaaaaa");
  });

  it("rejects bad key lengths and short samples with QuicUsageError", () => {
    expect(() => new AesHeaderProtection(new Uint8Array(24))).toThrow(QuicUsageError);
    expect(() => new AesHeaderProtection(new Uint8Array(15))).toThrow(QuicUsageError);
    const hp = new AesHeaderProtection(new Uint8Array(16));
    expect(() => hp.mask(new Uint8Array(15), new Uint8Array(5))).toThrow(QuicUsageError);
  });
});
