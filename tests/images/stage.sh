#!/bin/sh
# stage.sh ROOTFS STEP...: assembles a test image's rootfs from scratch.
# Steps, applied in order:
#   busybox      /bin/busybox from the host's busybox-static with every applet
#                as a symlink in /bin, the usual empty directories, and the
#                test users and groups of tests/images/etc
#   tree DIR     DIR's contents copied on top
#   file SRC DST SRC installed as ROOTFS/DST, executable
#   link TARGET NAME   a hard link NAME to TARGET (both inside ROOTFS)
# Modes are normalized so that the image does not depend on the umask or
# the checkout; mk/mkaci.sh fixes mtimes and sorting.
set -eu
rootfs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$rootfs"
mkdir -p "$rootfs"
homes=""
while [ $# -gt 0 ]; do
	step=$1
	shift
	case $step in
	busybox)
		bb=/bin/busybox
		# Debian's dynamic busybox would install here too, but only
		# busybox-static runs in an image without libc.
		if ! "$bb" --list >/dev/null 2>&1; then
			echo "stage.sh: $bb is not a working static busybox (install busybox-static)" >&2
			exit 1
		fi
		mkdir -p "$rootfs/bin" "$rootfs/sbin" "$rootfs/usr/bin" "$rootfs/usr/sbin" \
			"$rootfs/etc" "$rootfs/root" "$rootfs/home/user1" "$rootfs/home/user2" \
			"$rootfs/tmp" "$rootfs/var/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/run"
		cp "$bb" "$rootfs/bin/busybox"
		for a in $("$bb" --list); do
			[ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
		done
		cp "$here/etc/passwd" "$here/etc/group" "$rootfs/etc/"
		homes=yes
		;;
	tree)
		cp -R "$1/." "$rootfs/"
		shift
		;;
	file)
		mkdir -p "$(dirname "$rootfs/$2")"
		cp "$1" "$rootfs/$2"
		chmod 0755 "$rootfs/$2"
		shift 2
		;;
	link)
		ln "$rootfs/$1" "$rootfs/$2"
		shift 2
		;;
	*)
		echo "stage.sh: unknown step $step" >&2
		exit 1
		;;
	esac
done
chmod -R u+rwX,go+rX,go-w "$rootfs"
[ -d "$rootfs/tmp" ] && chmod 1777 "$rootfs/tmp"
[ -d "$rootfs/var/tmp" ] && chmod 1777 "$rootfs/var/tmp"
[ -d "$rootfs/root" ] && chmod 0700 "$rootfs/root"
# Owners go into the tar as they are on disk: only root can set them, and
# only root runs pods, so a non-root build is for inspection only.
if [ "$(id -u)" -eq 0 ]; then
	chown -hR 0:0 "$rootfs"
	if [ -n "$homes" ]; then
		chown 1000:1000 "$rootfs/home/user1"
		chown 1001:1001 "$rootfs/home/user2"
	fi
fi
