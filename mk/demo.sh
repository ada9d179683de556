#!/bin/sh
# demo.sh BUILD: shows the furthest the runtime goes today, in a private
# data directory so the host's /var/lib/rkt is never touched.
set -eu
build=$1
rkt="$build/bin/rkt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g="--dir=$tmp/data --local-config=$tmp/etc --system-config=$tmp/lib --user-config=$tmp/user"
say() { printf '\n$ %s\n' "$*"; }
say rkt version; $rkt version
