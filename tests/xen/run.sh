#!/usr/bin/env bash
# make test-xen: xsave and xrestore against a real Xen 4.17 in the lab
# (../shared/xenlab), with the test guest's counter as the evidence that
# a restored guest runs on. Two lab boots:
#
#   boot 1, PVH guest:  1. xsave | xstream-compress | xrestore in dom0;
#                       a real `xl save` file for check 3
#   build machine:      3. that file and ../shared/corpus/xen-real/*: into
#                       our store (xrestore), back out (xsave), a v2
#                       rewrite through xstream-upgrade, xstream-compress;
#                       and a copy whose vCPU cannot run (the negative
#                       control of the evidence)
#   boot 2, PV guest:   3. real `xl restore` of each of those files;
#                       1. again for PV; 2. 386 xsave -> amd64 xrestore
#                       and the reverse; a closed pipe; --keep; a bare
#                       libxc stream with --config; xl's own error
#                       through xrestore; xdomain list; the benchmark
#
# Every check prints one line, CHECK NAME PASS|FAIL|SKIP: evidence; a
# failed one is followed by Xen's own lines (xl -vvv, xl dmesg). Exit 0
# when nothing failed. xstream-compress and xstream-upgrade are used when
# this tree has them (cmd/xstream-compress, cmd/xstream-upgrade), and
# their sub-checks say SKIP when it has not.
#
# Environment: XENLAB (the xenlab command), XSTREAM_CORPUS (default
# ../shared/corpus), XSTREAM_XEN_WORK (work directory, default
# /var/tmp/xstream-test-xen, kept for inspection).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/xen
LAB=${XENLAB:-$ROOT/../shared/xenlab/xenlab}
CORPUS=${XSTREAM_CORPUS:-$ROOT/../shared/corpus}/xen-real
W=${XSTREAM_XEN_WORK:-/var/tmp/xstream-test-xen}
GO=${GO:-go}
export GOFLAGS=${GOFLAGS:--tags=urfave_cli_no_docs} # as the Makefile builds
T0=$(date +%s)

say() { echo "test-xen: $*"; }
die() {
	echo "test-xen: $*" >&2
	exit 1
}
[ -x "$LAB" ] || die "no xenlab at $LAB"
[ "$(id -u)" = 0 ] || die "the Xen lab needs root"

rm -rf "$W"
mkdir -p "$W"/in1 "$W"/in2 "$W"/out1 "$W"/out2 "$W"/host
HOSTCHECKS=$W/host/checks.txt
: > "$HOSTCHECKS"
hostcheck() { # NAME STATUS EVIDENCE
	local name=$1 status=$2
	shift 2
	echo "CHECK $name $status: $*" | tee -a "$HOSTCHECKS"
}

# ---- build: static binaries for dom0, amd64 and 386
cmds=(xsave xrestore xdomain xstream-cat)
for c in xstream-compress xstream-upgrade; do
	[ -d "$ROOT/cmd/$c" ] && cmds+=("$c")
done
for arch in amd64 386; do
	mkdir -p "$W/bin-$arch"
	(cd "$ROOT" && CGO_ENABLED=0 GOARCH=$arch "$GO" build -trimpath -o "$W/bin-$arch/" "${cmds[@]/#/./cmd/}") ||
		die "building for $arch failed"
done
(cd "$ROOT" && "$GO" build -o "$W/host/" ./tests/xen/labtool) || die "building labtool failed"
HB=$W/bin-amd64 # the build machine runs the amd64 build
say "built ${cmds[*]} for amd64 and 386 (CGO_ENABLED=0) in $(($(date +%s) - T0)) s"
have() { [ -x "$HB/$1" ]; }

# bench_table BENCH.TXT: best and median seconds per step, and against
# the toolstack the median of the per-round ratios (each round runs the
# pair back to back on a shared, emulated machine).
bench_table() {
	awk '
		$1 == "BENCH" && $6 == "rc=0" {
			r = $2; k = $3; t[k, r] = $4; b[k] = $5
			if (!(k in seen)) { seen[k] = 1; order[++n] = k }
			if (r > rounds) rounds = r
		}
		function median(a, m,   i, j, x) {
			for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
			return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
		}
		END {
			printf "| %-20s | %6s | %6s | %5s | %12s | %-30s |\n", "step", "best s", "median", "runs", "octets", "against xl save/restore (median of per-round ratios)"
			printf "|%s|%s|%s|%s|%s|%s|\n", "----------------------", "--------", "--------", "-------", "--------------", "--------------------------------"
			for (i = 1; i <= n; i++) {
				k = order[i]; m = 0; q = 0; best = ""
				ref = (k ~ /^xsave/ || k ~ /^xl-save-/) ? "xl-save" : (k ~ /^xrestore/) ? "xl-restore" : ""
				delete v; delete ratio
				for (r = 1; r <= rounds; r++) {
					if (!((k, r) in t)) continue
					v[++m] = t[k, r]
					if (best == "" || t[k, r] < best) best = t[k, r]
					if (ref != "" && (ref, r) in t && t[ref, r] > 0) ratio[++q] = t[k, r] / t[ref, r]
				}
				rel = ""
				if (q > 0) rel = sprintf("time %.2fx", median(ratio, q))
				# xsave has xl save -p and destroys the domain itself:
				# against that pair too, what our own part costs.
				if (k ~ /^xsave/) {
					delete pr; p = 0
					for (r = 1; r <= rounds; r++)
						if ((k, r) in t && ("xl-save-p+destroy", r) in t && t["xl-save-p+destroy", r] > 0) pr[++p] = t[k, r] / t["xl-save-p+destroy", r]
					if (p > 0) rel = rel sprintf(" (%.2fx of -p+destroy)", median(pr, p))
				}
				if (ref == "xl-save" && k ~ /^xsave/ && b[k] != "-" && b["xl-save"] > 0) rel = rel sprintf(", octets %.2fx", b[k] / b["xl-save"])
				printf "| %-20s | %6.2f | %6.2f | %5d | %12s | %-30s |\n", k, best, median(v, m), m, b[k], rel
			}
		}' "$1"
}

