# Helpers for the xstream jobs in the Xen lab, sourced in dom0 by bash
# after the lab's own /xenlab/joblib.sh (guest_create, last_cnt, wait_cnt,
# LOGDIR). Every check appends one line to /io/out/checks.txt:
#
#   CHECK <name> PASS|FAIL|SKIP: <evidence>
#
# and a failed one leaves its logs as /io/out/<name>.* for the driver to
# print (xl -vvv output through xsave/xrestore -v, xl dmesg).
OUT=/io/out
CHECKS=$OUT/checks.txt
B64=/io/in/bin-amd64
B32=/io/in/bin-386
export PATH=$B64:$PATH
STORE=/tmp/xstream-store
touch "$CHECKS"

check() { # NAME PASS|FAIL|SKIP EVIDENCE...
	local name=$1 status=$2
	shift 2
	echo "CHECK $name $status: $*" | tee -a "$CHECKS"
	if [ "$status" = FAIL ]; then
		xl dmesg 2>&1 | tail -n 60 > "$OUT/$name.xl-dmesg.txt"
		xl list > "$OUT/$name.xl-list.txt" 2>&1
	fi
}

have() { [ -x "$B64/$1" ]; }

# Times from bash's clock: no process to start, which under emulation
# would cost a good part of what is measured.
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# mark_console remembers how far each guest console log has got;
# console_since prints what was written after the mark.
mark_console() {
	MARK=$(for f in "$LOGDIR"/guest-*.log; do [ -f "$f" ] && echo "$f $(stat -c %s "$f")"; done)
}
console_since() {
	local f off
	for f in "$LOGDIR"/guest-*.log; do
		[ -f "$f" ] || continue
		off=$(printf '%s\n' "$MARK" | awk -v f="$f" '$1 == f { print $2 }')
		tail -c +$((${off:-0} + 1)) "$f"
	done
}

# runs_on BOOT AFTER FIRST [WATCH]: watches the console for WATCH seconds
# (default 8) after the last mark_console and decides whether the guest
# xlguest runs on: at least 5 new counter lines, strictly increasing, of
# one boot id (BOOT when not "-"), above AFTER (when not "-"), the first
# within 2 of FIRST (when not "-": a restore of the same saved state
# resumes at the same count), no new boot, and xl lists it unpaused. Sets
# EVIDENCE, RUN_BOOT and RUN_FIRST; returns 0 when it runs on.
runs_on() {
	local boot=$1 after=$2 first=$3 watch=${4:-8}
	sleep "$watch"
	local text lines n boots why=""
	text=$(console_since)
	lines=$(printf '%s\n' "$text" | grep -a -o 'XLCNT boot=[0-9a-f]* n=[0-9]*' | sed 's/XLCNT boot=//; s/ n=/ /')
	n=$(printf '%s\n' "$lines" | grep -c .)
	boots=$(printf '%s\n' "$lines" | awk 'NF { print $1 }' | sort -u | tr '\n' ' ')
	RUN_BOOT=$(printf '%s\n' "$lines" | awk 'NF { print $1; exit }')
	RUN_FIRST=$(printf '%s\n' "$lines" | awk 'NF { print $2; exit }')
	local last
	last=$(printf '%s\n' "$lines" | awk 'NF { v = $2 } END { print v }')
	[ "$n" -ge 5 ] || why="$why; only $n counter lines in ${watch}s"
	[ "$(echo $boots | wc -w)" -le 1 ] || why="$why; several boot ids: $boots"
	[ "$boot" = - ] || [ -z "$RUN_BOOT" ] || [ "$RUN_BOOT" = "$boot" ] || why="$why; boot id $RUN_BOOT, want $boot (the guest rebooted?)"
	printf '%s\n' "$lines" | awk 'NF { if (seen && $2 <= prev) bad = 1; prev = $2; seen = 1 } END { exit bad }' || why="$why; counter not increasing"
	if [ "$after" != - ] && [ -n "$RUN_FIRST" ] && [ "$RUN_FIRST" -le "$after" ]; then
		why="$why; counter restarts at $RUN_FIRST, not above $after"
	fi
	if [ "$first" != - ] && [ -n "$RUN_FIRST" ]; then
		local d=$((RUN_FIRST - first))
		[ "$d" -ge -2 ] && [ "$d" -le 2 ] || why="$why; resumes at $RUN_FIRST, the same state resumed at $first"
	fi
	if printf '%s\n' "$text" | grep -a -q -E 'XLGUEST-UP|Linux version'; then
		why="$why; the guest booted again"
	fi
	local st
	st=$(xl list xlguest 2>/dev/null | awk 'NR == 2 { print "id " $2 ", state " $5 }')
	case $st in
	"") why="$why; xl lists no xlguest" ;;
	*p-*) why="$why; xlguest is paused ($st)" ;;
	esac
	local same=""
	[ "$first" = - ] || same=", the same state resumed at $first before"
	EVIDENCE="boot ${RUN_BOOT:-none} counter ${RUN_FIRST:-?}->${last:-?} ($n lines in ${watch}s; before: boot $boot, last $after$same); xl list: xlguest $st"
	if [ -n "$why" ]; then
		EVIDENCE="${why#; } -- $EVIDENCE"
		return 1
	fi
	return 0
}

