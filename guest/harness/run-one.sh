#!/bin/sh
# Runs one guest test under a deadline, bracketed for the host.
# usage: run-one.sh TOKEN DEADLINE_S COMMAND [ARG...]
#
# Kernel log markers let the host cut out exactly this test's kernel messages;
# the taint value before and after shows a splat even if its text was lost.
# On the deadline, blocked and all task stacks are dumped (sysrq w and t)
# before the test is killed, so a hang reports where it hangs.
#
# The emulated console carries a few hundred KB/s under TCG: a test that
# prints megabytes would outlive its deadline on the wire alone. Each test's
# output (counted from its @@RWPSTART, or from the start) is cut after CAP
# bytes here; the protocol's markers and KTAP result lines always pass.
tok=$1
deadline=$2
shift 2
cap=1048576
echo "rwp-harness: begin $tok" > /dev/kmsg
echo "@@RWPTAINT0 $(cat /proc/sys/kernel/tainted)"
fifo=/tmp/rwp-out.$tok
rm -f "$fifo"
mkfifo "$fifo"
# mawk reads a fifo in blocks unless told otherwise: lines must pass at once.
interactive=
awk -W version 2>/dev/null | grep -q mawk && interactive="-W interactive"
awk $interactive -v cap="$cap" '
	/^@@RWPSTART / { n = 0; told = 0 }
	{ n += length($0) + 1 }
	n <= cap || /^(@@RWP|(not )?ok |KTAP version|1\.\.)/ { print; fflush(); next }
	!told { print "# rwp-harness: output beyond " cap " bytes cut in the guest"; fflush(); told = 1 }
' < "$fifo" &
reader=$!
t0=$(date +%s%N)
"$@" > "$fifo" 2>&1 &
pid=$!
(
	sleep "$deadline"
	kill -0 "$pid" 2>/dev/null || exit 0
	echo "@@RWPTIMEOUT $deadline"
	echo w > /proc/sysrq-trigger
	echo t > /proc/sysrq-trigger
	kill -KILL "$pid"
	sleep 1
	# A task in uninterruptible sleep survives SIGKILL and the wait below
	# never returns: show the host the evidence while we still can.
	if kill -0 "$pid" 2>/dev/null; then
		echo "@@RWPSTUCK"
		dmesg | sed -n "/rwp-harness: begin $tok/,\$p" | tail -n 300
	fi
) &
watchdog=$!
wait "$pid"
rc=$?
t1=$(date +%s%N)
kill "$watchdog" 2>/dev/null
# A process the test left behind may still hold the fifo open: drain what
# came, but do not wait for it.
( sleep 2; kill "$reader" 2>/dev/null ) &
drain=$!
wait "$reader"
kill "$drain" 2>/dev/null
rm -f "$fifo"
# The test's own time in the guest, so the host's overhead can be measured.
echo "@@RWPGUESTNS $((t1 - t0))"
echo "rwp-harness: end $tok" > /dev/kmsg
echo "@@RWPTAINT1 $(cat /proc/sys/kernel/tainted)"
exit "$rc"
