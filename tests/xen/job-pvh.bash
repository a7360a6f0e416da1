# Lab boot 1 (PVH guest): check 1 for an HVM-container guest, and a real
# `xl save` file for check 3, made in this boot.
. /xenlab/joblib.sh
. /io/in/lab.bash
GUEST_TYPE=pvh
echo "xen_version=$(xl info | sed -n 's/^xen_version *: //p')" >> "$OUT/results.txt"
guest_create 128 pvh || { check c1-pvh FAIL "the PVH guest did not start"; exit 1; }

# 1. xsave xlguest | xstream-compress | xrestore, in dom0.
if have xstream-compress; then
	pipe_check c1-pvh xsave xstream-compress xrestore
else
	check c1-pvh-compress SKIP "xstream-compress is not in this build: the pipe runs without it"
	pipe_check c1-pvh xsave "" xrestore
fi

# 3. A real xl save file of the running guest, for the build machine.
recover_guest > /dev/null
set -- $(last_cnt)
t0=$(now)
xl save xlguest /tmp/real-pvh.xl > "$OUT/real-pvh.save.txt" 2>&1
rc=$?
sleep 1
set -- $(last_cnt) # the last count before the guest stopped
echo "real-pvh boot=$1 after=$2 rc=$rc took=$(since "$t0") size=$(stat -c %s /tmp/real-pvh.xl) sha256=$(sha256sum < /tmp/real-pvh.xl | cut -c1-64)" | tee -a "$OUT/results.txt"
if [ $rc = 0 ]; then
	zstd -q -T2 -3 /tmp/real-pvh.xl -o "$OUT/real-pvh.xl.zst"
else
	check c3-real-pvh-save FAIL "xl save exited $rc: $(tail -n 2 "$OUT/real-pvh.save.txt")"
fi
rm -f /tmp/real-pvh.xl
