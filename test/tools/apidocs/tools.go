//go:build tools

// Package tools pins crd-ref-docs, built into bin/ for make api-docs.
package tools

import _ "github.com/elastic/crd-ref-docs"
