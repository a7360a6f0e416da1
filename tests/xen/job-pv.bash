# Lab boot 2 (PV guest): check 3 (real xl restore of the streams the build
# machine made from real xl save files), checks 1 and 2 for a PV guest,
# the failure paths, and the benchmark.
. /xenlab/joblib.sh
. /io/in/lab.bash
GUEST_TYPE=pv

# 3. check3.list: NAME FILE DECODER BOOT AFTER FIRST; BOOT and FIRST may
# be @NAME, the boot id and first count seen after an earlier restore of
# the same saved state.
declare -A FIRSTOF BOOTOF
while read -r name file dec boot after first; do
	[ -n "$name" ] || continue
	case $first in @*) first=${FIRSTOF[${first#@}]:--} ;; esac
	case $boot in @*) boot=${BOOTOF[${boot#@}]:--} ;; esac
	case $dec in
	zstd) zstd -q -d -c "/io/in/$file" > /tmp/r.xl ;;
	xstream-compress) xstream-compress -d < "/io/in/$file" > /tmp/r.xl ;;
	*) false ;;
	esac || {
		check "$name" FAIL "decoding $file with $dec failed"
		continue
	}
	case $name in
	neg-*)
		# The negative control: xl may take it, but the guest must be
		# seen not to run on.
		mark_console
		xl -vvv restore /tmp/r.xl > "$OUT/$name.xl-restore.txt" 2>&1
		rc=$?
		if runs_on "$boot" - - 6; then
			check "$name" FAIL "a guest that cannot run was taken for running: $EVIDENCE"
		else
			check "$name" PASS "xl restore exited $rc; the evidence sees a dead guest: $EVIDENCE"
		fi
		xl list | awk 'NR > 2 && $1 ~ /xlguest/ { print $1 }' | while read -r d; do xl destroy "$d"; done
		;;
	*)
		if restore_file "$name" /tmp/r.xl "$boot" "$after" "$first"; then
			FIRSTOF[$name]=$RUN_FIRST
			BOOTOF[$name]=$RUN_BOOT
		fi
		;;
	esac
	rm -f /tmp/r.xl
done < /io/in/check3.list

# A fresh console log: last_cnt must not read the restored guests' counts.
rm -f "$LOGDIR"/guest-*.log
guest_create 128 pv || { check c1-pv FAIL "the PV guest did not start"; exit 1; }
set -- $(last_cnt)
GUEST_BOOT=$1

# 1. xsave xlguest | xstream-compress | xrestore, in dom0.
if have xstream-compress; then
	pipe_check c1-pv xsave xstream-compress xrestore
else
	check c1-pv-compress SKIP "xstream-compress is not in this build: the pipe runs without it"
	pipe_check c1-pv xsave "" xrestore
fi

# 2. The seed's case: a 32-bit xsave in the 64-bit dom0, and the reverse.
pipe_check c2-xsave386-xrestore64 "$B32/xsave" "" "$B64/xrestore"
pipe_check c2-xsave64-xrestore386 "$B64/xsave" "" "$B32/xrestore"

# A reader that goes away: xsave fails with one line, the guest runs on.
set -- $(last_cnt)
boot=$1 after=$2
xsave -q xlguest 2> "$OUT/c-epipe.xsave.log" | head -c 1000000 > /dev/null
rc=${PIPESTATUS[0]}
mark_console
if [ "$rc" = 1 ] && [ "$(grep -c . "$OUT/c-epipe.xsave.log")" = 1 ] && runs_on "$boot" "$after" -; then
	check c-epipe PASS "xsave exited 1: $(cat "$OUT/c-epipe.xsave.log"); $EVIDENCE"
else
	runs_on "$boot" "$after" - 2 || true
	check c-epipe FAIL "xsave exited $rc: $(head -n 3 "$OUT/c-epipe.xsave.log" | tr '\n' '|'); $EVIDENCE"
	recover_guest
fi

