#!/bin/sh
# mkaci.sh MANIFEST ROOTFS OUT.aci [gzip]
# Packs an ACI reproducibly: sorted entries, fixed mtimes and owners, so
# that the same inputs always give the same image ID.
set -eu
manifest=$1 rootfs=$2 out=$3 compress=${4:-}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$manifest" "$stage/manifest"
# The rootfs is referenced, not copied, so that large trees cost nothing.
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
	-cf "$out.tmp" manifest
tar -C "$(dirname "$rootfs")" --sort=name --mtime=@0 --numeric-owner \
	--transform "s,^$(basename "$rootfs"),rootfs," -rf "$out.tmp" "$(basename "$rootfs")"
if [ "$compress" = gzip ]; then
	gzip -n -c "$out.tmp" > "$out.tmp.gz" && mv "$out.tmp.gz" "$out.tmp"
fi
mv "$out.tmp" "$out"