LABTIME=0
runlab() { # N SCRIPT OUTDIR FILES...: one lab boot
	local n=$1 job=$2 out=$3
	shift 3
	printf 'exec bash /io/in/%s\n' "$job" > "$W/in$n/user-job.sh"
	local t0 rc=0
	t0=$(date +%s)
	say "lab boot $n ($job): about $([ "$n" = 1 ] && echo 4 || echo 8) minutes"
	"$LAB" run -o "$out" "$W/in$n/user-job.sh" "$HERE/lab.bash" "$HERE/$job" "$W/bin-amd64" "$W/bin-386" "$@" > "$W/lab$n.log" 2>&1 || rc=$?
	local took=$(($(date +%s) - t0))
	LABTIME=$((LABTIME + took))
	say "lab boot $n took $took s (job exit $rc; log $W/lab$n.log)"
	if [ ! -f "$out/checks.txt" ]; then
		tail -n 30 "$W/lab$n.log"
		say "the lab job wrote no checks"
	fi
}

# ---- boot 1: PVH
runlab 1 job-pvh.bash "$W/out1"

# ---- build machine: check 3's files
LIST=$W/in2/check3.list
: > "$LIST"
negative=
S=$W/store
X() { "$HB/$1" "${@:2}"; }

# prepare3 NAME XL-FILE BOOT AFTER FIRST: the real xl save file into our
# store and out again, and its derivatives, for real xl restore in boot 2.
prepare3() {
	local n=$1 orig=$2 boot=$3 after=$4 first=$5
	local ours=$W/host/$n.ours.xl
	if ! X xrestore --backend store --store "$S" -q --name "$n" "$orig" 2> "$W/host/$n.log" ||
		! X xsave --backend store --store "$S" -q -o "$ours" "$n" 2>> "$W/host/$n.log"; then
		hostcheck "c3-$n-store" FAIL "$(tail -n 1 "$W/host/$n.log")"
		return
	fi
	local same="differs from xl's file, same digest $(X xstream-cat --digest "$ours")"
	cmp -s "$orig" "$ours" && same="the same $(stat -c %s "$ours") octets as xl save wrote"
	if [ "$(X xstream-cat --digest "$ours")" = "$(X xstream-cat --digest "$orig")" ] && X xstream-cat -q --verify "$ours"; then
		hostcheck "c3-$n-store" PASS "xrestore into the store, xsave back out: $same"
	else
		hostcheck "c3-$n-store" FAIL "the stream out of the store has another digest or fails to verify"
	fi
	zstd -q -T0 -3 "$ours" -o "$W/in2/$n.ours.xl.zst"
	echo "c3-$n-xsave $n.ours.xl.zst zstd $boot $after $first" >> "$LIST"
	[ "$first" = - ] && first=@c3-$n-xsave
	[ "$boot" = - ] && boot=@c3-$n-xsave

	# A version 2 rewrite (what Xen before 4.14 writes), restored as it
	# is and after xstream-upgrade.
	local v2=$W/host/$n.v2.xl
	"$W/host/labtool" v2 < "$ours" > "$v2" || { hostcheck "c3-$n-v2" FAIL "labtool v2 failed"; return; }
	zstd -q -T0 -3 "$v2" -o "$W/in2/$n.v2.xl.zst"
	echo "c3-$n-v2 $n.v2.xl.zst zstd $boot $after $first" >> "$LIST"
	if have xstream-upgrade; then
		local up=$W/host/$n.upgraded.xl
		if X xstream-upgrade -q -o "$up" "$v2" 2> "$W/host/$n.upgrade.log" && X xstream-cat "$up" | sed -n 4p | grep -q ' v3 '; then
			hostcheck "c3-$n-upgrade" PASS "xstream-upgrade made libxc v3 of the v2 copy: $(X xstream-cat "$up" | sed -n 4p | tr -s ' ')"
			zstd -q -T0 -3 "$up" -o "$W/in2/$n.upgraded.xl.zst"
			echo "c3-$n-upgraded $n.upgraded.xl.zst zstd $boot $after $first" >> "$LIST"
		else
			hostcheck "c3-$n-upgrade" FAIL "xstream-upgrade: $(tail -n 1 "$W/host/$n.upgrade.log")"
		fi
	else
		hostcheck "c3-$n-upgrade" SKIP "xstream-upgrade is not in this build"
	fi
	if have xstream-compress; then
		if X xstream-compress < "$ours" > "$W/in2/$n.ours.xlz" 2> "$W/host/$n.compress.log"; then
			hostcheck "c3-$n-compress" PASS "xstream-compress: $(stat -c %s "$ours") -> $(stat -c %s "$W/in2/$n.ours.xlz") octets"
			echo "c3-$n-compressed $n.ours.xlz xstream-compress $boot $after $first" >> "$LIST"
		else
			hostcheck "c3-$n-compress" FAIL "xstream-compress: $(tail -n 1 "$W/host/$n.compress.log")"
		fi
	else
		hostcheck "c3-$n-compress" SKIP "xstream-compress is not in this build"
	fi
	# The negative control: a guest that cannot run must be seen not to.
	if [ -n "$negative" ]; then
		"$W/host/labtool" break-rip < "$ours" | zstd -q -T0 -3 -o "$W/in2/$n.badrip.xl.zst"
		echo "neg-$n-badrip $n.badrip.xl.zst zstd $boot $after $first" >> "$LIST"
	fi
	rm -f "$ours" "$v2" "$W/host/$n.upgraded.xl"
}

