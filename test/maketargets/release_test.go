package maketargets

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// TestReleaseTagChecksBeforeTagging: make release-tag tags only a clean
// tree whose chart (version and appVersion) and changelog name the
// release, never twice, and pushes nothing. It runs the project's Makefile
// in a throwaway git repository holding the files the recipe reads.
func TestReleaseTagChecksBeforeTagging(t *testing.T) {
	repo := t.TempDir()
	root := controlplane.RepoRoot()
	copyFile(t, filepath.Join(root, "Makefile"), filepath.Join(repo, "Makefile"))
	copyFile(t, filepath.Join(root, "deploy", "chart", "Chart.yaml"), filepath.Join(repo, "deploy", "chart", "Chart.yaml"))
	writeFile(t, filepath.Join(repo, "CHANGELOG.md"), "# Changelog\n\n## [Unreleased]\n")
	git(t, repo, "init", "-q")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "start")

	refused := func(want string, args ...string) {
		t.Helper()
		out, err := releaseTag(repo, args...)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("make release-tag %v: err %v, want a refusal saying %q:\n%s", args, err, want, out)
		}
		if tags := git(t, repo, "tag", "--list"); tags != "" {
			t.Fatalf("make release-tag %v refused but tagged %q", args, tags)
		}
	}

	refused("name the release")
	refused("is not X.Y.Z", "VERSION=9.9")
	refused("has version 0.2.0 and appVersion 0.2.0, not 9.9.9", "VERSION=9.9.9")

	chart := filepath.Join(repo, "deploy", "chart", "Chart.yaml")
	raw, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	bumped := strings.ReplaceAll(string(raw), "0.2.0", "9.9.9")
	if !strings.Contains(bumped, "version: 9.9.9") || !strings.Contains(bumped, `appVersion: "9.9.9"`) {
		t.Fatalf("Chart.yaml no longer says version 0.2.0 and appVersion \"0.2.0\"; update this test:\n%s", raw)
	}
	writeFile(t, chart, bumped)
	refused("the tree has changes", "VERSION=9.9.9")
	git(t, repo, "commit", "-q", "-am", "chart 9.9.9")
	refused("CHANGELOG.md has no '## [9.9.9] - YYYY-MM-DD' section", "VERSION=9.9.9")

	writeFile(t, filepath.Join(repo, "CHANGELOG.md"), "# Changelog\n\n## [Unreleased]\n\n## [9.9.9] - 2026-12-07\n")
	git(t, repo, "commit", "-q", "-am", "changelog 9.9.9")
	out, err := releaseTag(repo, "VERSION=9.9.9")
	if err != nil {
		t.Fatalf("make release-tag VERSION=9.9.9 on a ready tree: %v\n%s", err, out)
	}
	if kind := git(t, repo, "cat-file", "-t", "v9.9.9"); kind != "tag" {
		t.Fatalf("v9.9.9 is a %q, want an annotated tag", kind)
	}
	if tagged, head := git(t, repo, "rev-parse", "v9.9.9^{commit}"), git(t, repo, "rev-parse", "HEAD"); tagged != head {
		t.Fatalf("v9.9.9 tags %s, want HEAD %s", tagged, head)
	}
	if !strings.Contains(out, "nothing pushed") {
		t.Errorf("make release-tag does not say it pushed nothing:\n%s", out)
	}
	if out, err := releaseTag(repo, "VERSION=9.9.9"); err == nil || !strings.Contains(out, "tag v9.9.9 exists") {
		t.Fatalf("make release-tag VERSION=9.9.9 a second time: err %v, want a refusal saying the tag exists:\n%s", err, out)
	}
}

// releaseTag runs make release-tag in dir with VERSION only where args set
// it, and a git identity of its own.
func releaseTag(dir string, args ...string) (string, error) {
	cmd := exec.Command("make", append([]string{"--no-print-directory", "release-tag"}, args...)...)
	cmd.Dir = dir
	cmd.Env = testGitEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = testGitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// testGitEnv is this process's environment without VERSION (the recipe
// must see it only from the command line) and with a git identity, so the
// test runs the same under any user's git configuration.
func testGitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERSION=") && !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(raw))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
