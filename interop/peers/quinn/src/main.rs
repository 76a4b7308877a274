//! quinn-peer: an hq-interop (HTTP/0.9 over QUIC, ALPN "hq-interop") client and
//! server on quinn 0.9 / rustls 0.20, for purequic's interop suite.
//!
//! Server: `quinn-peer server --listen ADDR:PORT --cert PEM --key PEM --root DIR
//!          [--retry] [--chacha20] [--max-streams N] [--early-data] [-v]`
//! Client: `quinn-peer client (--insecure | --ca PEM) [--server-name NAME]
//!          [--output DIR] [--chacha20] [--timeout SECS] [--resume | --zerortt]
//!          [--version HEX] [-v] URL...`
//!
//! The server always issues session tickets; --early-data accepts 0-RTT. With --resume the client
//! fetches the first URL on a first connection, waits for its ticket, then the others on a
//! second (resumed) connection; --zerortt sends the second connection's requests in 0-RTT.`
//!
//! Protocol: per file, the client opens a bidirectional stream, writes
//! `GET /path\r\n` and FINs; the server answers with the file's bytes and FIN,
//! or resets the stream (error code 0x194) when the file does not exist.
//! SSLKEYLOGFILE is honoured on both sides (rustls::KeyLogFile).
//! The client exits 0 only if every file arrived complete, and prints one
//! `RESULT ...` line with bytes and elapsed time on stdout.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;

const ALPN: &[u8] = b"hq-interop";
/// Stream error code used to reset a request whose file is missing / unreadable.
const ERR_NOT_FOUND: u32 = 0x194;
/// Stream error code for a malformed request.
const ERR_BAD_REQUEST: u32 = 0x190;
/// Largest request we accept ("GET " + path + CRLF).
const MAX_REQUEST: usize = 8192;
/// Read size when streaming a file out.
const FILE_CHUNK: usize = 256 * 1024;

const USAGE: &str = "\
usage:
  quinn-peer server --listen ADDR:PORT --cert PEM --key PEM --root DIR
                    [--retry] [--chacha20] [--max-streams N] [--early-data] [-v]
  quinn-peer client (--insecure | --ca PEM) [--server-name NAME] [--output DIR]
                    [--chacha20] [--timeout SECS] [--resume | --zerortt]
                    [--version HEX] [-v] https://HOST:PORT/path...

  ALPN is hq-interop. SSLKEYLOGFILE=FILE writes TLS secrets (NSS key log format).
  server: --listen with port 0 picks a free port; the server prints
          'listening on ADDR:PORT' on stdout once it is ready.
  client: all URLs must name the same HOST:PORT; they are fetched concurrently
          on one connection. Without --output the bodies are counted and dropped.
          Exit 0 only if all files arrived; prints one 'RESULT ...' line.
  server: issues session tickets; --early-data accepts 0-RTT.
  client: --resume: first URL on a first connection, the others on a second one
          resumed with its ticket; --zerortt: the second one's requests in 0-RTT
          (prints 'RESUMPTION used_0rtt=0|1').
  client: --version HEX (e.g. 0x1a2a3a4a): the Version field of the first Initial; any
          version but v1 is sealed with v1's Initial keys (a reserved version probes the
          server: on its Version Negotiation the client gives up and exits 1).";

static VERBOSE: AtomicBool = AtomicBool::new(false);

macro_rules! vlog {
    ($($arg:tt)*) => {
        if VERBOSE.load(Ordering::Relaxed) {
            eprintln!("quinn-peer: {}", format!($($arg)*));
        }
    };
}

fn usage_exit(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("quinn-peer: {msg}");
    }
    eprintln!("{USAGE}");
    std::process::exit(2)
}

struct ServerArgs {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    root: PathBuf,
    retry: bool,
    chacha20: bool,
    early_data: bool,
    max_streams: u32,
}

struct ClientArgs {
    insecure: bool,
    ca: Option<PathBuf>,
    server_name: Option<String>,
    output: Option<PathBuf>,
    chacha20: bool,
    timeout: Duration,
    resume: bool,
    zerortt: bool,
    version: Option<u32>,
    urls: Vec<String>,
}

fn take_value(args: &mut std::vec::IntoIter<String>, flag: &str) -> String {
    match args.next() {
        Some(v) => v,
        None => usage_exit(&format!("{flag} needs a value")),
    }
}

