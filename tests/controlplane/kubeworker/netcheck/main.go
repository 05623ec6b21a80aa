// Command netcheck is the whole of a tiny test image for the worker node (no Debian, no registry): it serves a
// page, fetches a URL (a stand-in for curl), or sleeps, so the worker tests can check pod networking, logs and
// exec without the project's Debian test image.
//
//	netcheck serve :8080      answer every GET with "netcheck <hostname>"
//	netcheck get URL          print the body of URL; exit 1 on any error or a status >= 400
//	netcheck sleep            block until SIGTERM
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netcheck {serve ADDR|get URL|sleep}")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		fmt.Println("serving on", os.Args[2])
		err := http.ListenAndServe(os.Args[2], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Printf("GET %s from %s\n", r.URL.Path, r.RemoteAddr)
			fmt.Fprintf(w, "netcheck %s\n", host)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "get":
		client := http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		os.Stdout.Write(body)
		if resp.StatusCode >= 400 {
			os.Exit(1)
		}
	case "sleep":
		fmt.Println("sleeping")
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		<-stop
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
