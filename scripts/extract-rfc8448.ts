/**
 * Extracts the hex values of the RFC 8448 TLS 1.3 traces into JSON test data:
 *   npx tsx scripts/extract-rfc8448.ts ../shared/specs/rfc8448-tls13-traces.txt > src/quic/tls/testdata/rfc8448.json
 * Output: { sections: { "3": [ { actor, step, values: { "<name>": "<hex>" } } ] } }, steps in
 * trace order. Page headers/footers are skipped; a value's hex continues on indented lines.
 */
import { readFileSync } from "node:fs";

interface Step {
  actor: string;
  step: string;
  values: Record<string, string>;
}

const text = readFileSync(process.argv[2] ?? "../shared/specs/rfc8448-tls13-traces.txt", "utf8");
const lines = text.split("\n");
const sections: Record<string, Step[]> = {};
let section: string | null = null;
let step: Step | null = null;
let valueName: string | null = null;

const isPageNoise = (l: string) => /^(Thomson|RFC 8448)\s{2,}/.test(l) || l.startsWith("\f");
const hexRun = /^((?:[0-9a-f]{2}(?: |$))+)\s*$/;

for (let i = 0; i < lines.length; i++) {
  const line = lines[i].replace(/\r$/, "");
  if (isPageNoise(line)) continue;
  const heading = /^(\d+)\.\s{2}\S/.exec(line);
  if (heading) {
    section = heading[1];
    sections[section] ??= [];
    step = null;
    valueName = null;
    continue;
  }
  if (!section) continue;
  const stepMatch = /^ {3}\{(client|server)\}\s+(.*?):?\s*$/.exec(line);
  if (stepMatch) {
    let title = stepMatch[2];
    // a step title may wrap onto the next line
    while (
      !title.endsWith(":") &&
      i + 1 < lines.length &&
      /^ {6}\S/.test(lines[i + 1]) &&
      !/\(\d+ octets\)|:\s/.test(lines[i + 1])
    ) {
      title = `${title} ${lines[++i].trim()}`;
    }
    step = { actor: stepMatch[1], step: title.replace(/:$/, ""), values: {} };
    sections[section].push(step);
    valueName = null;
    continue;
  }
  if (!step) continue;
  const value = /^ {6}(\S[^:]*?)(?: \(\d+ octets\))?:\s+(.*)$/.exec(line);
  if (value && hexRun.test(`${value[2].trim()} `.trimEnd())) {
    valueName = value[1];
    step.values[valueName] = value[2].replace(/\s+/g, "");
    continue;
  }
  if (value) {
    valueName = null; // a non-hex value such as "0 (all zero octets)"
    step.values[value[1]] = value[2].trim();
    continue;
  }
  const cont = /^ {9}((?:[0-9a-f]{2} ?)+)\s*$/.exec(line);
  if (cont && valueName) {
    step.values[valueName] += cont[1].replace(/\s+/g, "");
    continue;
  }
  if (line.trim() !== "") valueName = null;
}

process.stdout.write(`${JSON.stringify({ source: "RFC 8448", sections }, null, 1)}\n`);
