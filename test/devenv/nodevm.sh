#!/usr/bin/env bash
# Builds the boot files of the development environment's node VM: Debian's
# stock kernel (cached by the kernel test harness in bin/kernelvm) and an
# initramfs holding busybox, the modules for VLANs, bridges and the NIC, the
# static vmnode and vmop-agent binaries and a kubeconfig that reaches the
# host's apiserver through qemu's user network. Prints the kernel's and the
# initramfs's paths. Usage: nodevm.sh OUT_DIR VMNODE AGENT KUBECONFIG
set -euo pipefail
OUT=$1 VMNODE=$2 AGENT=$3 KUBECONFIG_FILE=$4
source "$(dirname "$0")/../kernelvm/run.sh"

DEV_MODULES=(crc32c_generic "dummy numdummies=0" 8021q bridge e1000 sch_ingress cls_bpf)

prepare_kernel # sets kroot, ver, bb

root=$OUT/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,lib/modules/"$ver"}
cp "$bb" "$root/bin/busybox"
for m in "${DEV_MODULES[@]}"; do copy_module "$kroot" "$ver" "${m%% *}" "$root"; done
"$bb" depmod -b "$root" "$ver"
cp "$VMNODE" "$root/vmnode"
cp "$AGENT" "$root/vmop-agent"
cp "$KUBECONFIG_FILE" "$root/kubeconfig"
{
	echo '#!/bin/busybox sh'
	echo '/bin/busybox --install -s /bin; /bin/busybox --install -s /sbin'
	echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp; mount -t tmpfs run /run'
	for m in "${DEV_MODULES[@]}"; do echo "modprobe $m || echo 'VMOP-DEV-MODULE-FAILED: $m'"; done
	cat <<'INIT'
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/vmnode --agent /vmop-agent --kubeconfig /kubeconfig
echo VMOP-DEV-NODE-EXITED
poweroff -f
INIT
} >"$root/init"
chmod +x "$root/init"
(cd "$root" && find . | "$bb" cpio -o -H newc >"$OUT/initramfs.cpio" 2>/dev/null)
rm -rf "$root"
echo "$kroot/boot/vmlinuz-$ver"
echo "$OUT/initramfs.cpio"
