#!/usr/bin/env bash
# Runs the kernelvm-tagged Go tests inside Debian's stock kernel under qemu
# (TCG), for the link kinds the host kernel lacks: 802.1Q VLANs, bridge VLAN
# filtering, bonding, dummy links and the OVS datapath, and for the per-VLAN
# counters on a kernel older than tcx (6.6). Downloads are cached
# under $KERNELVM_CACHE (default bin/kernelvm); nothing is installed on the
# host except qemu-system-x86 when it is missing. The result is read from the
# serial console. Usage: test/kernelvm/run.sh [package ...]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${KERNELVM_CACHE:-$ROOT/bin/kernelvm}
PACKAGES=("${@:-./agent/probe ./agent/verify ./agent/vlantraffic ./internal/testing/consumers ./test/simulator/nmstatesim}")
TIMEOUT=${KERNELVM_TIMEOUT:-300}
# Modules to load, in order; modprobe pulls the dependencies from modules.dep.
# crc32c_generic first: libcrc32c needs it through the crypto API, which
# modules.dep does not record. dummy and bonding get 0 default devices, or
# dummy0/bond0 appear on load and tests creating them fail with "file exists".
# nf_tables and nft_meta_bridge (meta iifname in the bridge family): the
# bridge plugin's macspoofchk, which the operator's bridge NADs set, loads
# its rules with nft.
MODULES=(crc32c_generic "dummy numdummies=0" "bonding max_bonds=0" veth 8021q bridge macvlan openvswitch sch_ingress cls_bpf nf_tables nft_meta_bridge)

log() { echo "kernelvm: $*" >&2; }

# ensure_apt_lists: a new machine has no package lists; apt-get download
# and apt-cache need them.
ensure_apt_lists() {
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null && return
	log "no apt package lists yet: apt-get update"
	apt-get update >&2
}

ensure_qemu() {
	command -v qemu-system-x86_64 >/dev/null && return
	log "installing qemu-system-x86 (apt)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >&2
}

# fetch_deb PACKAGE DIR: apt-get download PACKAGE once and unpack it into DIR.
fetch_deb() {
	local pkg=$1 dir=$2
	[[ -f $dir/.unpacked ]] && return
	log "downloading $pkg"
	mkdir -p "$CACHE/debs" "$dir"
	(cd "$CACHE/debs" && apt-get download "$pkg" >&2)
	dpkg -x "$(ls -t "$CACHE"/debs/"${pkg}"_*.deb | head -1)" "$dir"
	touch "$dir/.unpacked"
}

kernel_package() {
	if [[ -n ${KERNEL_PACKAGE:-} ]]; then echo "$KERNEL_PACKAGE"; return; fi
	if [[ -f $CACHE/kernel-package ]]; then cat "$CACHE/kernel-package"; return; fi
	# linux-image-amd64 is a metapackage; the versioned image it depends on is the kernel.
	apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}' | tee "$CACHE/kernel-package"
}

ensure_nft() {
	command -v nft >/dev/null && return
	log "installing nftables (apt)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nftables >&2
}

# copy_binary PATH DEST: copy a host binary and the shared libraries it
# loads to the same paths under DEST (the host is Debian like the VM's kernel).
copy_binary() {
	local bin=$1 dest=$2 lib
	mkdir -p "$dest$(dirname "$bin")"
	cp "$bin" "$dest$bin"
	for lib in $(ldd "$bin" | grep -oE '/[^ ]+'); do
		mkdir -p "$dest$(dirname "$lib")"
		cp -L "$lib" "$dest$lib"
	done
}

# copy_module ROOT VERSION NAME DEST: copy a module and its dependencies.
copy_module() {
	local root=$1 ver=$2 name=$3 dest=$4 line
	line=$(grep -E "(^|/)${name}\.ko(\.[a-z]+)?:" "$root/lib/modules/$ver/modules.dep") || { log "module $name not found"; exit 1; }
	for rel in ${line/:/}; do
		mkdir -p "$dest/lib/modules/$ver/$(dirname "$rel")"
		cp "$root/lib/modules/$ver/$rel" "$dest/lib/modules/$ver/$rel"
	done
}

