/**
 * The helpers the multi-process benches (bench/handshakes.ts, memory.ts, datagrams.ts, h3.ts)
 * stand on: a role child answering calls over IPC, the statistics, the /proc CPU reader.
 */
import { afterAll, describe, expect, it } from "vitest";
import { processCpuSeconds } from "../bench/peer-servers.ts";
import { medianOf, percentile, RoleProcess, spread } from "../bench/role-process.ts";

describe("bench statistics", () => {
  it("median of odd and even counts, NaN when empty", () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
    expect(medianOf([])).toBeNaN();
  });

  it("percentile by nearest rank", () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted order
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 99)).toBeNaN();
  });

  it("spread gives the median and the min–max range", () => {
    expect(spread([5, 1, 3], String)).toEqual(["3", "1–5"]);
    expect(spread([], String)).toEqual(["–", ""]);
  });

  it("reads a process's CPU time from /proc (NaN without a pid)", () => {
    const s = processCpuSeconds(process.pid);
    if (process.platform === "linux") {
      expect(Number.isFinite(s)).toBe(true);
      expect(s).toBeGreaterThan(0);
    }
    expect(processCpuSeconds(undefined)).toBeNaN();
  });
});

describe("RoleProcess", () => {
  let child: RoleProcess | undefined;
  afterAll(() => child?.kill());

  it("runs a module in a role and answers calls, errors included", async () => {
    child = await RoleProcess.start(new URL("./bench-role-fixture.ts", import.meta.url).href, "echo", {
      n: 7,
    });
    expect(await child.call("echo", { a: [1, 2] })).toEqual({ a: [1, 2] });
    expect(await child.call("args")).toEqual({ n: 7 });
    await expect(child.call("fail")).rejects.toThrow(/asked to fail/);
    await expect(child.call("missing")).rejects.toThrow(/no handler for missing/);
    child.kill();
    await new Promise((r) => child!.child.once("exit", r));
    await expect(child.call("echo", 1)).rejects.toThrow(/exited/);
  });
});
