package daemon

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	cases := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "node name required", args: nil, wantErr: "--node-name or $NODE_NAME is required"},
		{name: "renew must beat the lease", args: []string{"--node-name=n", "--lease-duration=10s", "--lease-renew-interval=10s"}, wantErr: "must be shorter"},
		{name: "unknown flag", args: []string{"--node-name=n", "--nope"}, wantErr: "flag provided but not defined"},
		{name: "extra uplinks trimmed", args: []string{"--node-name=n", "--extra-uplinks= a, ,b"}, check: func(t *testing.T, o options) {
			if got := strings.Join(o.extraUplinks(), "|"); got != "a|b" {
				t.Errorf("uplinks = %q, want a|b", got)
			}
		}},
		{name: "log level defaults to info", args: []string{"--node-name=n"}, check: wantLevel(slog.LevelInfo)},
		{name: "log level debug", args: []string{"--node-name=n", "--log-level=debug"}, check: wantLevel(slog.LevelDebug)},
		{name: "log level info", args: []string{"--node-name=n", "--log-level=info"}, check: wantLevel(slog.LevelInfo)},
		{name: "log level warn", args: []string{"--node-name=n", "--log-level", "warn"}, check: wantLevel(slog.LevelWarn)},
		{name: "log level error", args: []string{"--node-name=n", "--log-level=error"}, check: wantLevel(slog.LevelError)},
		{name: "log level unknown", args: []string{"--node-name=n", "--log-level=verbose"}, wantErr: `unknown log level "verbose": want debug, info, warn or error`},
		{name: "log level offsets refused", args: []string{"--node-name=n", "--log-level=info+2"}, wantErr: "unknown log level"},
		{name: "log level empty", args: []string{"--node-name=n", "--log-level="}, wantErr: "unknown log level"},
		{name: "API timeout must be positive", args: []string{"--node-name=n", "--api-timeout=0s"}, wantErr: "--api-timeout and --health-max-round must be positive"},
		{name: "round bound must be positive", args: []string{"--node-name=n", "--health-max-round=-1s"}, wantErr: "must be positive"},
		{name: "health and API bounds", args: []string{"--node-name=n", "--api-timeout=5s", "--health-max-round=30s"}, check: func(t *testing.T, o options) {
			if o.apiTimeout != 5*time.Second || o.healthMaxRound != 30*time.Second {
				t.Errorf("apiTimeout=%v healthMaxRound=%v, want 5s and 30s", o.apiTimeout, o.healthMaxRound)
			}
		}},
		{name: "port limit must be positive", args: []string{"--node-name=n", "--vlan-counter-max-ports=0"}, wantErr: "--vlan-counter-max-ports must be positive"},
		{name: "port limit defaults to the chart's", args: []string{"--node-name=n"}, check: func(t *testing.T, o options) {
			if o.vlanMaxPorts != 64 {
				t.Errorf("vlanMaxPorts = %d, want 64", o.vlanMaxPorts)
			}
		}},
		{name: "metrics secure and probes on loopback by default", args: []string{"--node-name=n"}, check: func(t *testing.T, o options) {
			if !o.metricsSecure || o.metricsCertDir != "" || o.healthAddr != "127.0.0.1:8081" {
				t.Errorf("metricsSecure=%v metricsCertDir=%q healthAddr=%q, want true, self-signed, 127.0.0.1:8081", o.metricsSecure, o.metricsCertDir, o.healthAddr)
			}
		}},
		{name: "plain-HTTP metrics asked for", args: []string{"--node-name=n", "--metrics-secure=false", "--metrics-cert-path=/certs"}, check: func(t *testing.T, o options) {
			if o.metricsSecure || o.metricsCertDir != "/certs" {
				t.Errorf("metricsSecure=%v metricsCertDir=%q, want false and /certs", o.metricsSecure, o.metricsCertDir)
			}
		}},
		{name: "health and API bounds default", args: []string{"--node-name=n"}, check: func(t *testing.T, o options) {
			if o.apiTimeout != 30*time.Second || o.healthMaxRound != 2*time.Minute {
				t.Errorf("apiTimeout=%v healthMaxRound=%v, want 30s and 2m", o.apiTimeout, o.healthMaxRound)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, o)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if code := Run(nil); code != 2 {
		t.Errorf("run without a node name exited %d, want 2", code)
	}
	if code := Run([]string{"--node-name=n", "--log-level=loud"}); code != 2 {
		t.Errorf("run with a bad log level exited %d, want 2", code)
	}
}

func wantLevel(want slog.Level) func(*testing.T, options) {
	return func(t *testing.T, o options) {
		if o.logLevel != want {
			t.Errorf("log level = %v, want %v", o.logLevel, want)
		}
	}
}

// TestLoggerLevel checks the level reaches the handler: what is logged at
// each level, including logr's V(1), which only debug shows.
func TestLoggerLevel(t *testing.T) {
	cases := []struct {
		level slog.Level
		want  []string // messages that must appear; the others must not
	}{
		{level: slog.LevelDebug, want: []string{"v1", "info", "error"}},
		{level: slog.LevelInfo, want: []string{"info", "error"}},
		{level: slog.LevelWarn, want: []string{"error"}},
		{level: slog.LevelError, want: []string{"error"}},
	}
	for _, tc := range cases {
		t.Run(tc.level.String(), func(t *testing.T) {
			var out strings.Builder
			log := newLogger(&out, tc.level)
			log.V(1).Info("v1")
			log.Info("info")
			log.Error(errors.New("boom"), "error")
			for _, msg := range []string{"v1", "info", "error"} {
				logged := strings.Contains(out.String(), `"msg":"`+msg+`"`)
				if logged != slices.Contains(tc.want, msg) {
					t.Errorf("level %v: %q logged=%v; output:\n%s", tc.level, msg, logged, out.String())
				}
			}
		})
	}
}