build_initramfs() {
	local kroot=$1 ver=$2 bb=$3 out=$4
	# Global, so the EXIT trap still sees it after this function returns.
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$work"/{bin,sbin,proc,sys,dev,tmp,tests,lib/modules/"$ver"}
	cp "$bb" "$work/bin/busybox"
	for m in "${MODULES[@]}"; do copy_module "$kroot" "$ver" "${m%% *}" "$work"; done
	"$bb" depmod -b "$work" "$ver"
	# The reference CNI plugins internal/testing/consumers runs (make builds them, static).
	mkdir -p "$work/cni"
	cp "$ROOT"/bin/cni/* "$work/cni/"
	copy_binary "$(command -v nft)" "$work"
	for pkg in ${PACKAGES[@]}; do
		log "building tests of $pkg"
		# Packages under test/ belong to the test module (test/go.mod): built from there.
		local dir=$ROOT rel=$pkg
		if [[ $pkg == ./test/* ]]; then dir=$ROOT/test rel=./${pkg#./test/}; fi
		(cd "$dir" && CGO_ENABLED=0 go test -c -tags integration,kernelvm -ldflags='-s -w' -o "$work/tests/$(basename "$pkg").test" "$rel")
	done
	{
		echo '#!/bin/busybox sh'
		echo '/bin/busybox --install -s /bin; /bin/busybox --install -s /sbin'
		echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp'
		# devtmpfs has no /dev/stdin, which nft reads its rules from.
		echo 'ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr'
		for m in "${MODULES[@]}"; do echo "modprobe $m || echo 'VMOP-KERNEL-MODULE-FAILED: $m'"; done
		cat <<'INIT'
cd /tmp
# PATH for the plugins' own helpers (the bridge plugin runs nft).
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/tmp TMPDIR=/tmp VMOP_CNI_BIN=/cni
rc=0
for t in /tests/*.test; do
	echo "=== $t"
	"$t" -test.v -test.count=1 -test.run '^TestKernel' >/tmp/out 2>&1 || rc=1
	cat /tmp/out
	# A skipped kernel test did not test anything: it fails the run.
	grep -q -- '--- SKIP' /tmp/out && { echo "VMOP-KERNEL-SKIPPED in $t"; rc=1; }
	grep -q -- '--- PASS' /tmp/out || { echo "VMOP-KERNEL-NO-TESTS in $t"; rc=1; }
done
if [ $rc = 0 ]; then echo VMOP-KERNEL-RESULT=PASS; else echo VMOP-KERNEL-RESULT=FAIL; fi
poweroff -f
INIT
	} >"$work/init"
	chmod +x "$work/init"
	(cd "$work" && find . | "$bb" cpio -o -H newc >"$out" 2>/dev/null)
}

# prepare_kernel fetches (once) qemu, Debian's kernel and busybox, and sets
# kpkg, kroot (the unpacked kernel), ver (its version) and bb (busybox).
prepare_kernel() {
	mkdir -p "$CACHE"
	ensure_apt_lists
	ensure_qemu
	kpkg=$(kernel_package)
	kroot=$CACHE/$kpkg
	fetch_deb "$kpkg" "$kroot"
	fetch_deb busybox-static "$CACHE/busybox"
	bb=$CACHE/busybox/bin/busybox
	ver=$(ls "$kroot/lib/modules")
	[[ -f $kroot/lib/modules/$ver/modules.dep ]] || "$bb" depmod -b "$kroot" "$ver"
}

main() {
	local kpkg kroot ver bb
	prepare_kernel
	ensure_nft # for the tests' initramfs only (nodevm.sh shares prepare_kernel)
	build_initramfs "$kroot" "$ver" "$bb" "$CACHE/initramfs.cpio"
	log "booting $kpkg under qemu (TCG)"
	local console=$CACHE/console.log start
	start=$(date +%s.%N)
	timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 1024 -nographic -no-reboot \
		-kernel "$kroot/boot/vmlinuz-$ver" -initrd "$CACHE/initramfs.cpio" \
		-append 'console=ttyS0 panic=-1 quiet' -serial "file:$console" -monitor none -display none || true
	log "qemu ran $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s; console in $console"
	grep -E '^(=== |--- |    |ok|FAIL|PASS|VMOP-)' "$console" | tr -d '\r' >&2 || true
	grep -q 'VMOP-KERNEL-RESULT=PASS' "$console"
}

# Run as a script; when sourced (test/devenv/nodevm.sh), only define the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
