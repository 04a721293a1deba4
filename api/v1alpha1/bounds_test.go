package v1alpha1

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func TestTruncate(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short stays", "kvm missing", 20, "kvm missing"},
		{"exactly the bound stays", "abcde", 5, "abcde"},
		{"one over is cut with an ellipsis", "abcdef", 5, "abcd…"},
		{"multi-byte characters count once", "äöüßé", 5, "äöüßé"},
		{"a cut never splits a character", "日本語のテキスト", 4, "日本語…"},
		{"a bound of one is the ellipsis", "abc", 1, "…"},
		{"a bound of zero is empty", "abc", 0, ""},
		{"empty stays empty", "", 3, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Truncate(c.in, c.max)
			if got != c.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("%q is not valid UTF-8", got)
			}
		})
	}
}

// TestTruncateMegabyte: a 1 MiB reason of mixed one- to four-byte
// characters ends up exactly at the bound, a valid string whose start is
// the original's.
func TestTruncateMegabyte(t *testing.T) {
	unit := "a€𝄞ü" // 1, 3, 4 and 2 bytes
	huge := strings.Repeat(unit, (1<<20)/len(unit))
	for _, max := range []int{MaxExclusionReasonLength, MaxAgentMessageLength, MaxVLANListLength} {
		got := Truncate(huge, max)
		if n := utf8.RuneCountInString(got); n != max || !utf8.ValidString(got) {
			t.Fatalf("bound %d: %d characters, valid %v", max, n, utf8.ValidString(got))
		}
		if kept := strings.TrimSuffix(got, Ellipsis); !strings.HasPrefix(huge, kept) || kept == got {
			t.Fatalf("bound %d: not the original's start followed by the ellipsis", max)
		}
	}
}

// TestLongestVLANListFits: the longest list FormatVLANs can write for VLAN
// ids 0 to 4095, found by dynamic programming over where each run starts
// and ends, is within MaxVLANListLength, and the pattern that reaches it
// (runs of two, gaps of one) formats to exactly that length. A run of more
// than two ids writes no more text than a run of two and leaves fewer ids
// for the rest, so runs of up to four ids are enough to try.
func TestLongestVLANListFits(t *testing.T) {
	const top = 4095
	// longest[i] is the longest text (each run with its leading comma) that
	// ids i..top can contribute; a run longer than two only shortens it.
	longest := make([]int, top+3)
	for i := top; i >= 0; i-- {
		longest[i] = longest[i+1]
		for j := i; j <= min(i+3, top); j++ {
			text := 1 + len(strconv.Itoa(i))
			if j > i {
				text += 1 + len(strconv.Itoa(j))
			}
			longest[i] = max(longest[i], text+longest[min(j+2, top+1)])
		}
	}
	worst := longest[0] - 1 // no comma before the first run
	var pairs []int
	for id := 0; id <= top; id += 3 {
		pairs = append(pairs, id, min(id+1, top))
	}
	pairs = slices.Compact(pairs)
	formatted := FormatVLANs(pairs)
	t.Logf("longest VLAN list: %d characters (runs of two: %d); bound %d", worst, len(formatted), MaxVLANListLength)
	if worst > MaxVLANListLength {
		t.Fatalf("a VLAN list can take %d characters, over the bound of %d", worst, MaxVLANListLength)
	}
	if len(formatted) > worst {
		t.Fatalf("runs of two format to %d characters, more than the computed longest %d", len(formatted), worst)
	}
	if len(FormatVLANs(rangeOf(1, 4094))) > MaxVLANListLength {
		t.Fatal("every VLAN does not fit")
	}
}

func rangeOf(from, to int) []int {
	var ids []int
	for id := from; id <= to; id++ {
		ids = append(ids, id)
	}
	return ids
}

// TestCRDMaxLengthsMatchBounds: every string of the generated
// NodeCapability CRD has a maxLength (metav1.Condition brings its own), and
// those that code truncates to a shared bound carry that bound; the
// profile CRD's exclusion reason carries the controller's cut.
func TestCRDMaxLengthsMatchBounds(t *testing.T) {
	nodeCapability := loadSchema(t, "vm.example.com_nodecapabilities.yaml")
	lengths := map[string]int64{}
	var unbounded []string
	walkStrings(nodeCapability.Properties["status"], "status", func(path string, s apiextensionsv1.JSONSchemaProps) {
		if strings.HasPrefix(path, "status.conditions[].") {
			return // metav1.Condition: reason 1024, message 32768, as in every API
		}
		if s.MaxLength == nil {
			unbounded = append(unbounded, path)
			return
		}
		lengths[path] = *s.MaxLength
	})
	if len(unbounded) > 0 {
		t.Errorf("NodeCapability strings without maxLength: %v", unbounded)
	}
	want := map[string]int64{
		"status.kvm.reason":              MaxAgentMessageLength,
		"status.policies[].message":      MaxAgentMessageLength,
		"status.policies[].kernel":       MaxAgentMessageLength,
		"status.bridges[].ports[].vlans": MaxVLANListLength,
		"status.bridges[].name":          MaxInterfaceNameLength,
		"status.bridges[].ports[].name":  MaxInterfaceNameLength,
		"status.vlans[].name":            MaxInterfaceNameLength,
		"status.vlans[].parent":          MaxInterfaceNameLength,
		"status.bonds[].name":            MaxInterfaceNameLength,
		"status.bonds[].members[]":       MaxInterfaceNameLength,
		"status.bonds[].activeMember":    MaxInterfaceNameLength,
		"status.ovsBridges[].name":       MaxInterfaceNameLength,
		"status.uplinks[].name":          MaxInterfaceNameLength,
		"status.sriov[].name":            MaxInterfaceNameLength,
	}
	for path, bound := range want {
		if lengths[path] != bound {
			t.Errorf("%s: maxLength %d, want %d", path, lengths[path], bound)
		}
	}
	profile := loadSchema(t, "vm.example.com_virtualmachineprofiles.yaml")
	excluded := profile.Properties["status"].Properties["placement"].Properties["excluded"].Items.Schema
	if got := excluded.Properties["reason"].MaxLength; got == nil || *got != MaxExclusionReasonLength {
		t.Errorf("status.placement.excluded[].reason: maxLength %v, want %d", got, MaxExclusionReasonLength)
	}
	t.Logf("%d NodeCapability strings bounded", len(lengths))
}

func loadSchema(t *testing.T, file string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/crds/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return *crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

// walkStrings calls visit with every string property under s, lists
// written as "[]".
func walkStrings(s apiextensionsv1.JSONSchemaProps, path string, visit func(string, apiextensionsv1.JSONSchemaProps)) {
	switch s.Type {
	case "string":
		visit(path, s)
	case "object":
		for name, property := range s.Properties {
			walkStrings(property, path+"."+name, visit)
		}
	case "array":
		if s.Items != nil && s.Items.Schema != nil {
			walkStrings(*s.Items.Schema, path+"[]", visit)
		}
	}
}
