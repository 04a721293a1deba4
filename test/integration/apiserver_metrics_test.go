package integration

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
)

// apiserverWrites reads kube-apiserver's own count of write requests
// (apiserver_request_total for POST, PUT, PATCH, APPLY and DELETE), by
// resource, leaving out leases (the apiserver's and agents' heartbeats).
func apiserverWrites(t *testing.T) map[string]float64 {
	t.Helper()
	clientset, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientset.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]float64{}
	scanner := bufio.NewScanner(strings.NewReader(string(raw)))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels := line[strings.Index(line, "{")+1 : strings.LastIndex(line, "}")]
		verb, resource, subresource := label(labels, "verb"), label(labels, "resource"), label(labels, "subresource")
		if resource == "leases" || !strings.Contains(" POST PUT PATCH APPLY DELETE ", " "+verb+" ") {
			continue
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndex(line, " "):]), 64)
		if err != nil {
			continue
		}
		if subresource != "" {
			resource += "/" + subresource
		}
		writes[verb+" "+resource] += value
	}
	return writes
}

func label(labels, name string) string {
	for _, pair := range strings.Split(labels, ",") {
		if key, value, ok := strings.Cut(pair, "="); ok && key == name {
			return strings.Trim(value, `"`)
		}
	}
	return ""
}

// writesSince is the total and breakdown of apiserver writes after before.
func writesSince(t *testing.T, before map[string]float64) (float64, string) {
	t.Helper()
	total := 0.0
	var lines []string
	for key, n := range apiserverWrites(t) {
		if delta := n - before[key]; delta > 0 {
			total += delta
			lines = append(lines, fmt.Sprintf("%s=%.0f", key, delta))
		}
	}
	sort.Strings(lines)
	return total, strings.Join(lines, " ")
}
