// Command nodestack-hello is the test image of internal/testing/nodestack: it
// logs one line naming its pod, then answers every HTTP request on :8080 with
// "hello from <hostname>", so a test can read its logs through the kubelet
// and reach it through a Service; with the argument hostname it prints the
// hostname and exits, for exec.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	hostname, err := os.Hostname()
	if err != nil {
		log.Fatalf("hostname: %v", err)
	}
	// `nodestack-hello hostname` prints the hostname and exits: the
	// image has no shell, and a test execs this in the running container.
	if len(os.Args) > 1 && os.Args[1] == "hostname" {
		fmt.Println(hostname)
		return
	}
	greeting := "hello from " + hostname
	fmt.Println(greeting + ": serving on :8080")
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, greeting)
	})
	server := &http.Server{Addr: ":8080", ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(server.ListenAndServe())
}
