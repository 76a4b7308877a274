// quicgo-peer: an hq-interop (HTTP/0.9 over QUIC, ALPN "hq-interop") client and
// server on quic-go 0.29's API, for purequic's interop suite. Same command line
// as the quinn peer (interop/peers/quinn):
//
//	quicgo-peer server --listen ADDR:PORT --cert PEM --key PEM --root DIR [--retry] [--chacha20] [--max-streams N] [--early-data] [-v]
//	quicgo-peer client (--insecure | --ca PEM) [--server-name NAME] [--output DIR] [--chacha20] [--timeout SECS] [--resume | --zerortt] [-v] URL...
//
// Build (GOPATH mode, Debian's quic-go sources):
//
//	GO111MODULE=off GOPATH=$DIR:/usr/share/gocode go build -o quicgo-peer main.go
//
// Protocol: per file the client opens a bidirectional stream, writes
// "GET /path\r\n" and closes its send side; the server sends the file and FIN,
// or resets the stream (error code 0x194) when the file is missing.
// SSLKEYLOGFILE is honoured on both sides.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lucas-clemente/quic-go"
)

const (
	alpn          = "hq-interop"
	errNotFound   = quic.StreamErrorCode(0x194)
	errBadRequest = quic.StreamErrorCode(0x190)
	maxRequest    = 8192
)

const usage = `usage:
  quicgo-peer server --listen ADDR:PORT --cert PEM --key PEM --root DIR
                     [--retry] [--chacha20] [--max-streams N] [--early-data] [-v]
  quicgo-peer client (--insecure | --ca PEM) [--server-name NAME] [--output DIR]
                     [--chacha20] [--timeout SECS] [--resume | --zerortt] [-v]
                     https://HOST:PORT/path...

  ALPN is hq-interop. SSLKEYLOGFILE=FILE writes TLS secrets (NSS key log format).
  server: --listen with port 0 picks a free port; the server prints
          'listening on ADDR:PORT' on stdout once it is ready.
  client: all URLs must name the same HOST:PORT; they are fetched concurrently
          on one connection. Without --output the bodies are counted and dropped.
          Exit 0 only if all files arrived; prints one 'RESULT ...' line.
  server: session tickets are always issued; --early-data accepts 0-RTT.
  client: --resume fetches the first URL on a first connection, waits for its
          session ticket, then the others on a second, resumed connection;
          --zerortt does the same with the second connection's requests in
          0-RTT. Prints 'RESUMPTION resumed=0|1 used_0rtt=0|1' for the second.`

var verbose bool

func vlog(format string, args ...interface{}) {
	if verbose {
		fmt.Fprintf(os.Stderr, "quicgo-peer: "+format+"\n", args...)
	}
}

func usageExit(msg string) {
	if msg != "" {
		fmt.Fprintln(os.Stderr, "quicgo-peer: "+msg)
	}
	fmt.Fprintln(os.Stderr, usage)
	os.Exit(2)
}

func keyLogWriter() io.Writer {
	path := os.Getenv("SSLKEYLOGFILE")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicgo-peer: SSLKEYLOGFILE %s: %v\n", path, err)
		return nil
	}
	return f // left open for the life of the process
}

func cipherSuites(chacha20 bool) []uint16 {
	if chacha20 {
		return []uint16{tls.TLS_CHACHA20_POLY1305_SHA256}
	}
	return nil
}

// ---------------------------------------------------------------- server

type serverArgs struct {
	listen, cert, key, root string
	retry, chacha20         bool
	earlyData               bool
	maxStreams              int64
}

func parseServer(argv []string) serverArgs {
	a := serverArgs{maxStreams: 100}
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		val := func() string {
			if i+1 >= len(argv) {
				usageExit(arg + " needs a value")
			}
			i++
			return argv[i]
		}
		switch arg {
		case "--listen":
			a.listen = val()
		case "--cert":
			a.cert = val()
		case "--key":
			a.key = val()
		case "--root":
			a.root = val()
		case "--retry":
			a.retry = true
		case "--chacha20":
			a.chacha20 = true
		case "--early-data":
			a.earlyData = true
		case "--max-streams":
			v := val()
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				usageExit("bad --max-streams " + v)
			}
			a.maxStreams = n
		case "-v", "--verbose":
			verbose = true
		case "-h", "--help":
			fmt.Println(usage)
			os.Exit(0)
		default:
			usageExit("server: unknown argument " + arg)
		}
	}
	for name, v := range map[string]string{"--listen": a.listen, "--cert": a.cert, "--key": a.key, "--root": a.root} {
		if v == "" {
			usageExit("server needs " + name)
		}
	}
	return a
}

