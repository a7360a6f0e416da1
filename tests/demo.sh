#!/bin/sh
# A tour of xstream on a generated domain: sh tests/demo.sh BIN
# (make demo runs it with BIN=bin). Exits non-zero if any step fails.
set -eu

bin=${1:?usage: sh tests/demo.sh BIN-DIRECTORY}
bin=$(cd "$bin" && pwd)
for cmd in xstream-gen xstream-cat; do
	[ -x "$bin/$cmd" ] || { echo "demo: $bin/$cmd is missing (run make build)" >&2; exit 1; }
done
gen=$bin/xstream-gen
cat_=$bin/xstream-cat

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xstream-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dom=$tmp/domain.xl

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; }

step "Generate a 64 MiB realistic PV domain with 2 vCPUs, saved as xl would"
run "xstream-gen --type pv --memory 64MiB --vcpus 2 --seed 42 -o domain.xl"
"$gen" --type pv --memory 64MiB --vcpus 2 --seed 42 -o "$dom"
ls -l "$dom" | awk '{print $5, "octets"}'

step "The first records: offset, layer, index, type, body length, summary"
run "xstream-cat domain.xl | head -n 14"
"$cat_" "$dom" >"$tmp/listing"
head -n 14 "$tmp/listing"
echo "... $(wc -l <"$tmp/listing") lines in all"

step "Statistics, read from a pipe"
run "cat domain.xl | xstream-cat --stats"
cat "$dom" | "$cat_" --stats

step "Verify, read from a pipe"
run "cat domain.xl | xstream-cat --verify"
cat "$dom" | "$cat_" --verify

step "The domain's content digest, from the file and through a pipe"
run "xstream-cat --digest domain.xl"
d1=$("$cat_" --digest "$dom")
echo "$d1"
run "cat domain.xl | cat | xstream-cat --digest"
d2=$(cat "$dom" | cat | "$cat_" --digest)
echo "$d2"
[ "$d1" = "$d2" ] || { echo "demo: the digests differ" >&2; exit 1; }

step "The same domain as a bare big-endian libxc stream, in batches of 100 pages: same digest"
run "xstream-gen --memory 64MiB --vcpus 2 --seed 42 -f libxc --big-endian --batch 100 | xstream-cat --digest"
d3=$("$gen" --memory 64MiB --vcpus 2 --seed 42 -f libxc --big-endian --batch 100 | "$cat_" --digest)
echo "$d3"
[ "$d1" = "$d3" ] || { echo "demo: the digest changed with the framing" >&2; exit 1; }

step "A stream cut short is caught, with the offset (exit status 3)"
run "head -c 5000000 domain.xl | xstream-cat --verify"
status=0
head -c 5000000 "$dom" | "$cat_" --verify || status=$?
echo "exit status $status"
[ "$status" -eq 3 ] || { echo "demo: expected exit status 3" >&2; exit 1; }

step "Done"
