/**
 * The WebTransport demo page of `purequic server` (`/webtransport.html`): an echo client (bidi
 * stream, uni stream, datagram) and a chat room, in plain browser JavaScript using the W3C API.
 * The certificate hash (SHA-256 of the leaf DER) is embedded so the page can pass it as
 * `serverCertificateHashes`; without one the browser's own certificate checks apply.
 */
export function webTransportDemoPage(certificateSha256Hex: string | undefined): string {
  const hash = JSON.stringify(certificateSha256Hex ?? "");
  return `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>purequic WebTransport demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem; }
  #log, #chat { border: 1px solid #ccc; height: 14rem; overflow-y: auto; padding: .5rem; font-family: ui-monospace, monospace; font-size: 13px; }
  input[type=text] { width: 60%; }
  button { margin: .2rem; }
</style>
<h1>purequic WebTransport demo</h1>
<p>WebTransport (HTTP/3, draft-02) to this purequic server. Status: <b id="status">not connected</b></p>
<h2>Echo</h2>
<p><input id="msg" type="text" value="hello purequic">
<button id="bidi">bidi stream</button><button id="uni">uni stream</button><button id="dgram">datagram</button></p>
<div id="log"></div>
<h2>Chat</h2>
<p><input id="name" type="text" value="guest" style="width:8rem"> <input id="say" type="text" placeholder="message">
<button id="send">send</button></p>
<div id="chat"></div>
<script>
const HASH = ${hash};
const enc = new TextEncoder();
const dec = new TextDecoder();
const $ = (id) => document.getElementById(id);
const line = (box, text) => { const d = document.createElement("div"); d.textContent = text; $(box).append(d); $(box).scrollTop = 1e9; };
const opts = HASH ? { serverCertificateHashes: [{ algorithm: "sha-256", value: Uint8Array.from(HASH.match(/../g).map((h) => parseInt(h, 16))) }] } : {};
const readAll = async (readable) => {
  const r = readable.getReader(); const parts = [];
  for (;;) { const { done, value } = await r.read(); if (done) break; parts.push(dec.decode(value, { stream: true })); }
  return parts.join("") + dec.decode();
};
async function open(path) {
  const wt = new WebTransport(new URL(path, location.href.replace(/^http:/, "https:")).href, opts);
  await wt.ready;
  return wt;
}
window.demo = { echoed: [], chat: [] };
(async () => {
  try {
    const echo = await open("/webtransport/echo");
    $("status").textContent = "connected";
    echo.closed.then((i) => { $("status").textContent = "closed " + JSON.stringify(i); }, (e) => { $("status").textContent = "failed: " + e.message; });
    const done = (how, text) => { line("log", how + " echo: " + text); window.demo.echoed.push(how + ":" + text); };
    (async () => {
      const r = echo.incomingUnidirectionalStreams.getReader();
      for (;;) { const { done: end, value } = await r.read(); if (end) break; done("uni", await readAll(value)); }
    })();
    (async () => {
      const r = echo.datagrams.readable.getReader();
      for (;;) { const { done: end, value } = await r.read(); if (end) break; done("datagram", dec.decode(value)); }
    })();
    $("bidi").onclick = async () => {
      const s = await echo.createBidirectionalStream();
      const w = s.writable.getWriter(); await w.write(enc.encode($("msg").value)); await w.close();
      done("bidi", await readAll(s.readable));
    };
    $("uni").onclick = async () => {
      const w = (await echo.createUnidirectionalStream()).getWriter(); await w.write(enc.encode($("msg").value)); await w.close();
    };
    $("dgram").onclick = async () => {
      const w = echo.datagrams.writable.getWriter(); await w.write(enc.encode($("msg").value)); w.releaseLock();
    };
    const chat = await open("/webtransport/chat");
    (async () => {
      const r = chat.incomingUnidirectionalStreams.getReader();
      for (;;) { const { done: end, value } = await r.read(); if (end) break; const m = await readAll(value); line("chat", m); window.demo.chat.push(m); }
    })();
    $("send").onclick = async () => {
      const w = (await chat.createUnidirectionalStream()).getWriter();
      await w.write(enc.encode($("name").value + ": " + $("say").value)); await w.close(); $("say").value = "";
    };
    $("say").onkeydown = (e) => { if (e.key === "Enter") $("send").click(); };
    window.demo.ready = true;
  } catch (e) {
    $("status").textContent = "failed: " + e.message;
    window.demo.error = String(e.message || e);
  }
})();
</script>
</html>
`;
}
