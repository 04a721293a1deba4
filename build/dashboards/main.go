// Command dashboards writes the Grafana dashboards of vmoperator, built with
// the Grafana Foundation SDK, into deploy/dashboards as JSON. `make
// generate` runs it and `make verify` fails when the files are stale; the
// chart ships them as ConfigMaps for Grafana's dashboard sidecar
// (monitoring.dashboards).
//
// Usage: go run ./build/dashboards -out deploy/dashboards
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

func main() {
	out := flag.String("out", "deploy/dashboards", "folder to write the dashboards to")
	flag.Parse()
	for file, builder := range dashboards() {
		if err := write(filepath.Join(*out, file), builder); err != nil {
			fmt.Fprintf(os.Stderr, "dashboards: %s: %v\n", file, err)
			os.Exit(1)
		}
	}
}

// dashboards are the dashboards by file name.
func dashboards() map[string]*dashboard.DashboardBuilder {
	return map[string]*dashboard.DashboardBuilder{
		"vmop-node-network.json": nodeNetwork(),
		"vmop-profiles.json":     profiles(),
	}
}

func write(path string, builder *dashboard.DashboardBuilder) error {
	board, err := builder.Build()
	if err != nil {
		return fmt.Errorf("dashboard %s: %w", path, err)
	}
	numberPanels(&board)
	raw, err := json.MarshalIndent(board, "", "  ")
	if err != nil {
		return fmt.Errorf("dashboard %s: encode: %w", path, err)
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

// numberPanels gives rows and panels the ids 1, 2, 3... in order: the
// builders leave panels without one and rows at 0, and Grafana links and
// embeds panels by id.
func numberPanels(board *dashboard.Dashboard) {
	for i := range board.Panels {
		id := uint32(i + 1)
		switch p := board.Panels[i]; {
		case p.Panel != nil:
			p.Panel.Id = &id
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
}

// datasource is the dashboards' Prometheus, chosen by the datasource variable.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

func newDashboard(title, uid, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"vmoperator"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus"))
}

// queryVariable is a multi-value variable of one label's values, "All" by default.
func queryVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*")
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend).Datasource(datasource())
}

func graph(title, description, unit string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	panel := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Height(8).
		Span(12)
	for _, q := range queries {
		panel.WithTarget(q)
	}
	return panel
}

// single is a stat panel of one count (unit none).
func single(title, description string, q *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit("none").
		Height(5).
		Span(6).
		WithTarget(q.Instant())
}

// nodeNetwork is node network health per node, uplink and bridge, from the
// agents' series. The PodMonitor (and make dev's Prometheus) label each
// agent's series with its node.
func nodeNetwork() *dashboard.DashboardBuilder {
	links := `node=~"$node", interface=~"$interface"`
	vlans := links + `, vlan=~"$vlan"`
	return newDashboard("vmoperator / Node network health", "vmop-node-network",
		"Carrier, flaps, errors and drops of the bridges, uplinks, bonds and PFs that HostNetworks use; traffic and dropped frames per VLAN; SR-IOV VFs; nmstate policies verified in the kernel; agent liveness.").
		WithVariable(queryVariable("node", "Node", `label_values(vmop_node_build_info, node)`)).
		WithVariable(queryVariable("interface", "Bridge or uplink", `label_values(vmop_node_link_up{node=~"$node"}, interface)`)).
		WithVariable(queryVariable("vlan", "VLAN", `label_values(vmop_node_vlan_packets_total{node=~"$node", interface=~"$interface"}, vlan)`)).
		WithRow(dashboard.NewRowBuilder("Agents")).
		WithPanel(single("Nodes reporting", "Agents whose Lease is current, as the controller's leader sees them.",
			query(`count(vmop_agent_lease_expiry_timestamp_seconds{node=~"$node"} > time())`, "reporting"))).
		WithPanel(single("Nodes with KVM", "Agents that opened /dev/kvm and got KVM API 12.",
			query(`sum(vmop_node_kvm_available{node=~"$node"})`, "KVM"))).
		WithPanel(single("Policies not verified", "nmstate policies that select a node and that the node's kernel does not match.",
			query(`sum(vmop_node_policies{node=~"$node", state="unverified"})`, "unverified"))).
		WithPanel(single("Links without carrier", "Administratively up, no carrier.",
			query(`count((vmop_node_link_carrier{`+links+`} == 0) and on(node, interface) (vmop_node_link_up == 1)) or vector(0)`, "no carrier"))).
		WithRow(dashboard.NewRowBuilder("Links")).
		WithPanel(graph("Carrier", "1 with carrier, 0 without, per node and interface (role in brackets).", "none",
			query(`vmop_node_link_carrier{`+links+`}`, "{{node}} {{interface}} ({{role}})"))).
		WithPanel(graph("Carrier changes", "Carrier transitions per interval, from the kernel's own counter: flaps between two probes count.", "none",
			query(`increase(vmop_node_link_carrier_changes_total{`+links+`}[$__rate_interval])`, "{{node}} {{interface}}"))).
		WithPanel(graph("Errors", "Receive and transmit errors per second.", "pps",
			query(`rate(vmop_node_link_receive_errors_total{`+links+`}[$__rate_interval])`, "{{node}} {{interface}} rx"),
			query(`rate(vmop_node_link_transmit_errors_total{`+links+`}[$__rate_interval])`, "{{node}} {{interface}} tx"))).
		WithPanel(graph("Drops", "Receive and transmit drops per second.", "pps",
			query(`rate(vmop_node_link_receive_drops_total{`+links+`}[$__rate_interval])`, "{{node}} {{interface}} rx"),
			query(`rate(vmop_node_link_transmit_drops_total{`+links+`}[$__rate_interval])`, "{{node}} {{interface}} tx"))).
		WithPanel(graph("Traffic", "Bits per second through each interface.", "bps",
			query(`rate(vmop_node_link_receive_bytes_total{`+links+`}[$__rate_interval]) * 8`, "{{node}} {{interface}} rx"),
			query(`rate(vmop_node_link_transmit_bytes_total{`+links+`}[$__rate_interval]) * 8`, "{{node}} {{interface}} tx"))).
		WithRow(dashboard.NewRowBuilder("VLANs (eBPF)")).
		WithPanel(graph("Traffic per VLAN", "Bits per second per VLAN on uplinks and bridge ports, counted by the agent's eBPF programs. \"other\" sums the VLANs not in use on the node.", "bps",
			query(`rate(vmop_node_vlan_bytes_total{`+vlans+`}[$__rate_interval]) * 8`, "{{node}} {{interface}} VLAN {{vlan}} {{direction}}"))).
		WithPanel(graph("Frames per VLAN", "Frames per second per VLAN and direction.", "pps",
			query(`rate(vmop_node_vlan_packets_total{`+vlans+`}[$__rate_interval])`, "{{node}} {{interface}} VLAN {{vlan}} {{direction}}"))).
		WithPanel(graph("Frames dropped for a VLAN the port does not carry", "Received with a VLAN the port does not carry, so the bridge or the kernel drops them: usually a switch port trunking VLANs the host does not expect (alert VmopVLANFramesDropped).", "pps",
			query(`rate(vmop_node_vlan_disallowed_packets_total{`+vlans+`}[$__rate_interval])`, "{{node}} {{interface}} VLAN {{vlan}}"))).
		WithPanel(single("Nodes not counting per VLAN", "Agents whose eBPF counters are not attached everywhere (no BPF, no CAP_BPF/CAP_NET_ADMIN, or a port failed): their NodeCapability's VLANCountersReady says why.",
			query(`count(vmop_node_vlan_counters_available{node=~"$node"} == 0) or vector(0)`, "not counting"))).
		WithRow(dashboard.NewRowBuilder("SR-IOV and policies")).
		WithPanel(graph("VFs in use", "Virtual functions in use against configured, per PF.", "none",
			query(`vmop_node_sriov_vfs{node=~"$node", state="in_use"}`, "{{node}} {{pf}} in use"),
			query(`vmop_node_sriov_vfs{node=~"$node", state="configured"}`, "{{node}} {{pf}} configured"))).
		WithPanel(graph("Policy verification", "nmstate policies selecting each node, verified in its kernel or not.", "none",
			query(`vmop_node_policies{node=~"$node"}`, "{{node}} {{state}}")))
}

// profiles is the controller's view: phases, time to Ready, why profiles
// are not Ready (placement failures among them), reconcile errors, writes.
func profiles() *dashboard.DashboardBuilder {
	controller := `and on(instance) vmop_controller_build_info`
	return newDashboard("vmoperator / Profiles", "vmop-profiles",
		"VirtualMachineProfiles by phase, time to Ready, reasons for not being Ready (NoEligibleNodes: placement), reconcile errors and the controller's writes.").
		WithRow(dashboard.NewRowBuilder("Profiles")).
		WithPanel(single("Running", "Profiles in phase Running.", query(`sum(vmop_profiles{phase="Running"})`, "Running"))).
		WithPanel(single("In Error", "Profiles in phase Error.", query(`sum(vmop_profiles{phase="Error"})`, "Error"))).
		WithPanel(single("Not placed", "Profiles no node can host (Ready=False, NoEligibleNodes).",
			query(`sum(vmop_profiles_not_ready{reason="NoEligibleNodes"}) or vector(0)`, "NoEligibleNodes"))).
		WithPanel(single("Leader", "Replicas that lead: 1 when healthy.", query(`sum(vmop_controller_leader)`, "leader"))).
		WithPanel(graph("Phases", "Profiles per phase.", "none", query(`sum by (phase) (vmop_profiles)`, "{{phase}}"))).
		WithPanel(graph("Not Ready, by reason", "Profiles whose Ready condition is not True, by reason; NoEligibleNodes is a placement failure.", "none",
			query(`sum by (reason) (vmop_profiles_not_ready)`, "{{reason}}"))).
		WithPanel(graph("Time to Ready", "From creation to the first Ready condition, over the range.", "s",
			query(`histogram_quantile(0.5, sum by (le) (rate(vmop_profile_time_to_ready_seconds_bucket[$__rate_interval])))`, "p50"),
			query(`histogram_quantile(0.95, sum by (le) (rate(vmop_profile_time_to_ready_seconds_bucket[$__rate_interval])))`, "p95"))).
		WithRow(dashboard.NewRowBuilder("Controller")).
		WithPanel(graph("Reconcile errors", "Errors per second, per reconciler.", "ops",
			query(`sum by (controller) (rate(controller_runtime_reconcile_errors_total[$__rate_interval]) `+controller+`)`, "{{controller}}"))).
		WithPanel(graph("Reconciles", "Reconciles per second, per reconciler and result.", "ops",
			query(`sum by (controller, result) (rate(controller_runtime_reconcile_total[$__rate_interval]) `+controller+`)`, "{{controller}} {{result}}"))).
		WithPanel(graph("Writes to the apiserver", "The controller's write requests per second, by method.", "reqps",
			query(`sum by (method) (rate(rest_client_requests_total{method=~"POST|PUT|PATCH|DELETE"}[$__rate_interval]) `+controller+`)`, "{{method}}")))
}
