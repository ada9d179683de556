#!/bin/sh
# mkrootfs.sh ROOTFS STAGE1BIN: fills ROOTFS with the stage1's own multi-call
# binary and the host's systemd programs (from the installed Debian packages
# systemd and systemd-container) and util-linux's nsenter (the way into apps
# of --private-users pods) with exactly the shared libraries they load,
# and prints the systemd version it took. The tree is merged-/usr like
# Debian's, so the binaries find their loader and libraries at the same
# paths as on the build host.
set -eu
rootfs=$1 bin=$2
rm -rf "$rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/usr/lib/systemd" "$rootfs/usr/lib64" \
	"$rootfs/etc/systemd/system" "$rootfs/usr/lib/systemd/system" \
	"$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/run" "$rootfs/tmp" \
	"$rootfs/var/log/journal" "$rootfs/opt/stage2" "$rootfs/rkt/status" "$rootfs/rkt/env"
for l in bin sbin lib lib64; do
	case $l in lib64) t=usr/lib64 ;; sbin) t=usr/bin ;; *) t=usr/$l ;; esac
	ln -s "$t" "$rootfs/$l"
done

# Programs, by the Debian package that must provide them.
progs="systemd-container:/usr/bin/systemd-nspawn
systemd:/lib/systemd/systemd
systemd:/lib/systemd/systemd-journald
systemd:/lib/systemd/systemd-shutdown
systemd:/bin/systemctl
systemd:/bin/journalctl
util-linux:/usr/bin/nsenter"
libs=""
for p in $progs; do
	pkg=${p%%:*} path=${p#*:}
	if ! dpkg -L "$pkg" | grep -qx "$path"; then
		echo "mkrootfs: $path is not in the installed package $pkg" >&2
		exit 1
	fi
	# Debian 12 ships /bin and /lib as links into /usr: keep the /usr path.
	dst=$(echo "$path" | sed -e 's,^/bin/,/usr/bin/,' -e 's,^/lib/,/usr/lib/,')
	cp -L "$path" "$rootfs$dst"
	libs="$libs $(ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')"
done
for l in $(echo "$libs" | tr ' ' '\n' | sort -u); do
	real=$(readlink -f "$l")
	# Keep the directory the loader will search (RUNPATH or the multiarch dir).
	dir=$(dirname "$l" | sed -e 's,^/lib/,/usr/lib/,' -e 's,^/lib64$,/usr/lib64,')
	mkdir -p "$rootfs$dir"
	cp -L "$real" "$rootfs$dir/$(basename "$l")"
done
# PID 1 looks up root and a few groups; NSS reads these through libc's
# built-in files module.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nsystemd-journal:x:101:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
printf 'ID=rkt-stage1\nNAME="rkt stage1"\n' > "$rootfs/usr/lib/os-release"
ln -s ../usr/lib/os-release "$rootfs/etc/os-release"
: > "$rootfs/etc/machine-id"
cp "$bin" "$rootfs/stage1"
for e in init enter gc stop logs attach app-add app-start app-stop app-rm appexec reaper podwatch; do ln -s stage1 "$rootfs/$e"; done
dpkg-query -W -f='${Version}\n' systemd
