/**
 * Packet-protection primitives, both crypto providers × every QUIC AEAD: seal and open of a
 * 1200-byte payload with a 20-byte AAD (a full-size short-header packet), and the header
 * protection mask of one 16-byte sample.
 *
 *     npx tsx bench/crypto.ts [--quick] [--no-write]
 */

import { AEAD_KEY_LENGTH, type AeadName, type CryptoProvider } from "../src/quic/crypto/provider.ts";
import { cryptoProviders } from "../src/quic/crypto/providers.ts";
import {
  type Bench,
  type BenchCase,
  type BenchOptions,
  formatMBps,
  formatOps,
  formatRange,
  isMain,
  type Measurement,
  machineInfo,
  machineMarkdown,
  markdownTable,
  measureAll,
  parseBenchArgs,
  timingFor,
  writeBenchSection,
} from "./harness.ts";

const AEADS: readonly AeadName[] = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"];
const PAYLOAD = 1200;
const AAD = 20;
const SAMPLE = 16;

interface Row {
  readonly provider: string;
  readonly aead: AeadName;
  readonly op: string;
  readonly bytes: number;
  readonly m: Measurement;
}

/** Deterministic filler, so every run protects the same bytes. */
function filled(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 17 + 7) & 0xff;
  return b;
}

/** The three operations for one provider and AEAD, each with its own key, buffers and nonce. */
function cases(p: CryptoProvider, aead: AeadName): { case: BenchCase; row: Omit<Row, "m"> }[] {
  const key = filled(AEAD_KEY_LENGTH[aead], 1);
  const aad = filled(AAD, 3);
  const plaintext = filled(PAYLOAD, 4);
  const a = p.createAead(aead, key);

  const sealNonce = filled(12, 2);
  const sealOut = new Uint8Array(PAYLOAD + 16);
  let pn = 0;
  const seal = () => {
    // A new nonce per packet, as packet numbers give.
    sealNonce[11] = pn++;
    a.seal(sealNonce, aad, plaintext, sealOut, 0);
  };

  const openNonce = filled(12, 2);
  const sealed = new Uint8Array(PAYLOAD + 16);
  a.seal(openNonce, aad, plaintext, sealed, 0);
  const opened = new Uint8Array(PAYLOAD);
  const open = () => {
    if (a.open(openNonce, aad, sealed, opened, 0) !== PAYLOAD)
      throw new Error(`${p.name} ${aead}: open failed`);
  };

  const hp = p.createHeaderProtection(aead, filled(AEAD_KEY_LENGTH[aead], 5));
  const sample = filled(SAMPLE, 6);
  const mask = new Uint8Array(5);
  let n = 0;
  const hpMask = () => {
    sample[0] = n++;
    hp.mask(sample, mask);
  };

  const label = `${p.name} ${aead}`;
  return [
    {
      case: { name: `${label} seal`, fn: seal },
      row: { provider: p.name, aead, op: `seal ${PAYLOAD} B`, bytes: PAYLOAD },
    },
    {
      case: { name: `${label} open`, fn: open },
      row: { provider: p.name, aead, op: `open ${PAYLOAD} B`, bytes: PAYLOAD },
    },
    {
      case: { name: `${label} hp`, fn: hpMask },
      row: { provider: p.name, aead, op: "hp mask", bytes: SAMPLE },
    },
  ];
}

function table(rows: readonly Row[]): string {
  const nodeMedian = new Map<string, number>();
  for (const r of rows) if (r.provider === "node") nodeMedian.set(`${r.aead}/${r.op}`, r.m.median);
  return markdownTable(
    ["provider", "algorithm", "operation", "ops/s (median)", "min–max ops/s", "MB/s", "vs node"],
    rows.map((r) => {
      const base = nodeMedian.get(`${r.aead}/${r.op}`);
      return [
        r.provider,
        r.aead,
        r.op,
        formatOps(r.m.median),
        formatRange(r.m),
        formatMBps(r.m.median, r.bytes),
        base === undefined ? "" : `${(r.m.median / base).toFixed(2)}×`,
      ];
    }),
    ["left", "left", "left", "right", "right", "right", "right"],
  );
}

export const cryptoBench: Bench = {
  name: "crypto",
  run(opts: BenchOptions): void {
    const timing = timingFor(opts);
    const machine = machineInfo();
    console.log(
      `crypto: ${cryptoProviders.length} providers × ${AEADS.length} AEADs × 3 operations, ` +
        `${timing.runs} interleaved runs × ${timing.runMs} ms each${opts.quick ? " (--quick)" : ""}; ` +
        `about ${Math.ceil((AEADS.length * cryptoProviders.length * 3 * (timing.runs * timing.runMs + timing.warmupMs)) / 1000)} s`,
    );
    const all = cryptoProviders.flatMap((p) => AEADS.flatMap((aead) => cases(p, aead)));
    const results = measureAll(
      all.map((c) => c.case),
      timing,
    );
    const rows: Row[] = all.map((c, i) => ({ ...c.row, m: results[i] }));
    const text = table(rows);
    console.log(`\n${text}\n`);
    // MB/s counts payload bytes (plaintext for seal/open, the 16-byte sample for hp mask).
    const notes =
      `Payload ${PAYLOAD} bytes with a ${AAD}-byte AAD, one \`Aead\` / \`HeaderProtection\` object per key ` +
      `(as packet protection uses them); MB/s counts payload bytes (the ${SAMPLE}-byte sample for ` +
      "`hp mask`); `vs node` is the ratio to the node:crypto provider.";
    if (opts.write) {
      writeBenchSection(
        "crypto",
        `${machineMarkdown(timing, machine)}\n\n${notes}\n\n${text}`,
        "Crypto providers (`npm run bench:crypto`)",
      );
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

if (isMain(import.meta.url)) await cryptoBench.run(parseBenchArgs());
