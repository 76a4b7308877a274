/**
 * Extensible priorities (RFC 9218): the `priority` header field value and the PRIORITY_UPDATE
 * frame's Priority Field Value, both a Structured Field Dictionary (RFC 8941 §3.2) carrying
 * urgency `u` (Integer 0..7, default 3) and incremental `i` (Boolean, default false).
 *
 * Parsing follows RFC 8941 §4.2 (Dictionary, with Items, Inner Lists and Parameters) closely
 * enough to reject what a conforming parser rejects; then RFC 9218 §4: "unknown priority
 * parameters, priority parameters with out-of-range values, or values of unexpected types MUST be
 * ignored". A value that does not parse as a Dictionary is ignored as a whole (RFC 8941 §4.2:
 * parsing fails, the field is ignored), so the defaults apply. Nothing here throws on input.
 */
import { QuicUsageError } from "../quic/errors.ts";
import type { PriorityUpdateFrame } from "./frames.ts";

/** Priority parameters with every value resolved. */
export interface Priority {
  /** 0 (highest) … 7 (lowest, background); default 3 (RFC 9218 §4.1). */
  urgency: number;
  /** Response can be processed incrementally; default false (RFC 9218 §4.2). */
  incremental: boolean;
}

/** The parameters present in a field value (absent ones are not set). */
export interface PriorityParameters {
  urgency?: number | undefined;
  incremental?: boolean | undefined;
}

/** RFC 9218 §4.1, §4.2 defaults. */
export const DEFAULT_PRIORITY: Readonly<Priority> = Object.freeze({ urgency: 3, incremental: false });

// ---------------------------------------------------------------------------------------------
// Structured Field Dictionary parsing (RFC 8941 §4.2). Only the shape of the values matters here:
// a bare item is reduced to its type and, for Integers and Booleans, its value.

type BareItem =
  | { t: "integer"; v: number }
  | { t: "boolean"; v: boolean }
  | { t: "decimal" | "string" | "token" | "bytes" | "date" | "inner-list" };

class SfParser {
  pos = 0;
  constructor(readonly s: string) {}

  private peek(): string {
    return this.s[this.pos] ?? "";
  }

  private fail(): never {
    throw new SfError();
  }

  skipSP(): void {
    while (this.s[this.pos] === " ") this.pos++;
  }

  private skipOWS(): void {
    while (this.s[this.pos] === " " || this.s[this.pos] === "\t") this.pos++;
  }

  /** §4.2.2 Parsing a Dictionary. */
  dictionary(): Map<string, BareItem> {
    const dict = new Map<string, BareItem>();
    while (this.pos < this.s.length) {
      const key = this.key();
      let member: BareItem;
      if (this.peek() === "=") {
        this.pos++;
        member = this.itemOrInnerList();
      } else {
        member = { t: "boolean", v: true };
        this.parameters();
      }
      // "If dictionary already contains a key this_key ... overwrite its value."
      dict.delete(key);
      dict.set(key, member);
      this.skipOWS();
      if (this.pos >= this.s.length) return dict;
      if (this.peek() !== ",") this.fail();
      this.pos++;
      this.skipOWS();
      if (this.pos >= this.s.length) this.fail(); // trailing comma
    }
    return dict;
  }

  private itemOrInnerList(): BareItem {
    if (this.peek() === "(") {
      this.innerList();
      return { t: "inner-list" };
    }
    const item = this.bareItem();
    this.parameters();
    return item;
  }

  /** §4.2.1.2 Parsing an Inner List. */
  private innerList(): void {
    this.pos++; // "("
    for (;;) {
      this.skipSP();
      if (this.peek() === ")") {
        this.pos++;
        this.parameters();
        return;
      }
      this.bareItem();
      this.parameters();
      const c = this.peek();
      if (c !== " " && c !== ")") this.fail();
    }
  }

  /** §4.2.3.2 Parsing Parameters. */
  private parameters(): void {
    while (this.peek() === ";") {
      this.pos++;
      this.skipSP();
      this.key();
      if (this.peek() === "=") {
        this.pos++;
        this.bareItem();
      }
    }
  }

