/**
 * The browser side of the WebTransport interop checks (interop/webtransport.ts): plain
 * JavaScript evaluated in Chromium's page as a string (no DOM types here). It uses only the W3C
 * WebTransport API, so the same code runs against purequic's W3C-shaped Node client.
 *
 * `runWebTransportChecks(base, hashHex)` opens `${base}/webtransport/echo` (with
 * serverCertificateHashes when `hashHex` is given) and runs: bidi echo, uni echo (back on a new
 * uni stream), datagram echo, 10 MB over one stream (SHA-256 compared), 100 concurrent streams,
 * a stream reset code round trip (42), the page's close (code 7, "bye from the page"); then opens `${base}/webtransport/close-me`,
 * whose server closes it with code 4000 and "closed by purequic". Returns
 * `{ [check]: { ok, detail } }`.
 */
export const WEBTRANSPORT_PAGE_SCRIPT = `
window.runWebTransportChecks = async (base, hashHex) => {
  const results = {};
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const opts = hashHex
    ? { serverCertificateHashes: [{ algorithm: "sha-256", value: Uint8Array.from(hashHex.match(/../g).map((h) => parseInt(h, 16))) }] }
    : {};
  const timed = (p, ms, what) =>
    Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(what + " timed out after " + ms + " ms")), ms))]);
  const readAll = async (readable) => {
    const r = readable.getReader();
    const chunks = [];
    let n = 0;
    for (;;) {
      const { done, value } = await r.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    return out;
  };
  const hex = async (b) =>
    Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)), (x) => x.toString(16).padStart(2, "0")).join("");
  const run = async (name, fn) => {
    const t0 = performance.now();
    try {
      results[name] = { ok: true, detail: String(await fn()), ms: Math.round(performance.now() - t0) };
    } catch (e) {
      results[name] = { ok: false, detail: String((e && e.message) || e), ms: Math.round(performance.now() - t0) };
    }
  };

  const wt = new WebTransport(base + "/webtransport/echo", opts);
  wt.closed.catch(() => {});
  await run("session established", async () => {
    await timed(wt.ready, 15000, "ready");
    return "ready";
  });
  if (!results["session established"].ok) return results;

  await run("bidi stream echo", async () => {
    const s = await wt.createBidirectionalStream();
    const w = s.writable.getWriter();
    await w.write(enc.encode("hello "));
    await w.write(enc.encode("bidi"));
    await w.close();
    const got = dec.decode(await timed(readAll(s.readable), 10000, "bidi echo"));
    if (got !== "hello bidi") throw new Error("got " + JSON.stringify(got));
    return got;
  });

  await run("uni streams both ways", async () => {
    const w = (await wt.createUnidirectionalStream()).getWriter();
    await w.write(enc.encode("hello uni"));
    await w.close();
    const reader = wt.incomingUnidirectionalStreams.getReader();
    const { value } = await timed(reader.read(), 10000, "incoming uni stream");
    reader.releaseLock();
    const got = dec.decode(await timed(readAll(value), 10000, "uni echo"));
    if (got !== "hello uni") throw new Error("got " + JSON.stringify(got));
    return "page→server uni, server→page uni: " + got;
  });

  await run("datagram echo", async () => {
    const writer = wt.datagrams.writable.getWriter();
    const reader = wt.datagrams.readable.getReader();
    let got = null;
    let sent = 0;
    let pending = reader.read();
    for (let i = 0; i < 20 && got === null; i++) {
      await writer.write(enc.encode("dgram " + i));
      sent++;
      const r = await Promise.race([pending, new Promise((res) => setTimeout(() => res(null), 300))]);
      if (r !== null) {
        if (r.value) got = dec.decode(r.value);
        else break;
        pending = undefined;
      }
    }
    writer.releaseLock();
    if (got === null) throw new Error("no datagram came back after " + sent);
    return JSON.stringify(got) + " echoed (" + sent + " sent, maxDatagramSize " + wt.datagrams.maxDatagramSize + ")";
  });

  await run("10 MB over one stream", async () => {
    const size = 10 * 1024 * 1024;
    const data = new Uint8Array(size);
    for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
    const s = await wt.createBidirectionalStream();
    const reading = readAll(s.readable);
    const w = s.writable.getWriter();
    for (let o = 0; o < size; o += 256 * 1024) await w.write(data.subarray(o, o + 256 * 1024));
    await w.close();
    const back = await timed(reading, 120000, "10 MB echo");
    if (back.length !== size) throw new Error("got " + back.length + " bytes back");
    const a = await hex(data);
    const b = await hex(back);
    if (a !== b) throw new Error("sha-256 mismatch");
    return size + " bytes echoed, sha-256 " + a.slice(0, 16) + "… matches";
  });

  await run("100 concurrent streams", async () => {
    const oks = await timed(
      Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const s = await wt.createBidirectionalStream();
          const w = s.writable.getWriter();
          await w.write(enc.encode("stream " + i));
          await w.close();
          return dec.decode(await readAll(s.readable)) === "stream " + i;
        }),
      ),
      60000,
      "100 streams",
    );
    const bad = oks.filter((x) => !x).length;
    if (bad > 0) throw new Error(bad + " of 100 streams echoed wrong data");
    return "100/100 echoed";
  });

  await run("stream reset codes", async () => {
    // The page resets its sending side with 42; the echo passes the code it received back in its
    // own reset. Both directions go through the draft's mapping into HTTP/3 codes.
    const s = await wt.createBidirectionalStream();
    const w = s.writable.getWriter();
    const r = s.readable.getReader();
    await w.write(enc.encode("x"));
    await timed(r.read(), 10000, "first echo");
    let err;
    try {
      err = new WebTransportError("abort", { streamErrorCode: 42 }); // W3C
    } catch {
      err = new WebTransportError({ message: "abort", streamErrorCode: 42 }); // Chromium's older form
    }
    await w.abort(err);
    let code;
    try {
      await timed(r.read(), 10000, "the echo's reset");
      code = "no reset";
    } catch (e) {
      code = e.streamErrorCode ?? e.message;
    }
    if (code !== 42) throw new Error("the page saw " + code);
    return "page reset 42 → echo reset 42 → page saw streamErrorCode 42";
  });

  await run("page close", async () => {
    wt.close({ closeCode: 7, reason: "bye from the page" });
    const info = await timed(wt.closed, 10000, "closed");
    return JSON.stringify(info);
  });

  const wt2 = new WebTransport(base + "/webtransport/close-me", opts);
  wt2.closed.catch(() => {});
  await run("server close seen by the page", async () => {
    await timed(wt2.ready, 15000, "ready");
    const info = await timed(wt2.closed, 10000, "closed");
    if (info.closeCode !== 4000 || info.reason !== "closed by purequic") throw new Error("closed with " + JSON.stringify(info));
    return "closeCode " + info.closeCode + ", reason " + JSON.stringify(info.reason);
  });
  return results;
};
"installed";
`;