func runServer(a serverArgs) error {
	cert, err := tls.LoadX509KeyPair(a.cert, a.key)
	if err != nil {
		return fmt.Errorf("certificate / key: %w", err)
	}
	root, err := filepath.Abs(a.root)
	if err != nil {
		return err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return fmt.Errorf("--root %s is not a directory", a.root)
	}
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpn},
		CipherSuites: cipherSuites(a.chacha20),
		KeyLogWriter: keyLogWriter(),
	}
	retry := a.retry
	quicConf := &quic.Config{
		MaxIncomingStreams:       a.maxStreams,
		MaxIncomingUniStreams:    -1, // none
		MaxIdleTimeout:           30 * time.Second,
		RequireAddressValidation: func(net.Addr) bool { return retry },
	}
	if a.earlyData {
		// quic-go 0.29 accepts 0-RTT on an "early" listener.
		ln, err := quic.ListenAddrEarly(a.listen, tlsConf, quicConf)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", a.listen, err)
		}
		fmt.Printf("listening on %s\n", ln.Addr())
		os.Stdout.Sync()
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return err
			}
			go serveConn(conn, root)
		}
	}
	ln, err := quic.ListenAddr(a.listen, tlsConf, quicConf)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", a.listen, err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return err
		}
		go serveConn(conn, root)
	}
}

func serveConn(conn quic.Connection, root string) {
	vlog("connection from %s", conn.RemoteAddr())
	for {
		str, err := conn.AcceptStream(context.Background())
		if err != nil {
			vlog("connection from %s ended: %v", conn.RemoteAddr(), err)
			return
		}
		go func() {
			if err := serveStream(str, root); err != nil {
				vlog("stream %d: %v", str.StreamID(), err)
			}
		}()
	}
}

func serveStream(str quic.Stream, root string) error {
	// Read the request line (up to LF or FIN), then the rest of the request stream up to its FIN:
	// quic-go only retires a stream (and grants MAX_STREAMS credit) once the application has read
	// its receive side to the end, whether the FIN came with the request or in a later packet.
	reader := bufio.NewReaderSize(io.LimitReader(str, maxRequest), 1024)
	line, err := reader.ReadString('\n')
	if err == nil {
		_, _ = io.Copy(io.Discard, reader)
	}
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		str.CancelWrite(errBadRequest)
		return fmt.Errorf("reading request: %w", err)
	}
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "GET ") {
		str.CancelWrite(errBadRequest)
		return fmt.Errorf("bad request %q", line)
	}
	fields := strings.Fields(line[4:])
	if len(fields) == 0 {
		str.CancelWrite(errBadRequest)
		return fmt.Errorf("bad request %q", line)
	}
	path := fields[0]
	file, ok := safeJoin(root, path)
	if !ok {
		str.CancelWrite(errNotFound)
		return fmt.Errorf("refusing path %q", path)
	}
	f, err := os.Open(file)
	if err == nil {
		if st, serr := f.Stat(); serr != nil || !st.Mode().IsRegular() {
			f.Close()
			err = fmt.Errorf("not a regular file")
		}
	}
	if err != nil {
		str.CancelWrite(errNotFound)
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer f.Close()
	vlog("GET %s", path)
	buf := make([]byte, 256*1024)
	if _, err := io.CopyBuffer(struct{ io.Writer }{str}, struct{ io.Reader }{f}, buf); err != nil {
		str.CancelWrite(errNotFound)
		return fmt.Errorf("sending %s: %w", path, err)
	}
	return str.Close() // FIN
}

// safeJoin joins root and a request path, refusing anything that leaves root.
func safeJoin(root, path string) (string, bool) {
	rel := strings.TrimLeft(path, "/")
	if rel == "" {
		return "", false
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", false
		}
	}
	return filepath.Join(root, filepath.FromSlash(rel)), true
}

// ---------------------------------------------------------------- client

type clientArgs struct {
	insecure, chacha20     bool
	resume, zerortt        bool
	ca, serverName, output string
	timeout                time.Duration
	urls                   []string
}