# The corpus's real files: restored as they are first, for the boot id
# and the count the saved state resumes at.
for z in "$CORPUS"/*.xl.zst; do
	[ -f "$z" ] || continue
	n=corpus-$(basename "$z" .xl.zst)
	cp "$z" "$W/in2/$n.orig.xl.zst"
	echo "c3-$n-xl $n.orig.xl.zst zstd - - -" >> "$LIST"
	zstd -q -d -c "$z" > "$W/host/$n.orig.xl"
	negative=$( [ "$n" = corpus-pv64-128m ] && echo yes)
	prepare3 "$n" "$W/host/$n.orig.xl" "@c3-$n-xl" - "@c3-$n-xl"
	negative=
	rm -f "$W/host/$n.orig.xl"
done
# The PVH guest's file from boot 1, with its boot id and last count.
if [ -f "$W/out1/real-pvh.xl.zst" ]; then
	line=$(grep '^real-pvh ' "$W/out1/results.txt" | tail -n 1)
	boot=$(sed -n 's/.* boot=\([^ ]*\).*/\1/p' <<< "$line")
	after=$(sed -n 's/.* after=\([^ ]*\).*/\1/p' <<< "$line")
	zstd -q -d -c "$W/out1/real-pvh.xl.zst" > "$W/host/real-pvh.xl"
	prepare3 real-pvh "$W/host/real-pvh.xl" "${boot:--}" "${after:--}" -
	rm -f "$W/host/real-pvh.xl"
else
	hostcheck c3-real-pvh-store FAIL "boot 1 brought back no real-pvh.xl.zst"
fi
rm -rf "$S"

# ---- boot 2: PV
in2=()
for f in "$W"/in2/*; do
	case $f in */user-job.sh) ;; *) in2+=("$f") ;; esac
done
runlab 2 job-pv.bash "$W/out2" "${in2[@]}"

# ---- report
echo
say "results"
all=$W/checks.txt
cat "$W/out1/checks.txt" "$HOSTCHECKS" "$W/out2/checks.txt" > "$all" 2> /dev/null
want=(c1-pvh c1-pv c2-xsave386-xrestore64 c2-xsave64-xrestore386 c-epipe c-keep c-libxc c-xl-error c-xdomain-list bench-chain)
while read -r name _ _; do want+=("$name"); done < "$LIST"
for name in "${want[@]}"; do
	grep -q "^CHECK $name " "$all" || echo "CHECK $name FAIL: never ran (see $W/lab*.log)" >> "$all"
done
cat "$all"
fails=$(grep -c '^CHECK [^ ]* FAIL' "$all")
for name in $(awk '$3 == "FAIL:" { print $2 }' "$all"); do
	for dir in "$W/out1" "$W/out2" "$W/host"; do
		for f in "$dir/$name".*; do
			[ -f "$f" ] || continue
			echo
			echo "---- $name: $(basename "$f") (errors, then the last lines)"
			grep -a -i -E 'error|fail|warn' "$f" | head -n 20
			echo "...."
			tail -n 25 "$f"
		done
	done
done

if [ -f "$W/out2/bench.txt" ]; then
	echo
	say "benchmark: 128 MiB PV guest, files in dom0's /tmp (tmpfs), Xen 4.17 under QEMU TCG"
	bench_table "$W/out2/bench.txt"
fi
echo
say "lab time $LABTIME s in 2 boots; total $(($(date +%s) - T0)) s; work directory $W"
if [ "$fails" != 0 ]; then
	say "FAIL: $fails checks failed"
	exit 1
fi
say "PASS ($(grep -c ' PASS:' "$all") passed, $(grep -c ' SKIP:' "$all") skipped)"
