// quicgo-h3-peer: an HTTP/3 client and server on quic-go 0.29's http3 package, for the HTTP/3
// cases of purequic's interop suite (interop/h3.ts) that quic-go's own interop endpoints cannot
// run (they only GET): uploads.
//
//	quicgo-h3-peer server --listen ADDR:PORT --cert PEM --key PEM --root DIR
//	quicgo-h3-peer client --ca PEM [--upload FILE] URL...
//
// Server: GET serves the files under --root (http.FileServer); POST and PUT answer with the
// request body, and its SHA-256 in the X-Upload-Sha256 header. It prints "listening" when ready.
// Client: requests every URL concurrently on one connection: a POST of --upload's content when
// given, else a GET; prints one line per URL, "<METHOD> <url> <status> <bytes> <sha256> <x-upload-sha256>",
// and exits 1 if any request failed.
//
// Build (GOPATH mode, Debian's quic-go sources), as interop/h3.ts does:
//
//	GO111MODULE=off GOPATH=$DIR:/usr/share/gocode go build -o quicgo-h3-peer main.go
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/lucas-clemente/quic-go/http3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: quicgo-h3-peer server|client ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: quicgo-h3-peer server|client ...")
		os.Exit(2)
	}
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:4433", "address")
	cert := fs.String("cert", "", "certificate PEM")
	key := fs.String("key", "", "private key PEM")
	root := fs.String("root", ".", "directory to serve")
	fs.Parse(args)

	files := http.FileServer(http.Dir(*root))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			files.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("X-Upload-Sha256", hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
	s := http3.Server{Addr: *listen, Handler: handler}
	fmt.Println("listening on", *listen)
	if err := s.ListenAndServeTLS(*cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	ca := fs.String("ca", "", "trusted CA PEM")
	upload := fs.String("upload", "", "POST this file's content to every URL")
	fs.Parse(args)

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(*ca)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		fmt.Fprintln(os.Stderr, "cannot load --ca", *ca, err)
		os.Exit(2)
	}
	var body []byte
	if *upload != "" {
		if body, err = os.ReadFile(*upload); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	rt := &http3.RoundTripper{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer rt.Close()
	c := &http.Client{Transport: rt}

	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := false
	for _, u := range fs.Args() {
		wg.Add(1)
		go func(u string) {
			defer wg.Done()
			method := http.MethodGet
			var req *http.Request
			if body != nil {
				method = http.MethodPost
				req, err = http.NewRequest(method, u, bytes.NewReader(body))
			} else {
				req, err = http.NewRequest(method, u, nil)
			}
			var line string
			if err == nil {
				var res *http.Response
				if res, err = c.Do(req); err == nil {
					h := sha256.New()
					var n int64
					n, err = io.Copy(h, res.Body)
					res.Body.Close()
					line = fmt.Sprintf("%s %s %d %d %s %s", method, u, res.StatusCode, n,
						hex.EncodeToString(h.Sum(nil)), res.Header.Get("X-Upload-Sha256"))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = true
				fmt.Printf("%s %s error %v\n", method, u, err)
				return
			}
			fmt.Println(line)
		}(u)
	}
	wg.Wait()
	if failed {
		os.Exit(1)
	}
}
