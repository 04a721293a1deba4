package integration

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// freeLoopbackAddress is a loopback port free right now, for the suite's
// controller to serve /metrics on as the chart runs it: HTTPS, a
// self-signed certificate, behind the authn/authz filter.
func freeLoopbackAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// TestControllerMetricsNeedAnAuthorizedToken: the controller, running with
// exactly its generated role, serves /metrics to a ServiceAccount token
// bound to the chart's metrics-reader rules, and refuses a request without
// a token (401), an authenticated token without GET /metrics (403) and
// plain HTTP. Its TokenReviews and SubjectAccessReviews pass its own RBAC:
// were they refused, the filter would answer 500.
func TestControllerMetricsNeedAnAuthorizedToken(t *testing.T) {
	ctx := context.Background()
	newToken := func(name string, canRead bool) string {
		scraper, err := cluster.NewScraper(ctx, "default", name, canRead, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = scraper.Delete(ctx, cluster) })
		return scraper.Token
	}
	reader, outsider := newToken("scraper-controller", true), newToken("outsider-controller", false)
	url := "https://" + controllerMetricsAddress + "/metrics"
	code, body := 0, ""
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, body = controlplane.ScrapeHTTPS(url, reader); code == http.StatusOK {
			break
		}
	}
	if code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Fatalf("/metrics with a metrics-reader token = %d %.300q, want 200 and controller-runtime's metrics", code, body)
	}
	if code, body := controlplane.ScrapeHTTPS(url, ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %d %.300q, want 401", code, body)
	}
	if code, body := controlplane.ScrapeHTTPS(url, outsider); code != http.StatusForbidden {
		t.Errorf("/metrics with a token not allowed GET /metrics = %d %.300q, want 403", code, body)
	}
	response, err := http.Get("http://" + controllerMetricsAddress + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	response.Body.Close()
	if response.StatusCode != http.StatusBadRequest {
		t.Errorf("plain-HTTP /metrics = %d, want 400 from the TLS server", response.StatusCode)
	}
}
