// Command tunedmock is virtual-kubelet's node library (github.com/virtual-kubelet/virtual-kubelet/node/nodeutil,
// the same version as the reference binary) with a provider that behaves as the reference binary's `mock`
// provider (cmd/virtual-kubelet/internal/provider/mock: pods Running at once, Succeeded when deleted, reported
// through NotifyPods), but with a Kubernetes client rate limit chosen on the command line.
//
// The reference binary keeps client-go's default limit (5 requests/s, burst 10), which alone sets how fast it
// can report a burst of pods. This peer shows what virtual-kubelet's own machinery costs once that limit is
// lifted (tensile-kube runs it with --kube-api-qps 500 --kube-api-burst 1000). The mock's pod map is guarded by
// a mutex here (the original has none). No kubelet HTTP API is served (no TLS configuration is given).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

type mockProvider struct {
	mu       sync.Mutex
	pods     map[string]*v1.Pod
	notifier func(*v1.Pod)
}

func key(namespace, name string) string { return namespace + "/" + name }

func (p *mockProvider) CreatePod(ctx context.Context, pod *v1.Pod) error {
	now := metav1.NewTime(time.Now())
	pod.Status = v1.PodStatus{
		Phase:     v1.PodRunning,
		HostIP:    "1.2.3.4",
		PodIP:     "5.6.7.8",
		StartTime: &now,
		Conditions: []v1.PodCondition{
			{Type: v1.PodInitialized, Status: v1.ConditionTrue},
			{Type: v1.PodReady, Status: v1.ConditionTrue},
			{Type: v1.PodScheduled, Status: v1.ConditionTrue},
		},
	}
	for _, container := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, v1.ContainerStatus{
			Name:  container.Name,
			Image: container.Image,
			Ready: true,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}},
		})
	}
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = pod
	p.mu.Unlock()
	p.notifier(pod)
	return nil
}

func (p *mockProvider) UpdatePod(ctx context.Context, pod *v1.Pod) error {
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = pod
	p.mu.Unlock()
	p.notifier(pod)
	return nil
}

func (p *mockProvider) DeletePod(ctx context.Context, pod *v1.Pod) error {
	p.mu.Lock()
	_, exists := p.pods[key(pod.Namespace, pod.Name)]
	delete(p.pods, key(pod.Namespace, pod.Name))
	p.mu.Unlock()
	if !exists {
		return errdefs.NotFound("pod not found")
	}
	now := metav1.Now()
	pod.Status.Phase = v1.PodSucceeded
	pod.Status.Reason = "MockProviderPodDeleted"
	for i := range pod.Status.ContainerStatuses {
		started := now
		if running := pod.Status.ContainerStatuses[i].State.Running; running != nil {
			started = running.StartedAt
		}
		pod.Status.ContainerStatuses[i].Ready = false
		pod.Status.ContainerStatuses[i].State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			Reason: "MockProviderPodContainerDeleted", StartedAt: started, FinishedAt: now,
		}}
	}
	p.notifier(pod)
	return nil
}

func (p *mockProvider) GetPod(ctx context.Context, namespace, name string) (*v1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pod, ok := p.pods[key(namespace, name)]; ok {
		return pod, nil
	}
	return nil, errdefs.NotFoundf("pod %q is not known to the provider", key(namespace, name))
}

func (p *mockProvider) GetPodStatus(ctx context.Context, namespace, name string) (*v1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *mockProvider) GetPods(ctx context.Context) ([]*v1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pods := make([]*v1.Pod, 0, len(p.pods))
	for _, pod := range p.pods {
		pods = append(pods, pod)
	}
	return pods, nil
}

func (p *mockProvider) NotifyPods(ctx context.Context, notifier func(*v1.Pod)) { p.notifier = notifier }

func (p *mockProvider) GetContainerLogs(context.Context, string, string, string, api.ContainerLogOpts) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (p *mockProvider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return nil
}

func (p *mockProvider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return nil
}

func (p *mockProvider) GetStatsSummary(context.Context) (*stats.Summary, error) {
	return &stats.Summary{}, nil
}

func (p *mockProvider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}

func (p *mockProvider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return nil
}

func main() {
	nodeName := flag.String("nodename", "vk-tuned", "node name")
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig")
	qps := flag.Float64("kube-api-qps", 500, "Kubernetes client requests per second")
	burst := flag.Int("kube-api-burst", 1000, "Kubernetes client burst")
	workers := flag.Int("pod-sync-workers", 10, "pod sync workers (the reference binary's default)")
	pods := flag.String("pods", "5000", "pod capacity")
	flag.Parse()

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	config.QPS, config.Burst = float32(*qps), *burst
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	newProvider := func(cfg nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		capacity := v1.ResourceList{
			v1.ResourceCPU:    resource.MustParse("10000"),
			v1.ResourceMemory: resource.MustParse("100Ti"),
			v1.ResourcePods:   resource.MustParse(*pods),
		}
		cfg.Node.Status.Capacity, cfg.Node.Status.Allocatable = capacity, capacity
		cfg.Node.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "127.0.0.1"}}
		cfg.Node.Status.NodeInfo.OperatingSystem, cfg.Node.Status.NodeInfo.Architecture = "linux", "amd64"
		cfg.Node.Spec.Taints = []v1.Taint{{Key: "virtual-kubelet.io/provider", Value: "mock", Effect: v1.TaintEffectNoSchedule}}
		return &mockProvider{pods: map[string]*v1.Pod{}}, nil, nil
	}
	n, err := nodeutil.NewNode(*nodeName, newProvider, nodeutil.WithClient(client), func(cfg *nodeutil.NodeConfig) error {
		cfg.NumWorkers = *workers
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go n.Run(ctx) //nolint:errcheck
	if err := n.WaitReady(ctx, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
	case <-n.Done():
		if err := n.Err(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
