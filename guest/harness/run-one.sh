#!/bin/sh
# Runs one guest test under a deadline, bracketed for the host.
# usage: run-one.sh TOKEN DEADLINE_S COMMAND [ARG...]
#
# Kernel log markers let the host cut out exactly this test's kernel messages;
# the taint value before and after shows a splat even if its text was lost.
# On the deadline, blocked and all task stacks are dumped (sysrq w and t)
# before the test is killed, so a hang reports where it hangs.
tok=$1
deadline=$2
shift 2
echo "rwp-harness: begin $tok" > /dev/kmsg
echo "@@RWPTAINT0 $(cat /proc/sys/kernel/tainted)"
t0=$(date +%s%N)
"$@" &
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
# The test's own time in the guest, so the host's overhead can be measured.
echo "@@RWPGUESTNS $((t1 - t0))"
echo "rwp-harness: end $tok" > /dev/kmsg
echo "@@RWPTAINT1 $(cat /proc/sys/kernel/tainted)"
exit "$rc"