fn parse_server(argv: Vec<String>) -> ServerArgs {
    let (mut listen, mut cert, mut key, mut root) = (None, None, None, None);
    let (mut retry, mut chacha20, mut max_streams) = (false, false, 100u32);
    let mut early_data = false;
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => {
                let v = take_value(&mut it, &a);
                listen = Some(
                    resolve(&v)
                        .unwrap_or_else(|e| usage_exit(&format!("--listen {v}: {e:#}"))),
                );
            }
            "--cert" => cert = Some(PathBuf::from(take_value(&mut it, &a))),
            "--key" => key = Some(PathBuf::from(take_value(&mut it, &a))),
            "--root" => root = Some(PathBuf::from(take_value(&mut it, &a))),
            "--retry" => retry = true,
            "--early-data" => early_data = true,
            "--chacha20" => chacha20 = true,
            "--max-streams" => {
                let v = take_value(&mut it, &a);
                max_streams = v
                    .parse()
                    .unwrap_or_else(|_| usage_exit(&format!("bad --max-streams {v}")));
            }
            "-v" | "--verbose" => VERBOSE.store(true, Ordering::Relaxed),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => usage_exit(&format!("server: unknown argument {a}")),
        }
    }
    ServerArgs {
        listen: listen.unwrap_or_else(|| usage_exit("server needs --listen")),
        cert: cert.unwrap_or_else(|| usage_exit("server needs --cert")),
        key: key.unwrap_or_else(|| usage_exit("server needs --key")),
        root: root.unwrap_or_else(|| usage_exit("server needs --root")),
        retry,
        chacha20,
        early_data,
        max_streams,
    }
}

fn parse_client(argv: Vec<String>) -> ClientArgs {
    let mut c = ClientArgs {
        insecure: false,
        ca: None,
        server_name: None,
        output: None,
        chacha20: false,
        timeout: Duration::from_secs(60),
        resume: false,
        zerortt: false,
        version: None,
        urls: Vec::new(),
    };
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--insecure" | "-k" => c.insecure = true,
            "--ca" => c.ca = Some(PathBuf::from(take_value(&mut it, &a))),
            "--server-name" => c.server_name = Some(take_value(&mut it, &a)),
            "--output" | "-o" => c.output = Some(PathBuf::from(take_value(&mut it, &a))),
            "--chacha20" => c.chacha20 = true,
            "--resume" => c.resume = true,
            "--zerortt" => c.zerortt = true,
            "--version" => {
                let v = take_value(&mut it, &a);
                let hex = v.trim_start_matches("0x");
                let n = u32::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| usage_exit(&format!("bad --version {v}")));
                c.version = Some(n);
            }
            "--timeout" => {
                let v = take_value(&mut it, &a);
                let secs: f64 = v
                    .parse()
                    .unwrap_or_else(|_| usage_exit(&format!("bad --timeout {v}")));
                c.timeout = Duration::from_secs_f64(secs);
            }
            "-v" | "--verbose" => VERBOSE.store(true, Ordering::Relaxed),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ if a.starts_with("https://") => c.urls.push(a),
            _ => usage_exit(&format!("client: unknown argument {a}")),
        }
    }
    if c.urls.is_empty() {
        usage_exit("client needs at least one https:// URL");
    }
    if c.insecure == c.ca.is_some() {
        usage_exit("client needs exactly one of --insecure and --ca PEM");
    }
    if (c.resume || c.zerortt) && c.urls.len() < 2 {
        usage_exit("--resume and --zerortt need at least 2 URLs");
    }
    c
}

/// rustls' in-memory session cache, counting the session tickets stored (keys "session...").
struct TicketStore {
    inner: Arc<dyn rustls::client::StoresClientSessions>,
    tickets: std::sync::atomic::AtomicUsize,
}

impl rustls::client::StoresClientSessions for TicketStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let ticket = key.starts_with(b"session");
        let stored = self.inner.put(key, value);
        if stored && ticket {
            self.tickets.fetch_add(1, Ordering::SeqCst);
        }
        stored
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }
}

/// "HOST:PORT" or "[V6]:PORT" -> first socket address, IPv4 preferred.
fn resolve(hostport: &str) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {hostport}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| anyhow!("{hostport} resolves to no address"))
}

/// Split `https://HOST[:PORT]/path` into (host, port, "/path").
fn parse_url(url: &str) -> Result<(String, u16, String)> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("URL must start with https://: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| anyhow!("bad IPv6 literal in {url}"))?;
        let host = &v6[..end];
        let port = match v6[end + 1..].strip_prefix(':') {
            Some(p) => p.parse().with_context(|| format!("bad port in {url}"))?,
            None => 443,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().with_context(|| format!("bad port in {url}"))?,
            ),
            None => (authority.to_string(), 443),
        }
    };
    if host.is_empty() {
        bail!("no host in {url}");
    }
    Ok((host, port, path.to_string()))
}

