#!/usr/bin/env bash
# The IPVS VM of ../shared/recipes with IPsec too: the same kernel and initramfs, with a second
# cpio archive appended (the kernel unpacks concatenated archives in order, later files winning)
# that adds the modules ESP needs (xfrm, esp4, the AES-GCM crypto), and a modules.dep over both.
# Prints the directory to run it from: CNMD_VM_DIR=$(bash vm-xfrm.sh) vm-run.sh …, with
# CNMD_VM_MODULES="xfrm_user esp4 …" to load them at boot. Built once, again when the base changes.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
recipes=${CNMD_RECIPES:-$repo/../shared/recipes}
base=${CNMD_VM_DIR:-/var/tmp/cnmd-vm}
out=${CNMD_VM_XFRM_DIR:-/var/tmp/cnmd-vm-xfrm}
bash "$recipes/ipvs-vm.sh" >/dev/null
. "$base/build.env"
stamp="$STAMP-xfrm1"
if [ -s "$out/build.env" ] && grep -qx "STAMP=$stamp" "$out/build.env" && [ -s "$out/initramfs.cpio" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
deb=$(ls "$base"/debs/linux-image-"$KVER"_*.deb | head -1)
dpkg-deb -x "$deb" "$work/k"
km="$work/k/lib/modules/$KVER"
# What the base initramfs holds, and what ESP in transport mode with rfc4106(gcm(aes)) needs.
(cd "$work" && cpio -t --quiet < "$base/initramfs.cpio" | grep -E "^(usr/)?lib/modules/$KVER/kernel/" | sed -E "s|^(usr/)?lib/modules/$KVER/||") > "$work/base.list"
(cd "$km" && find kernel/net/xfrm kernel/net/ipv4 kernel/net/ipv6 kernel/crypto kernel/arch/x86/crypto \
  \( -name 'xfrm*.ko*' -o -name 'esp*.ko*' -o -name 'ah4.ko*' -o -path '*crypto/*' \) -name '*.ko*') | sort -u > "$work/extra.list"
# lib is a link to usr/lib in the base archive: the modules go where it points.
mkdir -p "$work/s/usr/lib/modules/$KVER"
(cd "$km" && cpio -pdm --quiet "$work/s/usr/lib/modules/$KVER" < "$work/extra.list")
# modules.dep over the base's modules and these: the base's files are taken from the same .deb.
(cd "$km" && cpio -pdm --quiet "$work/all/lib/modules/$KVER" < <(sort -u "$work/base.list" "$work/extra.list"))
cp "$km"/modules.order "$km"/modules.builtin "$km"/modules.builtin.modinfo "$work/all/lib/modules/$KVER/"
depmod -b "$work/all" "$KVER"
cp "$work/all/lib/modules/$KVER"/modules.* "$work/s/usr/lib/modules/$KVER/"
(cd "$work/s" && find . -mindepth 1 | cpio -o -H newc --quiet) > "$work/extra.cpio"
cat "$base/initramfs.cpio" "$work/extra.cpio" > "$out/initramfs.cpio.new"
mv "$out/initramfs.cpio.new" "$out/initramfs.cpio"
ln -sfn "$base/vmlinux" "$out/vmlinux"
ln -sfn "$base/debs" "$out/debs"
sed "s/^STAMP=.*/STAMP=$stamp/" "$base/build.env" > "$out/build.env"
echo "$out"