func parseClient(argv []string) clientArgs {
	a := clientArgs{timeout: 60 * time.Second}
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		val := func() string {
			if i+1 >= len(argv) {
				usageExit(arg + " needs a value")
			}
			i++
			return argv[i]
		}
		switch {
		case arg == "--insecure" || arg == "-k":
			a.insecure = true
		case arg == "--ca":
			a.ca = val()
		case arg == "--server-name":
			a.serverName = val()
		case arg == "--output" || arg == "-o":
			a.output = val()
		case arg == "--chacha20":
			a.chacha20 = true
		case arg == "--resume":
			a.resume = true
		case arg == "--zerortt":
			a.zerortt = true
		case arg == "--timeout":
			v := val()
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil || secs <= 0 {
				usageExit("bad --timeout " + v)
			}
			a.timeout = time.Duration(secs * float64(time.Second))
		case arg == "-v" || arg == "--verbose":
			verbose = true
		case arg == "-h" || arg == "--help":
			fmt.Println(usage)
			os.Exit(0)
		case strings.HasPrefix(arg, "https://"):
			a.urls = append(a.urls, arg)
		default:
			usageExit("client: unknown argument " + arg)
		}
	}
	if len(a.urls) == 0 {
		usageExit("client needs at least one https:// URL")
	}
	if a.insecure == (a.ca != "") {
		usageExit("client needs exactly one of --insecure and --ca PEM")
	}
	if (a.resume || a.zerortt) && len(a.urls) < 2 {
		usageExit("--resume and --zerortt need at least 2 URLs")
	}
	return a
}

// ticketSignal wraps a session cache and signals each ticket stored.
type ticketSignal struct {
	tls.ClientSessionCache
	put chan struct{}
}

func (c *ticketSignal) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	select {
	case c.put <- struct{}{}:
	default:
	}
}

// parseURL splits https://HOST[:PORT]/path into (host, port, "/path").
func parseURL(u string) (string, string, string, error) {
	rest := strings.TrimPrefix(u, "https://")
	path := "/"
	authority := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		// no port
		host, port = strings.Trim(authority, "[]"), "443"
	}
	if host == "" {
		return "", "", "", fmt.Errorf("no host in %s", u)
	}
	return host, port, path, nil
}

type outcome struct {
	path  string
	bytes int64
	err   error
}

