// Command ociregistry serves go-containerregistry's OCI distribution registry (pkg/registry, in memory) on a
// loopback address only: the upstream cmd/registry listens on every interface, which the project's tests never do.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("-addr %q: a loopback address is required", *addr)
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stdout, listener.Addr().String())
	log.Fatal(http.Serve(listener, registry.New(registry.Logger(log.New(os.Stderr, "", log.LstdFlags)))))
}
