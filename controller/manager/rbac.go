package manager

// The permissions of the secure /metrics endpoint, for make manifests:
// each scrape's bearer token is checked with a TokenReview and its user's
// right to GET /metrics with a SubjectAccessReview (both cached), as
// controller-runtime's metrics filter does. Both are create-only reviews
// that read nothing stored.
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