fn load_certs(path: &Path) -> Result<Vec<rustls::Certificate>> {
    let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs.into_iter().map(rustls::Certificate).collect())
}

fn load_key(path: &Path) -> Result<rustls::PrivateKey> {
    let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rd = &pem[..];
    loop {
        match rustls_pemfile::read_one(&mut rd)
            .with_context(|| format!("parsing key in {}", path.display()))?
        {
            Some(rustls_pemfile::Item::PKCS8Key(k))
            | Some(rustls_pemfile::Item::ECKey(k))
            | Some(rustls_pemfile::Item::RSAKey(k)) => return Ok(rustls::PrivateKey(k)),
            Some(_) => continue,
            None => bail!("no private key in {}", path.display()),
        }
    }
}

fn cipher_suites(chacha20: bool) -> Vec<rustls::SupportedCipherSuite> {
    if chacha20 {
        vec![rustls::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256]
    } else {
        rustls::DEFAULT_CIPHER_SUITES.to_vec()
    }
}

// ---------------------------------------------------------------- server

async fn run_server(a: ServerArgs) -> Result<()> {
    let certs = load_certs(&a.cert)?;
    let key = load_key(&a.key)?;
    let mut tls = rustls::ServerConfig::builder()
        .with_cipher_suites(&cipher_suites(a.chacha20))
        .with_safe_default_kx_groups()
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 config")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate / key")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    if a.early_data {
        tls.max_early_data_size = u32::MAX; // accept 0-RTT (quinn wants exactly u32::MAX)
    }
    tls.key_log = Arc::new(rustls::KeyLogFile::new());

    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(a.max_streams.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.max_idle_timeout(Some(Duration::from_secs(30).try_into()?));

    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(tls));
    cfg.transport = Arc::new(transport);
    cfg.use_retry(a.retry);

    let root = fs::canonicalize(&a.root)
        .with_context(|| format!("--root {}", a.root.display()))?;
    let endpoint = quinn::Endpoint::server(cfg, a.listen)
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    let local = endpoint.local_addr()?;
    println!("listening on {local}");
    std::io::stdout().flush().ok();
    let root = Arc::new(root);

    while let Some(connecting) = endpoint.accept().await {
        let root = root.clone();
        tokio::spawn(async move {
            let remote = connecting.remote_address();
            match connecting.await {
                Ok(conn) => {
                    vlog!("connection from {remote}");
                    let reason = serve_connection(conn, root).await;
                    vlog!("connection from {remote} ended: {reason}");
                }
                Err(e) => eprintln!("quinn-peer: handshake with {remote} failed: {e}"),
            }
        });
    }
    Ok(())
}

async fn serve_connection(conn: quinn::Connection, root: Arc<PathBuf>) -> quinn::ConnectionError {
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let root = root.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_stream(send, recv, &root).await {
                        vlog!("stream: {e:#}");
                    }
                });
            }
            Err(e) => return e,
        }
    }
}

async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    root: &Path,
) -> Result<()> {
    // Read the request: up to FIN, or up to the first LF.
    let mut req = Vec::new();
    loop {
        if req.contains(&b'\n') {
            break;
        }
        match recv.read_chunk(MAX_REQUEST, true).await? {
            Some(chunk) => {
                req.extend_from_slice(&chunk.bytes);
                if req.len() > MAX_REQUEST {
                    let _ = send.reset(ERR_BAD_REQUEST.into());
                    bail!("request too long");
                }
            }
            None => break,
        }
    }
    let line = String::from_utf8_lossy(&req);
    let line = line.lines().next().unwrap_or("").trim();
    let path = match line.strip_prefix("GET ") {
        Some(p) => p.trim().split_whitespace().next().unwrap_or("").to_string(),
        None => {
            let _ = send.reset(ERR_BAD_REQUEST.into());
            bail!("bad request {line:?}");
        }
    };
    let file = match safe_join(root, &path) {
        Some(f) => f,
        None => {
            let _ = send.reset(ERR_NOT_FOUND.into());
            bail!("refusing path {path:?}");
        }
    };
    let mut fh = match fs::File::open(&file).and_then(|f| {
        if f.metadata()?.is_file() {
            Ok(f)
        } else {
            Err(std::io::Error::new(std::io::ErrorKind::Other, "not a file"))
        }
    }) {
        Ok(f) => f,
        Err(e) => {
            let _ = send.reset(ERR_NOT_FOUND.into());
            bail!("GET {path}: {e}");
        }
    };
    vlog!("GET {path}");
    loop {
        let mut buf = vec![0u8; FILE_CHUNK];
        let n = fh.read(&mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        send.write_chunk(Bytes::from(buf)).await?;
    }
    send.finish().await?;
    Ok(())
}

/// root + request path, refusing anything that would leave root.
fn safe_join(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    let mut any = false;
    for c in rel.components() {
        match c {
            Component::Normal(p) => {
                out.push(p);
                any = true;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    if any {
        Some(out)
    } else {
        None
    }
}

// ---------------------------------------------------------------- client

struct NoVerify;

impl rustls::client::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::Certificate,
        _intermediates: &[rustls::Certificate],
        _server_name: &rustls::ServerName,
        _scts: &mut dyn Iterator<Item = &[u8]>,
        _ocsp_response: &[u8],
        _now: SystemTime,
    ) -> Result<rustls::client::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::ServerCertVerified::assertion())
    }
}

