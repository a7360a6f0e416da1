#!/bin/sh
# A tour of xstream on the embedded store: sh tests/demo.sh BIN
# (make demo runs it with BIN=bin). Exits non-zero if any step fails.
set -eu

bin=${1:?usage: sh tests/demo.sh BIN-DIRECTORY}
bin=$(cd "$bin" && pwd)
for cmd in xdomain xsave xrestore xstream-cat; do
	[ -x "$bin/$cmd" ] || { echo "demo: $bin/$cmd is missing (run make build)" >&2; exit 1; }
done
PATH=$bin:$PATH
export PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xstream-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
XSTREAM_STORE=$tmp/store
export XSTREAM_STORE

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; }
now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { t = e - s; printf "%.0f MiB in %.2fs: %.0f MiB/s\n", b / 1048576, t, b / 1048576 / t }'; }

step "A temporary store ($XSTREAM_STORE) with a 256 MiB realistic PV domain"
run "xdomain create vm --type pv --memory 256M --vcpus 2"
xdomain create vm --type pv --memory 256M --vcpus 2
run "xdomain list"
xdomain list

step "Save it and restore it under another name, through a pipe"
run "xsave vm | xrestore --name vm-copy"
start=$(now)
xsave -q vm | xrestore -q --name vm-copy
end=$(now)
bytes=$(xsave -q vm | wc -c)
rate "$bytes" "$start" "$end"

step "One digest: the domain, its stream, and the copy"
run "xdomain digest vm"
d1=$(xdomain digest vm); echo "$d1"
run "xsave vm | xstream-cat --digest"
d2=$(xsave -q vm | xstream-cat --digest); echo "$d2"
run "xdomain digest vm-copy"
d3=$(xdomain digest vm-copy); echo "$d3"
[ "$d1" = "$d2" ] && [ "$d1" = "$d3" ] || { echo "demo: the digests differ" >&2; exit 1; }

step "A backup file, written atomically, then verified and shown"
run "xsave -o vm.xl vm && xstream-cat --verify vm.xl"
xsave -q -o "$tmp/vm.xl" vm
xstream-cat --verify "$tmp/vm.xl"
run "xstream-cat vm.xl | head -n 8"
xstream-cat "$tmp/vm.xl" >"$tmp/listing"
head -n 8 "$tmp/listing"
echo "... $(wc -l <"$tmp/listing") lines in all"

step "A stream cut short fails (exit status 3) and leaves no domain behind"
run "head -c 5000000 vm.xl | xrestore --name broken"
status=0
head -c 5000000 "$tmp/vm.xl" | xrestore -q --name broken || status=$?
echo "exit status $status"
[ "$status" -eq 3 ] || { echo "demo: expected exit status 3" >&2; exit 1; }
run "xdomain list"
xdomain list
if xdomain info broken >/dev/null 2>&1; then echo "demo: a broken restore left a domain" >&2; exit 1; fi

step "Done. Recipes:"
cat <<'TXT'
  xsave vm | ssh host xrestore                       # move a domain to another host
  ssh host xsave vm | xrestore --name vm             # fetch one
  0 3 * * * xsave -q -o /backups/vm.xl vm            # crontab: a nightly backup that never
                                                     # replaces the last good file with half a stream
TXT
