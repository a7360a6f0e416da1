#!/usr/bin/env bash
# make xen-check: run Xen's own verify-stream-v2 on what xsave writes, PV
# and HVM, in all three formats. Needs Xen's Python tools: XEN_SRC points
# at a Xen source tree (default ../xen). Uses python2.7 where pyenv has it
# (Xen's verifier fails under python3 on xl headers), else python3.
set -euo pipefail
bin=${1:-bin}
xen=${XEN_SRC:-../xen}
verifier=$xen/tools/python/scripts/verify-stream-v2
if [ ! -f "$verifier" ]; then
	echo "xen-check: SKIP: Xen's verify-stream-v2 not found at $verifier (set XEN_SRC to a Xen source tree)"
	exit 0
fi
py=python3
if PYENV_VERSION=2.7.18 python2.7 -c 'print 1' >/dev/null 2>&1; then
	py="env PYENV_VERSION=2.7.18 python2.7"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XSTREAM_STORE=$tmp/store
fail=0
for type in pv hvm; do
	"$bin/xdomain" create "x$type" --type "$type" --memory 16M --vcpus 2 2>/dev/null
	for f in xl libxl libxc; do
		"$bin/xsave" -q -f "$f" -o "$tmp/$type.$f" "x$type"
		if PYTHONPATH=$xen/tools/python $py "$verifier" -q -f "$f" -i "$tmp/$type.$f"; then
			echo "xen-check: PASS $type $f"
		else
			echo "xen-check: FAIL $type $f"
			fail=1
		fi
	done
done
exit $fail
