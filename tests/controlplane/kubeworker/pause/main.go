// Command pause is the sandbox ("pause") image's only file: it holds a pod's namespaces open, reaps the zombies
// handed to it as PID 1, and exits on SIGINT or SIGTERM. Built static (CGO_ENABLED=0) into a one-layer OCI
// archive by tests/controlplane/workernode.py, because no registry (registry.k8s.io/pause) is reachable here.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	children := make(chan os.Signal, 8)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-children:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