/// TLS sessions as for QUIC v1 whatever version the connection announces: quinn-proto's rustls
/// glue derives Initial keys only for v1 and its drafts and refuses other versions, so a client
/// probing with a reserved version (--version 0x1a2a3a4a) seals its Initials with v1's keys.
struct V1Keys(Arc<rustls::ClientConfig>);

impl quinn::crypto::ClientConfig for V1Keys {
    fn start_session(
        self: Arc<Self>,
        _version: u32,
        server_name: &str,
        params: &quinn_proto::transport_parameters::TransportParameters,
    ) -> std::result::Result<Box<dyn quinn::crypto::Session>, quinn::ConnectError> {
        quinn::crypto::ClientConfig::start_session(self.0.clone(), 1, server_name, params)
    }
}

struct Outcome {
    path: String,
    bytes: u64,
    result: Result<()>,
}

async fn run_client(a: ClientArgs) -> Result<bool> {
    let mut targets = Vec::new();
    let mut authority: Option<(String, u16)> = None;
    for u in &a.urls {
        let (host, port, path) = parse_url(u)?;
        match &authority {
            None => authority = Some((host, port)),
            Some((h, p)) if *h == host && *p == port => {}
            Some((h, p)) => bail!("all URLs must use the same server ({h}:{p}), got {u}"),
        }
        targets.push(path);
    }
    let (host, port) = authority.expect("at least one URL");
    let remote = if let Ok(ip) = host.parse::<IpAddr>() {
        SocketAddr::new(ip, port)
    } else {
        resolve(&format!("{host}:{port}"))?
    };
    let server_name = a.server_name.clone().unwrap_or_else(|| host.clone());

    let builder = rustls::ClientConfig::builder()
        .with_cipher_suites(&cipher_suites(a.chacha20))
        .with_safe_default_kx_groups()
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 config")?;
    let mut tls = if a.insecure {
        builder
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(a.ca.as_deref().expect("--ca"))? {
            roots
                .add(&c)
                .map_err(|e| anyhow!("bad CA certificate: {e:?}"))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = true;
    tls.key_log = Arc::new(rustls::KeyLogFile::new());
    let store = Arc::new(TicketStore {
        inner: rustls::client::ClientSessionMemoryCache::new(16),
        tickets: std::sync::atomic::AtomicUsize::new(0),
    });
    tls.session_storage = store.clone();

    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(30).try_into()?));
    let mut ccfg = match a.version {
        None => quinn::ClientConfig::new(Arc::new(tls)),
        Some(v) => {
            let mut c = quinn::ClientConfig::new(Arc::new(V1Keys(Arc::new(tls))));
            c.version(v);
            c
        }
    };
    ccfg.transport_config(Arc::new(transport));

    let bind: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let mut endpoint = quinn::Endpoint::client(bind).context("binding client socket")?;
    endpoint.set_default_client_config(ccfg);

    if let Some(dir) = &a.output {
        fs::create_dir_all(dir).with_context(|| format!("--output {}", dir.display()))?;
    }

    let start = Instant::now();
    let work = async {
        let conn = endpoint
            .connect(remote, &server_name)
            .context("connect")?
            .await
            .with_context(|| format!("handshake with {remote}"))?;
        let handshake = start.elapsed();
        vlog!("connected to {remote} in {handshake:?}");
        let fetch_all = |conn: &quinn::Connection, paths: &[String]| {
            let mut tasks = Vec::new();
            for path in paths.iter().cloned() {
                let conn = conn.clone();
                let out = a.output.clone();
                tasks.push(tokio::spawn(async move {
                    let mut bytes = 0u64;
                    let result = fetch(&conn, &path, out.as_deref(), &mut bytes).await;
                    Outcome {
                        path,
                        bytes,
                        result,
                    }
                }));
            }
            tasks
        };
        let mut outcomes = Vec::new();
        let mut conn = conn;
        if a.resume || a.zerortt {
            // First connection: the first file, then wait for the session ticket (bounded).
            for t in fetch_all(&conn, &targets[..1]) {
                outcomes.push(t.await?);
            }
            for _ in 0..500 {
                if store.tickets.load(Ordering::SeqCst) > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if store.tickets.load(Ordering::SeqCst) == 0 {
                eprintln!("quinn-peer: no session ticket within 5 s");
            }
            conn.close(0u32.into(), b"done");
            let connecting = endpoint.connect(remote, &server_name).context("connect")?;
            if a.zerortt {
                match connecting.into_0rtt() {
                    Ok((early, accepted)) => {
                        let tasks = fetch_all(&early, &targets[1..]);
                        let used = accepted.await;
                        println!("RESUMPTION used_0rtt={}", used as u8);
                        for t in tasks {
                            outcomes.push(t.await?);
                        }
                        conn = early;
                    }
                    Err(connecting) => {
                        println!("RESUMPTION used_0rtt=0 (no 0-RTT possible)");
                        conn = connecting.await.context("second handshake")?;
                        for t in fetch_all(&conn, &targets[1..]) {
                            outcomes.push(t.await?);
                        }
                    }
                }
            } else {
                conn = connecting.await.context("second handshake")?;
                for t in fetch_all(&conn, &targets[1..]) {
                    outcomes.push(t.await?);
                }
            }
        } else {
            for t in fetch_all(&conn, &targets) {
                outcomes.push(t.await?);
            }
        }
        let elapsed = start.elapsed();
        conn.close(0u32.into(), b"done");
        Ok::<_, anyhow::Error>((outcomes, handshake, elapsed))
    };
    let (outcomes, handshake, elapsed) = match tokio::time::timeout(a.timeout, work).await {
        Ok(r) => r?,
        Err(_) => {
            println!(
                "RESULT peer=quinn ok=0 files=0/{} bytes=0 elapsed_s={:.3} error=timeout",
                targets.len(),
                start.elapsed().as_secs_f64()
            );
            bail!("timed out after {:?}", a.timeout);
        }
    };
    // Let the CONNECTION_CLOSE go out (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;

    let mut ok_files = 0;
    let mut total = 0u64;
    for o in &outcomes {
        total += o.bytes;
        match &o.result {
            Ok(()) => ok_files += 1,
            Err(e) => eprintln!("quinn-peer: {}: {e:#}", o.path),
        }
    }
    let secs = elapsed.as_secs_f64();
    let all_ok = ok_files == outcomes.len();
    println!(
        "RESULT peer=quinn ok={} files={}/{} bytes={} elapsed_s={:.3} handshake_ms={:.1} mbit_s={:.1}",
        all_ok as u8,
        ok_files,
        outcomes.len(),
        total,
        secs,
        handshake.as_secs_f64() * 1000.0,
        if secs > 0.0 { total as f64 * 8.0 / secs / 1e6 } else { 0.0 }
    );
    Ok(all_ok)
}

async fn fetch(
    conn: &quinn::Connection,
    path: &str,
    out: Option<&Path>,
    bytes: &mut u64,
) -> Result<()> {
    let (mut send, mut recv) = conn.open_bi().await.context("open stream")?;
    send.write_all(format!("GET {path}\r\n").as_bytes())
        .await
        .context("sending request")?;
    drop(send); // quinn 0.9: dropping a SendStream finishes it (FIN) without waiting for ACK
    let mut file = match out {
        Some(dir) => {
            let rel = path.trim_start_matches('/');
            if rel.is_empty() {
                bail!("cannot save {path:?}: empty file name");
            }
            let dest = safe_join(dir, rel).ok_or_else(|| anyhow!("refusing to save {path:?}"))?;
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            Some(
                fs::File::create(&dest)
                    .with_context(|| format!("creating {}", dest.display()))?,
            )
        }
        None => None,
    };
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.context("receiving")? {
        *bytes += chunk.bytes.len() as u64;
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk.bytes)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- main

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        usage_exit("");
    }
    let mode = argv.remove(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match mode.as_str() {
        "server" => {
            let a = parse_server(argv);
            match rt.block_on(run_server(a)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("quinn-peer server: {e:#}");
                    1
                }
            }
        }
        "client" => {
            let a = parse_client(argv);
            match rt.block_on(run_client(a)) {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(e) => {
                    eprintln!("quinn-peer client: {e:#}");
                    1
                }
            }
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        _ => usage_exit(&format!("unknown mode {mode}")),
    };
    rt.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}