# pipe_check NAME SAVE FILTER RESTORE: SAVE xlguest | FILTER | RESTORE on
# this host, where SAVE and RESTORE are xsave and xrestore binaries (run
# with -v: xl's own output goes to the logs) and FILTER a command or "";
# the guest must run on.
pipe_check() {
	local name=$1 save=$2 filter=$3 rest=$4
	local boot after t0 rcs
	set -- $(last_cnt)
	boot=$1 after=$2
	t0=$(now)
	if [ -n "$filter" ]; then
		"$save" -v xlguest 2> "$OUT/$name.xsave.log" | $filter 2> "$OUT/$name.filter.log" | "$rest" -v 2> "$OUT/$name.xrestore.log"
		rcs="${PIPESTATUS[*]}"
	else
		"$save" -v xlguest 2> "$OUT/$name.xsave.log" | "$rest" -v 2> "$OUT/$name.xrestore.log"
		rcs="${PIPESTATUS[*]}"
	fi
	local took
	took=$(since "$t0")
	mark_console
	if [ "$(echo $rcs | tr -d ' 0')" != "" ]; then
		runs_on "$boot" "$after" - 4 || true
		check "$name" FAIL "exit codes $rcs after ${took}s: $(tail -n 1 "$OUT/$name.xsave.log") / $(tail -n 1 "$OUT/$name.xrestore.log") -- $EVIDENCE"
		recover_guest
		return 1
	fi
	if runs_on "$boot" "$after" -; then
		check "$name" PASS "exit codes $rcs, ${took}s; $(grep -a '^xrestore: restored' "$OUT/$name.xrestore.log" | tail -n 1); $EVIDENCE"
	else
		check "$name" FAIL "exit codes $rcs, ${took}s; $EVIDENCE"
		recover_guest
		return 1
	fi
}

# recover_guest makes sure a counting xlguest runs, so that the checks
# after a failed one still have a guest.
recover_guest() {
	if xl list xlguest > /dev/null 2>&1; then
		xl unpause xlguest > /dev/null 2>&1
		return 0
	fi
	xl list | awk 'NR > 2 && $1 ~ /xlguest/ { print $1 }' | while read -r d; do xl destroy "$d"; done
	rm -f "$LOGDIR"/guest-*.log
	guest_create "${GUEST_MEM:-128}" "${GUEST_TYPE:-pv}"
	set -- $(last_cnt)
	GUEST_BOOT=$1
}

