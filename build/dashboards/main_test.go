package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type panelJSON struct {
	Type       string `json:"type"`
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type dashboardJSON struct {
	UID        string      `json:"uid"`
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

// TestDashboardsAreCurrentAndComplete: what the generator builds is what
// deploy/dashboards holds, byte for byte (make verify checks it too), each
// panel queries the chosen Prometheus with at least one expression, panel
// ids are unique, and the node dashboard can be narrowed to a node, an
// interface and a VLAN.
func TestDashboardsAreCurrentAndComplete(t *testing.T) {
	dir := t.TempDir()
	for file, builder := range dashboards() {
		if err := write(filepath.Join(dir, file), builder); err != nil {
			t.Fatal(err)
		}
		generated, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("..", "..", "deploy", "dashboards", file))
		if err != nil {
			t.Fatal(err)
		}
		if string(generated) != string(committed) {
			t.Errorf("deploy/dashboards/%s is stale: run make generate", file)
		}
		var board dashboardJSON
		if err := json.Unmarshal(generated, &board); err != nil {
			t.Fatal(err)
		}
		ids := map[int]bool{}
		queries := 0
		for _, p := range board.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", file, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q: datasource %q, %d queries", file, p.Title, p.Datasource.UID, len(p.Targets))
			}
			for _, target := range p.Targets {
				if strings.TrimSpace(target.Expr) == "" {
					t.Errorf("%s: panel %q has an empty query", file, p.Title)
				}
				queries++
			}
		}
		var variables []string
		for _, v := range board.Templating.List {
			variables = append(variables, v.Name)
		}
		if !slices.Contains(variables, "datasource") {
			t.Errorf("%s: no datasource variable (%v)", file, variables)
		}
		if board.UID == "vmop-node-network" && (!slices.Contains(variables, "node") || !slices.Contains(variables, "interface") || !slices.Contains(variables, "vlan")) {
			t.Errorf("%s: variables %v, want node, interface and vlan", file, variables)
		}
		t.Logf("%s: %d panels, %d queries, variables %v", file, len(board.Panels), queries, variables)
	}
}