  /** §4.2.3.3 Parsing a Key. */
  private key(): string {
    const start = this.pos;
    const c = this.peek();
    if (!((c >= "a" && c <= "z") || c === "*")) this.fail();
    this.pos++;
    while (this.pos < this.s.length && /[a-z0-9_\-.*]/.test(this.s[this.pos])) this.pos++;
    return this.s.slice(start, this.pos);
  }

  /** §4.2.3.1 Parsing a Bare Item. */
  private bareItem(): BareItem {
    const c = this.peek();
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    if (c === '"') return this.string();
    if (c === ":") return this.byteSequence();
    if (c === "?") return this.boolean();
    if (c === "@") {
      // RFC 9651 §4.2.7 Date: "@" followed by an Integer.
      this.pos++;
      if (this.number().t !== "integer") this.fail();
      return { t: "date" };
    }
    if ((c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || c === "*") return this.token();
    return this.fail();
  }

  /** §4.2.4 Parsing an Integer or Decimal. */
  private number(): BareItem {
    let neg = false;
    if (this.peek() === "-") {
      neg = true;
      this.pos++;
    }
    const start = this.pos;
    if (!(this.peek() >= "0" && this.peek() <= "9")) this.fail();
    let dot = -1;
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos];
      if (ch >= "0" && ch <= "9") {
        this.pos++;
      } else if (ch === "." && dot < 0) {
        if (this.pos - start > 12) this.fail();
        dot = this.pos;
        this.pos++;
      } else {
        break;
      }
      const len = this.pos - start;
      if (dot < 0 && len > 15) this.fail();
      if (dot >= 0 && len > 16) this.fail();
    }
    const text = this.s.slice(start, this.pos);
    if (dot < 0) {
      const v = Number(text);
      return { t: "integer", v: neg ? -v : v };
    }
    const frac = this.pos - dot - 1;
    if (frac < 1 || frac > 3) this.fail();
    return { t: "decimal" };
  }

  /** §4.2.5 Parsing a String. */
  private string(): BareItem {
    this.pos++;
    for (;;) {
      if (this.pos >= this.s.length) this.fail();
      const ch = this.s[this.pos++];
      if (ch === "\\") {
        const next = this.s[this.pos++];
        if (next !== '"' && next !== "\\") this.fail();
      } else if (ch === '"') {
        return { t: "string" };
      } else {
        const code = ch.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) this.fail();
      }
    }
  }

  /** §4.2.6 Parsing a Token. */
  private token(): BareItem {
    this.pos++;
    while (this.pos < this.s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/.test(this.s[this.pos])) this.pos++;
    return { t: "token" };
  }

  /** §4.2.7 Parsing a Byte Sequence. */
  private byteSequence(): BareItem {
    this.pos++;
    const end = this.s.indexOf(":", this.pos);
    if (end < 0) this.fail();
    if (!/^[A-Za-z0-9+/=]*$/.test(this.s.slice(this.pos, end))) this.fail();
    this.pos = end + 1;
    return { t: "bytes" };
  }

  /** §4.2.8 Parsing a Boolean. */
  private boolean(): BareItem {
    this.pos++;
    const ch = this.s[this.pos++];
    if (ch === "1") return { t: "boolean", v: true };
    if (ch === "0") return { t: "boolean", v: false };
    return this.fail();
  }
}

class SfError extends Error {}

/**
 * The priority parameters present in a field value, or undefined when it is not a valid
 * Structured Field Dictionary (RFC 8941 §4.2). Several field lines (header repeated) are
 * combined with ", " first (RFC 9110 §5.3). Parameters with an unexpected type or an
 * out-of-range value are left out (RFC 9218 §4).
 */