func runClient(a clientArgs) (bool, error) {
	var host, port string
	var paths []string
	for _, u := range a.urls {
		h, p, path, err := parseURL(u)
		if err != nil {
			return false, err
		}
		if host == "" {
			host, port = h, p
		} else if h != host || p != port {
			return false, fmt.Errorf("all URLs must use the same server (%s:%s), got %s", host, port, u)
		}
		paths = append(paths, path)
	}
	serverName := a.serverName
	if serverName == "" {
		serverName = host
	}
	tlsConf := &tls.Config{
		NextProtos:   []string{alpn},
		ServerName:   serverName,
		CipherSuites: cipherSuites(a.chacha20),
		KeyLogWriter: keyLogWriter(),
	}
	if a.insecure {
		tlsConf.InsecureSkipVerify = true
	} else {
		pem, err := os.ReadFile(a.ca)
		if err != nil {
			return false, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return false, fmt.Errorf("no certificate in %s", a.ca)
		}
		tlsConf.RootCAs = pool
	}
	quicConf := &quic.Config{MaxIdleTimeout: 30 * time.Second}
	if a.output != "" {
		if err := os.MkdirAll(a.output, 0o755); err != nil {
			return false, err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	start := time.Now()
	addr := net.JoinHostPort(host, port)
	if host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", port) // avoid ::1-first resolution
	}
	var tickets *ticketSignal
	if a.resume || a.zerortt {
		tickets = &ticketSignal{ClientSessionCache: tls.NewLRUClientSessionCache(4), put: make(chan struct{}, 1)}
		tlsConf.ClientSessionCache = tickets
	}
	conn, err := quic.DialAddrContext(ctx, addr, tlsConf, quicConf)
	if err != nil {
		kind := "handshake"
		if ctx.Err() != nil {
			kind = "timeout"
		}
		fmt.Printf("RESULT peer=quic-go ok=0 files=0/%d bytes=0 elapsed_s=%.3f error=%s\n",
			len(paths), time.Since(start).Seconds(), kind)
		return false, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	handshake := time.Since(start)
	vlog("connected to %s in %v", addr, handshake)

	results := make([]outcome, len(paths))
	fetchAll := func(conn quic.Connection, from int) {
		var wg sync.WaitGroup
		for i := from; i < len(paths); i++ {
			wg.Add(1)
			go func(i int, p string) {
				defer wg.Done()
				n, err := fetch(ctx, conn, p, a.output)
				results[i] = outcome{path: p, bytes: n, err: err}
			}(i, paths[i])
		}
		wg.Wait()
	}
	if tickets != nil {
		// First connection: the first file, then wait for the session ticket.
		n, err := fetch(ctx, conn, paths[0], a.output)
		results[0] = outcome{path: paths[0], bytes: n, err: err}
		select {
		case <-tickets.put:
		case <-time.After(5 * time.Second):
			fmt.Fprintln(os.Stderr, "quicgo-peer: no session ticket within 5 s")
		}
		conn.CloseWithError(0, "done")
		// Second connection: resumed, with the requests in 0-RTT for --zerortt.
		if a.zerortt {
			early, err := quic.DialAddrEarlyContext(ctx, addr, tlsConf, quicConf)
			if err != nil {
				return false, fmt.Errorf("second handshake with %s: %w", addr, err)
			}
			conn = early
			fetchAll(early, 1)
			<-early.HandshakeComplete().Done()
			// Requests that 0-RTT rejection cancelled go again on the 1-RTT connection.
			if next := early.NextConnection(); next != nil {
				for i := 1; i < len(paths); i++ {
					if errors.Is(results[i].err, quic.Err0RTTRejected) {
						n, err := fetch(ctx, next, paths[i], a.output)
						results[i] = outcome{path: paths[i], bytes: n, err: err}
					}
				}
				conn = next
			}
		} else {
			conn, err = quic.DialAddrContext(ctx, addr, tlsConf, quicConf)
			if err != nil {
				return false, fmt.Errorf("second handshake with %s: %w", addr, err)
			}
			fetchAll(conn, 1)
		}
		st := conn.ConnectionState().TLS
		b := map[bool]int{false: 0, true: 1}
		fmt.Printf("RESUMPTION resumed=%d used_0rtt=%d\n", b[st.DidResume], b[st.Used0RTT])
	} else {
		fetchAll(conn, 0)
	}
	elapsed := time.Since(start)
	conn.CloseWithError(0, "done")

	okFiles, total := 0, int64(0)
	for _, r := range results {
		total += r.bytes
		if r.err == nil {
			okFiles++
		} else {
			fmt.Fprintf(os.Stderr, "quicgo-peer: %s: %v\n", r.path, r.err)
		}
	}
	allOK := okFiles == len(results)
	secs := elapsed.Seconds()
	mbit := 0.0
	if secs > 0 {
		mbit = float64(total) * 8 / secs / 1e6
	}
	okFlag := 0
	if allOK {
		okFlag = 1
	}
	extra := ""
	if ctx.Err() != nil {
		extra = " error=timeout"
	}
	fmt.Printf("RESULT peer=quic-go ok=%d files=%d/%d bytes=%d elapsed_s=%.3f handshake_ms=%.1f mbit_s=%.1f%s\n",
		okFlag, okFiles, len(results), total, secs, handshake.Seconds()*1000, mbit, extra)
	return allOK, nil
}

func fetch(ctx context.Context, conn quic.Connection, path, outDir string) (int64, error) {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, fmt.Errorf("open stream: %w", err)
	}
	if _, err := str.Write([]byte("GET " + path + "\r\n")); err != nil {
		return 0, fmt.Errorf("sending request: %w", err)
	}
	str.Close() // FIN on our side
	var dst io.Writer = io.Discard
	if outDir != "" {
		dest, ok := safeJoin(outDir, path)
		if !ok {
			str.CancelRead(0)
			return 0, fmt.Errorf("refusing to save %q", path)
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return 0, err
		}
		f, err := os.Create(dest)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		dst = f
	}
	// Stop waiting when the overall deadline passes.
	go func() {
		<-ctx.Done()
		str.CancelRead(0)
	}()
	buf := make([]byte, 256*1024)
	n, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{str}, buf)
	if err != nil {
		return n, fmt.Errorf("receiving: %w", err)
	}
	return n, nil
}

// ---------------------------------------------------------------- main

func main() {
	if len(os.Args) < 2 {
		usageExit("")
	}
	switch os.Args[1] {
	case "server":
		a := parseServer(os.Args[2:])
		if err := runServer(a); err != nil {
			fmt.Fprintf(os.Stderr, "quicgo-peer server: %v\n", err)
			os.Exit(1)
		}
	case "client":
		a := parseClient(os.Args[2:])
		ok, err := runClient(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "quicgo-peer client: %v\n", err)
			os.Exit(1)
		}
		if !ok {
			os.Exit(1)
		}
	case "-h", "--help", "help":
		fmt.Println(usage)
	default:
		usageExit("unknown mode " + os.Args[1])
	}
}
