#!/bin/sh
# host-deps.sh PKG...: installs the Debian packages that are missing, when
# running as root on a Debian-like host; otherwise only reports them.
set -eu
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing host packages:$missing (install them as root)" >&2
	exit 1
fi
echo "installing host packages:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
