// Package consumers runs what the operator writes through the real programs
// that consume it, instead of through our own simulator: cloud-init renders
// each network-data for a Debian (systemd-networkd) and a RHEL-family
// (sysconfig) guest, and the rendered files must carry exactly the
// addresses, gateways, DNS servers, MTUs and MAC matches of the profile.
//
// Tests in this package's callers (the builders' golden tests, the
// integration and e2e suites, the fuzz target) use it; it fails them when a
// consumer rejects or misreads an object our schemas accepted.
package consumers
