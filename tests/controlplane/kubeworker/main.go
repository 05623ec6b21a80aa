// Command kubeworker holds the node side of the local Kubernetes cluster acinode's opt-in worker tests use:
// the kubelet and kube-proxy, built from the same Kubernetes modules (and versions) as the control-plane
// binary in the parent folder. It is a separate module so that building it never rebuilds (or changes the
// digest of) the control-plane binary; the Go build cache shares the common packages between the two.
// The first argument selects the component.
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
)

const usage = "usage: kubeworker {kubelet|kube-proxy|version} [flags...]"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	component := os.Args[1]
	// Each component parses os.Args[1:] itself, so drop the component name.
	os.Args = append([]string{component}, os.Args[2:]...)
	switch component {
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(kubeproxy.NewProxyCommand()))
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		fmt.Fprintf(os.Stderr, "unknown component %q\n%s\n", component, usage)
		os.Exit(2)
	}
}
