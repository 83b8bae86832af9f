package fresh

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// network is a named network namespace with a veth pair to the host and NAT out, so the root
// reaches the package registries while its loopback (and the twin's ports on it) is its own.
type network struct {
	ns, host, peer, subnet string
	forward                string // previous net.ipv4.ip_forward
}

const (
	nsName   = "zops-fresh"
	hostIf   = "zfresh-h"
	peerIf   = "zfresh-c"
	hostAddr = "10.77.53.1"
	peerAddr = "10.77.53.2"
	subnet   = "10.77.53.0/30"
)

const forwardFile = "/proc/sys/net/ipv4/ip_forward"

// nat are the rules added (with -A) and removed (with -D) again.
var nat = [][]string{
	{"-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", hostIf, "-j", "MASQUERADE"},
	{"FORWARD", "-i", hostIf, "-j", "ACCEPT"},
	{"FORWARD", "-o", hostIf, "-j", "ACCEPT"},
}

func ruleArgs(op string, r []string) []string {
	if r[0] == "-t" {
		return append([]string{"iptables", "-w", r[0], r[1], op}, r[2:]...)
	}
	return append([]string{"iptables", "-w", op}, r...)
}

func newNetwork(ctx context.Context, logf func(string, ...any)) (*network, error) {
	n := &network{ns: nsName, host: hostIf, peer: peerIf, subnet: subnet}
	n.teardown(ctx) // a previous run killed before its clean-up
	steps := [][]string{
		{"ip", "netns", "add", nsName},
		{"ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf},
		{"ip", "link", "set", peerIf, "netns", nsName},
		{"ip", "addr", "add", hostAddr + "/30", "dev", hostIf},
		{"ip", "link", "set", hostIf, "up"},
		{"ip", "netns", "exec", nsName, "ip", "addr", "add", peerAddr + "/30", "dev", peerIf},
		{"ip", "netns", "exec", nsName, "ip", "link", "set", peerIf, "up"},
		{"ip", "netns", "exec", nsName, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", nsName, "ip", "route", "add", "default", "via", hostAddr},
	}
	for _, r := range nat {
		steps = append(steps, ruleArgs("-A", r))
	}
	for _, s := range steps {
		if err := run(ctx, nil, s...); err != nil {
			n.teardown(ctx)
			return nil, fmt.Errorf("fresh: network namespace: %w", err)
		}
	}
	if b, err := os.ReadFile(forwardFile); err == nil {
		n.forward = strings.TrimSpace(string(b))
	}
	if err := os.WriteFile(forwardFile, []byte("1\n"), 0o644); err != nil {
		n.teardown(ctx)
		return nil, fmt.Errorf("fresh: enable IP forwarding for the namespace's NAT: %w", err)
	}
	logf("network namespace %s: %s via veth %s, NAT to the registries", nsName, peerAddr, hostIf)
	return n, nil
}

// close removes the namespace, the veth pair and the rules, and restores IP forwarding.
func (n *network) close(ctx context.Context) {
	n.teardown(ctx)
	if n.forward != "" && n.forward != "1" {
		_ = os.WriteFile(forwardFile, []byte(n.forward+"\n"), 0o644)
	}
}

// teardown undoes every step; steps that were not done fail quietly.
func (n *network) teardown(ctx context.Context) {
	for _, r := range nat {
		// -D removes one copy: repeat while a copy is left.
		for i := 0; i < 5 && run(ctx, nil, ruleArgs("-D", r)...) == nil; i++ {
		}
	}
	_ = run(ctx, nil, "ip", "link", "del", hostIf)
	_ = run(ctx, nil, "ip", "netns", "del", nsName)
}
