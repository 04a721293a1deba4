package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MetricsReaderRules are what the chart's <release>-metrics-reader
// ClusterRole grants a scraper (test/chart checks the chart agrees): GET on
// /metrics, which both components' metrics filter asks the apiserver about.
func MetricsReaderRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
}

// Scraper is a ServiceAccount and a bearer token for it.
type Scraper struct {
	Token string
	// objects are what NewScraper created, for Delete.
	objects []client.Object
}

// NewScraper creates ServiceAccount name in namespace and, when canRead,
// a ClusterRole with MetricsReaderRules bound to it; it returns a token of
// the account valid for lifetime. Without canRead the token authenticates
// but is not authorized: the metrics filter must answer 403.
func (cp *ControlPlane) NewScraper(ctx context.Context, namespace, name string, canRead bool, lifetime time.Duration) (*Scraper, error) {
	if !canRead {
		return cp.NewScraperBoundTo(ctx, namespace, name, "", lifetime)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: MetricsReaderRules()}
	if err := cp.Client.Create(ctx, role); err != nil {
		return nil, fmt.Errorf("scraper %s/%s: create ClusterRole: %w", namespace, name, err)
	}
	scraper, err := cp.NewScraperBoundTo(ctx, namespace, name, name, lifetime)
	if err != nil {
		return nil, errors.Join(err, client.IgnoreNotFound(cp.Client.Delete(ctx, role)))
	}
	scraper.objects = append(scraper.objects, role)
	return scraper, nil
}

// NewScraperBoundTo creates ServiceAccount name in namespace, bound to the
// existing ClusterRole clusterRole (none when empty; the chart's
// metrics-reader for instance), and returns a token of it valid for
// lifetime (TokenRequest: the apiserver signs it, no controller needed).
func (cp *ControlPlane) NewScraperBoundTo(ctx context.Context, namespace, name, clusterRole string, lifetime time.Duration) (*Scraper, error) {
	scraper := &Scraper{}
	objects := []client.Object{&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}}
	if clusterRole != "" {
		objects = append(objects, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
		})
	}
	for _, obj := range objects {
		if err := cp.Client.Create(ctx, obj); err != nil {
			return nil, errors.Join(fmt.Errorf("scraper %s/%s: create %T: %w", namespace, name, obj, err), scraper.Delete(ctx, cp))
		}
		scraper.objects = append(scraper.objects, obj)
	}
	clientset, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, errors.Join(err, scraper.Delete(ctx, cp))
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(lifetime.Seconds()))}}
	issued, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, request, metav1.CreateOptions{})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("token of scraper %s/%s: %w", namespace, name, err), scraper.Delete(ctx, cp))
	}
	scraper.Token = issued.Status.Token
	return scraper, nil
}

// Delete removes what NewScraper created.
func (s *Scraper) Delete(ctx context.Context, cp *ControlPlane) error {
	var errs []error
	for _, obj := range s.objects {
		errs = append(errs, client.IgnoreNotFound(cp.Client.Delete(ctx, obj)))
	}
	s.objects = nil
	return errors.Join(errs...)
}

// ScrapeHTTPS gets url with token as bearer (none when empty), accepting
// the components' self-signed certificates as the chart's PodMonitor does
// (insecureSkipVerify). It returns the status code and body, or 0 and the
// error when no HTTP answer came.
func ScrapeHTTPS(url, token string) (int, string) {
	httpClient := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed, as in the chart
	}
	defer httpClient.CloseIdleConnections()
	request, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		request.Header.Set("Authorization", "Bearer "+token)
	}
	response, err := httpClient.Do(request)
	if err != nil {
		return 0, err.Error()
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	return response.StatusCode, string(body)
}
