/** Parses "HOST:PORT", "[v6]:PORT" or ":PORT". */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (!m) throw new Error(`expected HOST:PORT, got "${s}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port out of range in "${s}"`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}
