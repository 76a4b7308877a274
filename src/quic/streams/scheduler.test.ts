import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { StreamScheduler } from "./scheduler.ts";

/** Picks `n` times, sending `bytes` each time; returns the IDs picked. */
function run(s: StreamScheduler, n: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = s.next();
    if (id < 0) break;
    out.push(id);
    s.onSent(id, bytes);
  }
  return out;
}

describe("StreamScheduler", () => {
  it("is fair round-robin by default", () => {
    const s = new StreamScheduler({ quantum: 1000 });
    for (const id of [8, 0, 4]) {
      s.add(id);
      s.setActive(id, true);
    }
    expect(s.priorityOf(0)).toEqual({ urgency: 3, incremental: true });
    // One quantum each, in activation order, repeating.
    expect(run(s, 6, 1000)).toEqual([8, 0, 4, 8, 0, 4]);
    // Smaller sends stay on a stream until its quantum is used.
    expect(run(s, 4, 500)).toEqual([8, 8, 0, 0]);
    expect(s.next()).toBe(4);
  });

  it("serves lower urgency first", () => {
    const s = new StreamScheduler({ quantum: 100 });
    s.add(0, 5);
    s.add(4, 1);
    s.add(8, 7);
    for (const id of [0, 4, 8]) s.setActive(id, true);
    expect(run(s, 3, 100)).toEqual([4, 4, 4]);
    s.setActive(4, false);
    expect(run(s, 2, 100)).toEqual([0, 0]);
    s.setActive(0, false);
    expect(s.next()).toBe(8);
    s.setActive(8, false);
    expect(s.next()).toBe(-1);
    expect(s.activeCount).toBe(0);
  });

  it("sends non-incremental streams one at a time in stream-ID order, before incremental ones", () => {
    const s = new StreamScheduler({ quantum: 10 });
    s.add(12, 3, false);
    s.add(4, 3, false);
    s.add(8, 3, false);
    s.add(0, 3, true);
    for (const id of [12, 0, 8, 4]) s.setActive(id, true);
    // Stream 4 to completion, however much it sends.
    expect(run(s, 5, 1000)).toEqual([4, 4, 4, 4, 4]);
    s.setActive(4, false);
    expect(run(s, 2, 1000)).toEqual([8, 8]);
    s.setActive(8, false);
    s.setActive(12, false);
    expect(run(s, 2, 1000)).toEqual([0, 0]);
    // A lower ID joining takes over.
    s.add(2, 3, false);
    s.setActive(2, true);
    expect(s.next()).toBe(2);
  });

  it("re-queues a stream whose priority changes", () => {
    const s = new StreamScheduler();
    s.add(0);
    s.add(4);
    s.setActive(0, true);
    s.setActive(4, true);
    expect(s.next()).toBe(0);
    s.setPriority(4, 0, false);
    expect(s.next()).toBe(4);
    s.setPriority(4, 6, true);
    expect(s.next()).toBe(0);
    expect(s.isActive(4)).toBe(true);
    s.remove(0);
    expect(s.next()).toBe(4);
    expect(s.has(0)).toBe(false);
    expect(() => s.setActive(0, true)).toThrow(QuicUsageError);
    expect(() => s.add(4)).toThrow(QuicUsageError);
    expect(() => s.setPriority(4, 8, true)).toThrow(QuicUsageError);
  });

  it("activation is idempotent", () => {
    const s = new StreamScheduler();
    s.add(0);
    s.setActive(0, true);
    s.setActive(0, true);
    expect(s.activeCount).toBe(1);
    s.setActive(0, false);
    s.setActive(0, false);
    expect(s.activeCount).toBe(0);
    expect(s.next()).toBe(-1);
  });

  it("picks by urgency, then non-incremental lowest ID, else the incremental ring (property)", () => {
    const stream = fc.record({ urgency: fc.integer({ min: 0, max: 7 }), incremental: fc.boolean() });
    const op = fc.record({
      kind: fc.constantFrom("activate", "deactivate", "send", "reprioritize"),
      idx: fc.nat(),
      urgency: fc.integer({ min: 0, max: 7 }),
      incremental: fc.boolean(),
      bytes: fc.integer({ min: 1, max: 3000 }),
    });
    fc.assert(
      fc.property(
        fc.array(stream, { minLength: 1, maxLength: 12 }),
        fc.array(op, { maxLength: 150 }),
        (streams, ops) => {
          const s = new StreamScheduler({ quantum: 1000 });
          const prio = streams.map((p) => ({ ...p }));
          const active = new Set<number>();
          for (let i = 0; i < streams.length; i++) s.add(i * 4, streams[i].urgency, streams[i].incremental);
          for (const o of ops) {
            const i = o.idx % streams.length;
            const id = i * 4;
            if (o.kind === "activate") {
              s.setActive(id, true);
              active.add(i);
            } else if (o.kind === "deactivate") {
              s.setActive(id, false);
              active.delete(i);
            } else if (o.kind === "reprioritize") {
              s.setPriority(id, o.urgency, o.incremental);
              prio[i] = { urgency: o.urgency, incremental: o.incremental };
            } else {
              const picked = s.next();
              if (active.size === 0) {
                expect(picked).toBe(-1);
                continue;
              }
              const pi = picked / 4;
              expect(active.has(pi)).toBe(true);
              const minU = Math.min(...[...active].map((a) => prio[a].urgency));
              expect(prio[pi].urgency).toBe(minU);
              const nonInc = [...active].filter((a) => prio[a].urgency === minU && !prio[a].incremental);
              if (nonInc.length > 0) expect(pi).toBe(Math.min(...nonInc));
              else expect(prio[pi].incremental).toBe(true);
              s.onSent(picked, o.bytes);
            }
          }
          expect(s.activeCount).toBe(active.size);
        },
      ),
    );
  });

  it("shares bandwidth fairly among always-active incremental streams (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 1500 }),
        fc.integer({ min: 1, max: 2000 }),
        (n, quantum, bytes, picks) => {
          const s = new StreamScheduler({ quantum });
          for (let i = 0; i < n; i++) {
            s.add(i);
            s.setActive(i, true);
          }
          const sent = new Array<number>(n).fill(0);
          let prev = -1;
          let turns = 0;
          for (let k = 0; k < picks; k++) {
            const id = s.next();
            if (id !== prev) {
              // Turns rotate in a fixed cycle 0, 1, …, n−1.
              if (prev >= 0) expect(id).toBe((prev + 1) % n);
              turns++;
              prev = id;
            }
            sent[id] += bytes;
            s.onSent(id, bytes);
          }
          // A turn is ceil(quantum / bytes) sends: totals differ by at most one turn.
          const turn = Math.ceil(quantum / bytes) * bytes;
          expect(Math.max(...sent) - Math.min(...sent)).toBeLessThanOrEqual(turn);
          if (n > 1) expect(turns).toBeGreaterThanOrEqual(Math.floor((picks * bytes) / turn));
        },
      ),
    );
  });
});