# restore_file NAME FILE BOOT AFTER FIRST [keep]: real `xl restore` of
# FILE (no guest running); the guest must run on. It is destroyed after,
# unless "keep". Sets RUN_BOOT and RUN_FIRST.
restore_file() {
	local name=$1 file=$2 boot=$3 after=$4 first=$5 keep=${6:-} t0 rc
	mark_console
	t0=$(now)
	xl -vvv restore "$file" > "$OUT/$name.xl-restore.txt" 2>&1
	rc=$?
	local took
	took=$(since "$t0")
	if [ $rc != 0 ]; then
		runs_on "$boot" "$after" "$first" 3 || true
		check "$name" FAIL "xl restore exited $rc after ${took}s: $(grep -a -i error "$OUT/$name.xl-restore.txt" | head -n 1)"
	elif runs_on "$boot" "$after" "$first"; then
		check "$name" PASS "xl restore ${took}s; $EVIDENCE"
		rm -f "$OUT/$name.xl-restore.txt"
	else
		check "$name" FAIL "xl restore ${took}s; $EVIDENCE"
	fi
	if [ "$keep" != keep ]; then
		xl list | awk 'NR > 2 && $1 ~ /xlguest/ { print $1 }' | while read -r d; do xl destroy "$d"; done
	fi
	[ $rc = 0 ]
}

# bench ROUND LABEL FILE CMD...: one timed run, a BENCH line in bench.txt
# with the seconds and the size of FILE.
bench() {
	local round=$1 label=$2 file=$3 t0 t1 rc size=-
	shift 3
	t0=$EPOCHREALTIME
	"$@" > "$OUT/bench.out" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	local took
	took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	[ -n "$file" ] && size=$(stat -c %s "$file")
	echo "BENCH $round $label $took $size rc=$rc" | tee -a "$OUT/bench.txt"
	[ $rc = 0 ] || cat "$OUT/bench.out"
	return $rc
}

# run_bench ROUNDS: xl save and xl restore against xsave and xrestore, to
# and from a file in dom0's /tmp (tmpfs), with the guest xlguest; every
# save stops it and the restore after brings it back. The machine is
# shared and emulated, so each round runs the pairs back to back, in
# alternating order, and the driver compares within rounds. The
# compressed paths run in the first two rounds.
run_bench() {
	local rounds=$1 round who order compress_save=
	if xsave --help 2>&1 | grep -q -- '--compress'; then
		compress_save="xsave -q --compress -o /tmp/b.xlz xlguest"
	elif have xstream-compress; then
		compress_save="xsave -q xlguest | xstream-compress > /tmp/b.xlz"
	fi
	for round in $(seq 1 "$rounds"); do
		order="xl ours"
		[ $((round % 2)) = 0 ] && order="ours xl"
		for who in $order; do
			if [ $who = xl ]; then
				bench $round xl-save /tmp/b.xl xl save xlguest /tmp/b.xl
				bench $round xl-restore "" xl restore /tmp/b.xl
				rm -f /tmp/b.xl
				# What xsave has xl do: keep the domain paused until
				# the stream is safe, then destroy it.
				bench $round xl-save-p+destroy /tmp/b.xl sh -c 'xl save -p xlguest /tmp/b.xl && xl destroy xlguest'
				bench $round xl-restore "" xl restore /tmp/b.xl
			else
				bench $round xsave /tmp/b.xl xsave -q -o /tmp/b.xl xlguest
				bench $round xrestore "" xrestore -q /tmp/b.xl
			fi
			rm -f /tmp/b.xl
		done
		bench $round xsave-stdout /tmp/b.xl sh -c 'xsave -q xlguest > /tmp/b.xl'
		bench $round xrestore-stdin "" sh -c 'xrestore -q < /tmp/b.xl'
		rm -f /tmp/b.xl
		[ "$round" -le 2 ] || continue
		if [ -n "$compress_save" ]; then
			bench $round xsave-compressed /tmp/b.xlz sh -c "$compress_save"
			bench $round xrestore-compressed "" sh -c 'xrestore -q /tmp/b.xlz || { xl list xlguest > /dev/null 2>&1 || xstream-compress -d < /tmp/b.xlz | xrestore -q; }'
			rm -f /tmp/b.xlz
		fi
		bench $round xsave-zstd-T2-3 /tmp/b.xl.zst sh -c 'xsave -q xlguest | zstd -q -T2 -3 > /tmp/b.xl.zst'
		bench $round xrestore-zstd "" sh -c 'zstd -q -d -c /tmp/b.xl.zst | xrestore -q'
		rm -f /tmp/b.xl.zst
	done
	[ -n "$compress_save" ] || check bench-compressed SKIP "neither xsave --compress nor xstream-compress is in this build (zstd -T2 -3 after xsave measured instead)"
}