# --keep: a checkpoint; the guest never stops, and the checkpoint
# restores (after the guest is stopped) at the count it was taken at.
set -- $(last_cnt)
boot=$1 after=$2
t0=$(now)
xsave -q --keep -o /tmp/k.xl xlguest 2> "$OUT/c-keep.xsave.log"
rc=$?
took=$(since "$t0")
mark_console
if [ $rc = 0 ] && runs_on "$boot" "$after" -; then
	running=$EVIDENCE
	xl destroy xlguest
	if restore_file c-keep-restore /tmp/k.xl "$boot" "$after" - keep; then
		check c-keep PASS "xsave --keep ${took}s, $(stat -c %s /tmp/k.xl) octets; the guest ran on: $running"
	else
		check c-keep FAIL "the checkpoint does not restore: $EVIDENCE"
		recover_guest
	fi
else
	check c-keep FAIL "xsave --keep exited $rc: $(tail -n 1 "$OUT/c-keep.xsave.log"); $EVIDENCE"
	recover_guest
fi
rm -f /tmp/k.xl

# Any input: the guest through the store in dom0 and out as a bare libxc
# stream, restored into Xen with its config file.
set -- $(last_cnt)
boot=$1 after=$2
if xsave -q -o /tmp/g.xl xlguest 2> "$OUT/c-libxc.log" &&
	xrestore -q --store-only --store "$STORE" /tmp/g.xl 2>> "$OUT/c-libxc.log" &&
	xsave -q --backend store --store "$STORE" -f libxc -o /tmp/g.libxc xlguest 2>> "$OUT/c-libxc.log"; then
	rm -f /tmp/g.xl
	mark_console
	xrestore -v --config /tmp/guest.cfg /tmp/g.libxc 2> "$OUT/c-libxc.xrestore.log"
	rc=$?
	if [ $rc = 0 ] && runs_on "$boot" "$after" -; then
		check c-libxc PASS "xl save file -> store (--store-only) -> bare libxc -> xrestore --config: $(grep -a '^xrestore: restored' "$OUT/c-libxc.xrestore.log"); $EVIDENCE"
	else
		check c-libxc FAIL "xrestore --config exited $rc: $(tail -n 1 "$OUT/c-libxc.xrestore.log"); $EVIDENCE"
		recover_guest
	fi
else
	check c-libxc FAIL "$(tail -n 1 "$OUT/c-libxc.log")"
	recover_guest
fi
# Xen's own refusal comes back as one line: the PV stream with a config
# that makes the domain PVH.
if [ -f /tmp/g.libxc ]; then
	sed -e 's/^name .*/name = "wrongtype"/' -e 's/^type .*/type = "pvh"/' /tmp/guest.cfg > /tmp/wrongtype.cfg
	xrestore --config /tmp/wrongtype.cfg /tmp/g.libxc 2> "$OUT/c-xl-error.xrestore.log"
	rc=$?
	if [ $rc = 1 ] && [ "$(grep -c . "$OUT/c-xl-error.xrestore.log")" = 1 ] && grep -q '^xrestore: xl restore: ' "$OUT/c-xl-error.xrestore.log" &&
		! xl list wrongtype > /dev/null 2>&1; then
		check c-xl-error PASS "exit 1, no domain left: $(cat "$OUT/c-xl-error.xrestore.log")"
	else
		check c-xl-error FAIL "exit $rc: $(head -n 3 "$OUT/c-xl-error.xrestore.log" | tr '\n' '|'); $(xl list | tr '\n' '|')"
		xl destroy wrongtype > /dev/null 2>&1
	fi
else
	check c-xl-error FAIL "no bare libxc stream to try (c-libxc failed)"
fi
rm -f /tmp/g.xl /tmp/g.libxc
xdomain --store "$STORE" list > "$OUT/xdomain-list.txt" 2>&1
if grep -q '^xlguest .* xen ' "$OUT/xdomain-list.txt" && grep -q '^xlguest .* store ' "$OUT/xdomain-list.txt"; then
	check c-xdomain-list PASS "$(tr '\n' '|' < "$OUT/xdomain-list.txt" | tr -s ' ')"
else
	check c-xdomain-list FAIL "$(tr '\n' '|' < "$OUT/xdomain-list.txt" | tr -s ' ')"
fi
rm -rf "$STORE"

# Benchmark: the toolstack's own save and restore against ours (see
# run_bench in lab.bash).
run_bench 5
set -- $(last_cnt)
mark_console
if runs_on "$GUEST_BOOT" "$2" -; then
	check bench-chain PASS "the guest runs on after the benchmark's saves and restores: $EVIDENCE"
else
	check bench-chain FAIL "$EVIDENCE"
fi