export function parsePriorityParameters(value: string | readonly string[]): PriorityParameters | undefined {
  const text = typeof value === "string" ? value : value.join(", ");
  const p = new SfParser(text);
  let dict: Map<string, BareItem>;
  try {
    // RFC 8941 §4.2: discard leading and trailing SP, then parse the whole remaining string.
    p.skipSP();
    const inner = new SfParser(text.slice(p.pos).replace(/ +$/, ""));
    dict = inner.dictionary();
  } catch (e) {
    if (e instanceof SfError) return undefined;
    throw e;
  }
  const out: PriorityParameters = {};
  const u = dict.get("u");
  // RFC 9218 §4.1: Integer between 0 and 7 inclusive.
  if (u !== undefined && u.t === "integer" && u.v >= 0 && u.v <= 7) out.urgency = u.v;
  const i = dict.get("i");
  // RFC 9218 §4.2: Boolean.
  if (i !== undefined && i.t === "boolean") out.incremental = i.v;
  return out;
}

/**
 * The priority signalled by a `priority` field value (a request's, RFC 9218 §4: absent
 * parameters take their defaults). Undefined or unparsable input gives the defaults. Never throws.
 */
export function parsePriority(value: string | readonly string[] | undefined): Priority {
  if (value === undefined) return { ...DEFAULT_PRIORITY };
  const p = parsePriorityParameters(value) ?? {};
  return {
    urgency: p.urgency ?? DEFAULT_PRIORITY.urgency,
    incremental: p.incremental ?? DEFAULT_PRIORITY.incremental,
  };
}

/**
 * Serializes priority parameters as a Dictionary: `u=5, i`. Only parameters present are written
 * (`incremental: false` as `i=?0`); with `omitDefaults`, parameters equal to their default are
 * left out too (which may give the empty string: send no field then). QuicUsageError for an
 * urgency outside 0..7.
 */
export function serializePriority(p: PriorityParameters, opts: { omitDefaults?: boolean } = {}): string {
  const parts: string[] = [];
  if (p.urgency !== undefined) {
    if (!Number.isInteger(p.urgency) || p.urgency < 0 || p.urgency > 7) {
      throw new QuicUsageError(`urgency must be an integer in 0..7, got ${p.urgency}`);
    }
    if (!(opts.omitDefaults && p.urgency === DEFAULT_PRIORITY.urgency)) parts.push(`u=${p.urgency}`);
  }
  if (p.incremental !== undefined) {
    if (p.incremental) parts.push("i");
    else if (!opts.omitDefaults) parts.push("i=?0");
  }
  return parts.join(", ");
}

/**
 * Combines a client's priority with the parameters of a server's `priority` response field
 * (RFC 9218 §8: an absent parameter in a response means no change). One possible policy: the
 * server's values win.
 */
export function mergePriority(client: Priority, server: PriorityParameters | undefined): Priority {
  return {
    urgency: server?.urgency ?? client.urgency,
    incremental: server?.incremental ?? client.incremental,
  };
}

/**
 * A PRIORITY_UPDATE frame (RFC 9218 §7.2) for a request stream (`push` false, `elementId` the
 * stream ID) or a push (`push` true, `elementId` the push ID). Parameters equal to their defaults
 * are omitted: "Omitting a priority parameter is a signal to use its default value" (§7).
 */
export function priorityUpdateFrame(
  elementId: number,
  priority: PriorityParameters,
  push = false,
): PriorityUpdateFrame {
  return {
    kind: "priority_update",
    push,
    elementId,
    value: serializePriority(priority, { omitDefaults: true }),
  };
}

/**
 * The priority carried by a received PRIORITY_UPDATE frame: a complete set of parameters
 * (RFC 9218 §7: omitted ones take their defaults), or undefined when the Priority Field Value does
 * not parse, which RFC 9218 §7 lets the receiver treat as a connection error of type
 * H3_GENERAL_PROTOCOL_ERROR (or ignore).
 */
export function priorityFromUpdate(frame: PriorityUpdateFrame): Priority | undefined {
  const p = parsePriorityParameters(frame.value);
  if (p === undefined) return undefined;
  return {
    urgency: p.urgency ?? DEFAULT_PRIORITY.urgency,
    incremental: p.incremental ?? DEFAULT_PRIORITY.incremental,
  };
}
