#!/bin/sh
# demo.sh BUILD: shows the furthest the runtime goes today, in a private
# data and configuration directory so that the host's /var/lib/rkt and
# /etc/rkt are never touched.
#
# Each step runs only when what it needs exists (the command in rkt's tree,
# the image in BUILD/images), so the demo keeps working while the project
# grows. A step that is there but fails is reported, the demo goes on, and
# it exits 1 at the end: a broken feature is never hidden.
set -u
build=$1
rkt="$build/bin/rkt"
images="$build/images"
tmp=$(mktemp -d /tmp/rkt-demo.XXXXXX)
g="--dir=$tmp/data --local-config=$tmp/etc --system-config=$tmp/lib --user-config=$tmp/user"
failed=""

cleanup() {
	# Collect what the demo started; --one-file-system keeps rm from ever
	# following a mount that a broken gc left behind.
	"$rkt" $g gc --grace-period=0s >/dev/null 2>&1 || true
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then bold=$(printf '\033[1m') red=$(printf '\033[31m') off=$(printf '\033[0m'); else bold="" red="" off=""; fi
section() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
# step ARGS...: prints and runs one rkt command with the private flags.
step() {
	printf '%s$ rkt' "$bold"
	for a in "$@"; do
		case $a in *" "*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac
	done
	printf '%s\n' "$off"
	"$rkt" $g "$@" 2>&1
	rc=$?
	[ $rc -ne 0 ] && printf '%s(exit status %d)%s\n' "$red" "$rc" "$off"
	return $rc
}
# must: a step that has to succeed for the demo to be right.
must() { step "$@" || failed="$failed\n  rkt $*"; }
# has CMD...: the command exists in this build of rkt.
has() { "$rkt" "$@" --help 2>/dev/null | grep -q "^  rkt $* "; }

if [ ! -x "$rkt" ]; then
	echo "demo: $rkt is missing; run make first" >&2
	exit 1
fi

section "rkt, built from this tree"
must version

section "Images: fetch (test images are unsigned), list, render"
printf 'Unsigned images are refused unless --insecure-options=image says otherwise:\n'
step fetch "$images/busybox.aci"
for img in busybox.aci inspect.aci dep-base.aci dep-top.aci whitelist.aci; do
	[ -f "$images/$img" ] && must --insecure-options=image fetch "$images/$img"
done
has image list && must image list
if has image render; then
	# dep-top's /etc/override hides dep-base's; whitelist keeps only the
	# paths its pathWhitelist names.
	must image render --rootfs-only rktng.io/test/dep-top "$tmp/dep-top" &&
		printf 'dep-top /etc/override: %s\n' "$(cat "$tmp/dep-top/etc/override")"
	must image render --rootfs-only rktng.io/test/whitelist "$tmp/whitelist" &&
		printf 'whitelist rootfs: %s\n' "$(cd "$tmp/whitelist" && find . -type f -o -type l | sort | tr '\n' ' ')"
fi

if has run && [ -f "$images/stage1-fly.aci" ]; then
	section "A pod with the fly stage1 (chroot, host network)"
	must --insecure-options=image run --stage1-path="$images/stage1-fly.aci" \
		rktng.io/test/inspect -- -print-user -print-cwd -print-hostname
	if "$rkt" run --help 2>/dev/null | grep -q -- '--memory'; then
		printf 'A memory limit, read back by the app from its own cgroup:\n'
		must --insecure-options=image run --stage1-path="$images/stage1-fly.aci" \
			rktng.io/test/inspect --memory=64M -- -print-cgroup-memory
	fi
	printf 'An app exit code passes through:\n'
	step --insecure-options=image run --stage1-path="$images/stage1-fly.aci" --uuid-file-save="$tmp/uuid" \
		rktng.io/test/inspect -- -print-msg="exiting with 3" -exit=3
	rc=$?
	[ $rc -eq 3 ] || failed="$failed\n  exit code passthrough gave $rc, want 3"
	[ -s "$tmp/uuid" ] && has status && must status "$(cat "$tmp/uuid")"
	has list && must list
	# The pods ran on the tree store's render of the image; verify checks it.
	has image verify && must image verify rktng.io/test/inspect
fi

if has run && [ -f "$images/stage1.aci" ]; then
	section "A pod with the default stage1 (systemd-nspawn, systemd inside)"
	# A memory limit, when this build has the flag, read back from inside.
	mem=""
	"$rkt" run --help 2>/dev/null | grep -q -- '--memory' && mem=--memory=64M
	must --insecure-options=image run --stage1-path="$images/stage1.aci" --net=none \
		rktng.io/test/inspect $mem -- -print-hostname -print-caps -print-nnp -print-cgroup-memory
	must --insecure-options=image run --stage1-path="$images/stage1.aci" --net=none \
		rktng.io/test/inspect --name=first -- -print-msg="hello from the first app" \
		--- rktng.io/test/busybox --name=second --exec=/bin/echo -- "hello from the second app"
	has list && must list
fi

if has run && [ -f "$images/stage1.aci" ] && "$rkt" run --help 2>/dev/null | grep -q -- '--net' && command -v curl >/dev/null; then
	section "Pod networking (CNI): the default network, reached from the host"
	printf '%s$ rkt run --net=default rktng.io/test/inspect -- -serve-http=:8080 &%s\n' "$bold" "$off"
	"$rkt" $g --insecure-options=image run --stage1-path="$images/stage1.aci" --net=default \
		--uuid-file-save="$tmp/net-uuid" rktng.io/test/inspect -- -serve-http=:8080 >"$tmp/net.out" 2>&1 &
	bg=$!
	ip=""
	for _ in $(seq 60); do
		if [ -s "$tmp/net-uuid" ]; then
			ip=$("$rkt" $g status "$(cat "$tmp/net-uuid")" 2>/dev/null | sed -n 's/^networks=default:ip4=//p')
			[ -n "$ip" ] && grep -q http.listening "$tmp/net.out" && break
		fi
		kill -0 "$bg" 2>/dev/null || break
		sleep 0.5
	done
	if [ -n "$ip" ]; then
		must status "$(cat "$tmp/net-uuid")"
		printf '%s$ curl http://%s:8080/%s\n' "$bold" "$ip" "$off"
		curl -s -m 10 "http://$ip:8080/" || failed="$failed\n  curl http://$ip:8080/"
		printf '%s$ curl http://%s:8080/exit%s\n' "$bold" "$ip" "$off"
		curl -s -m 10 "http://$ip:8080/exit" || failed="$failed\n  curl http://$ip:8080/exit"
	else
		failed="$failed\n  the pod on the default network never got an address"
		[ -s "$tmp/net-uuid" ] && "$rkt" $g stop --force "$(cat "$tmp/net-uuid")" >/dev/null 2>&1
	fi
	wait "$bg"
	rc=$?
	printf 'the pod exited with %d\n' "$rc"
	[ $rc -eq 0 ] || { cat "$tmp/net.out"; failed="$failed\n  the networked pod exited $rc"; }
fi

if has attach && has app sandbox && [ -f "$images/stage1.aci" ]; then
	section "A mutable pod: an app added to a running pod, and rkt attach"
	printf '%s$ rkt app sandbox --net=host &%s\n' "$bold" "$off"
	"$rkt" $g app sandbox --stage1-path="$images/stage1.aci" --net=host \
		--uuid-file-save="$tmp/sb-uuid" >"$tmp/sb.out" 2>&1 &
	sb=$!
	for _ in $(seq 60); do
		[ -s "$tmp/sb-uuid" ] && "$rkt" $g status --wait-ready=1s "$(cat "$tmp/sb-uuid")" >/dev/null 2>&1 && break
		kill -0 "$sb" 2>/dev/null || break
		sleep 0.5
	done
	if [ -s "$tmp/sb-uuid" ]; then
		uuid=$(cat "$tmp/sb-uuid")
		# Its input a pipe that rkt attach writes to, its output one that
		# rkt attach reads; the input ends with the first client's.
		must --insecure-options=image app add "$uuid" rktng.io/test/busybox --name=echo \
			--stdin=stream --stdout=stream --stdin-once --exec=/bin/sh -- -c 'while read l; do echo "echo: $l"; done'
		must app start "$uuid" --app=echo
		printf '%s$ printf "hello through rkt attach\\n" | rkt attach %s%s\n' "$bold" "$uuid" "$off"
		printf 'hello through rkt attach\n' | timeout 20 "$rkt" $g attach "$uuid" ||
			failed="$failed\n  rkt attach"
		# The same line, kept in the pod's journal.
		must logs "$uuid" --app=echo
		must stop "$uuid"
	else
		failed="$failed\n  the sandbox never started"
	fi
	wait "$sb"
fi

if has gc; then
	section "Garbage collection"
	must gc --grace-period=0s
fi

if [ -n "$failed" ]; then
	printf '\n%sdemo: these steps failed:%s%b\n' "$red" "$off" "$failed" >&2
	exit 1
fi
printf '\n%sdemo: done%s\n' "$bold" "$off"
