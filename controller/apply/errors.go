package apply

import (
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Reasons for a write the apiserver refused, as condition reasons.
const (
	// ReasonQuotaExceeded: a ResourceQuota refused the object.
	ReasonQuotaExceeded = "QuotaExceeded"
	// ReasonAdmissionDenied: an admission webhook or policy refused it.
	ReasonAdmissionDenied = "AdmissionDenied"
	// ReasonForbidden: RBAC refused the controller.
	ReasonForbidden = "Forbidden"
	// ReasonInvalid: the apiserver found the object invalid.
	ReasonInvalid = "Invalid"
	// ReasonAPIError: anything else (timeouts, 5xx, throttling): worth a retry,
	// and until one succeeds the outcome is unknown.
	ReasonAPIError = "APIError"
)

// Classify turns an API error into a condition reason, and says whether it
// is definitive — the apiserver said no and will keep saying no until
// someone changes something (quota, policy, RBAC, the spec) — or transient.
func Classify(err error) (reason string, definitive bool) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return ReasonAPIError, false
	}
	message := status.Status().Message
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(message, "exceeded quota"):
		return ReasonQuotaExceeded, true
	case strings.Contains(message, "admission webhook") && strings.Contains(message, "denied the request"),
		strings.Contains(message, "ValidatingAdmissionPolicy"):
		return ReasonAdmissionDenied, true
	case apierrors.IsForbidden(err):
		return ReasonForbidden, true
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return ReasonInvalid, true
	}
	return ReasonAPIError, false
}
