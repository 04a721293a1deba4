// Command bench measures vmop-controller at scale, in one run on one test
// control plane: a raw client writes every profile's children first (the
// apiserver's pace), then the controller reconciles as many profiles. It
// prints a table and writes the numbers as JSON. `make bench` runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jianfenliu/vmoperator/test/scale"
)

// Children is how many objects the controller makes per benchmark profile
// (NAD, PVC, VM; the cloud-init is inline in the VM): the write target is
// this plus 2.
const children = 3

func main() {
	options := scale.BenchOptions{}
	flag.IntVar(&options.Profiles, "profiles", 1000, "how many profiles")
	flag.IntVar(&options.Workers, "workers", 16, "how many goroutines create profiles (and the raw client's children)")
	flag.IntVar(&options.Nodes, "nodes", 20, "how many simulated nodes")
	flag.DurationVar(&options.Rest, "rest", time.Minute, "how long to count writes once every profile is Running (10m for the record)")
	controllerArgs := flag.String("controller-args", "", "extra vmop-controller flags, space-separated")
	controllerEnv := flag.String("controller-env", "", "extra environment variables for vmop-controller (NAME=value), space-separated")
	jsonPath := flag.String("json", "", "also write the result as JSON to this file")
	flag.Parse()
	options.ControllerArgs = strings.Fields(*controllerArgs)
	options.ControllerEnv = strings.Fields(*controllerEnv)
	options.Progress = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	result, err := scale.Bench(context.Background(), options)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	printTable(os.Stdout, result)
	if *jsonPath != "" {
		raw, err := json.MarshalIndent(result, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonPath, append(raw, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func printTable(out io.Writer, r *scale.BenchResult) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "vmop-controller, %d profiles created by %d workers, %d nodes; flags: %s; environment: %s\n", r.Profiles, r.Workers, r.Nodes, strings.Join(r.ControllerArgs, " "), strings.Join(r.ControllerEnv, " "))
	fmt.Fprintln(w, "what\tmeasured\ttarget\t")
	fmt.Fprintf(w, "raw client: every profile's 4 children\t%.2f s\t\t\n", r.RawChildren)
	fmt.Fprintf(w, "controller: profiles created\t%.2f s\t\t\n", r.ProfilesCreated)
	fmt.Fprintf(w, "controller: every VM exists\t%.2f s\t\t\n", r.AllVMs)
	fmt.Fprintf(w, "  ratio to the raw client\t%.2f\t≤ 1.5 %s\t\n", r.Ratio, verdict(r.Ratio <= 1.5))
	fmt.Fprintf(w, "  CPU until then: controller / apiserver+etcd\t%.1f / %.1f s\t\t\n", r.ControllerCPUToVMs, r.APIServerCPUToVMs)
	fmt.Fprintf(w, "  (raw client phase: apiserver+etcd)\t%.1f s\t\t\n", r.APIServerCPURaw)
	fmt.Fprintf(w, "controller: every profile Running\t%.2f s\t\t\n", r.AllRunning)
	fmt.Fprintf(w, "writes per profile to Running\t%.2f\t≤ %d %s\t\n", r.WritesPerProfile, children+2, verdict(r.WritesPerProfile <= children+2))
	for _, key := range scale.SortedKeys(r.Writes) {
		fmt.Fprintf(w, "  %s\t%.2f\t\t\n", key, float64(r.Writes[key])/float64(r.Profiles))
	}
	fmt.Fprintf(w, "  (leader election Lease renewals, apart)\t%d\t\t\n", r.LeaseWrites)
	atRest := 0
	for _, n := range r.WritesAtRest {
		atRest += n
	}
	fmt.Fprintf(w, "writes at rest in %.0f s\t%d\t0 %s\t\n", r.Rest, atRest, verdict(atRest == 0))
	for _, key := range scale.SortedKeys(r.WritesAtRest) {
		fmt.Fprintf(w, "  %s\t%d\t\t\n", key, r.WritesAtRest[key])
	}
	fmt.Fprintf(w, "controller RSS idle / peak / at rest\t%.1f / %.1f / %.1f MiB\t\t\n", r.RSSIdleMiB, r.RSSPeakMiB, r.RSSRestMiB)
	fmt.Fprintf(w, "  per 1,000 profiles above idle\t%.1f MiB\t≤ 30 %s\t\n", r.RSSPer1000MiB, verdict(r.RSSPer1000MiB <= 30))
	w.Flush()
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT MET"
}
