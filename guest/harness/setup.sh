#!/bin/sh
# Guest set-up the RWP tests need, run once after every boot. Fails, naming
# what is missing, when the kernel cannot provide it: a test that would then
# skip was given a config that should have prevented the skip.
set -u
fail=0
echo 64 > /proc/sys/vm/nr_hugepages 2>/dev/null
got=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
[ "$got" -ge 16 ] || { echo "setup: only $got hugetlb pages reserved"; fail=1; }
thp=/sys/kernel/mm/transparent_hugepage
if [ -d $thp ]; then
	echo madvise > $thp/enabled && echo madvise > $thp/defrag || fail=1
else
	echo "setup: no transparent hugepages"; fail=1
fi
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs none /sys/kernel/debug
# Swap for the swap-out tests: the guest has no disk, so a zram device.
if ! grep -q '^/dev/zram0 ' /proc/swaps 2>/dev/null; then
	# A distro kernel (--kernel-image) builds zram as a module.
	[ -e /sys/block/zram0 ] || modprobe zram 2>/dev/null
	if [ -e /sys/block/zram0/disksize ]; then
		echo 512M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null &&
			swapon /dev/zram0 || { echo "setup: zram swap failed"; fail=1; }
	else
		echo "setup: no zram device (CONFIG_ZRAM)"; fail=1
	fi
fi
nodes=$(ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l)
[ "$nodes" -ge 2 ] || { echo "setup: $nodes NUMA node(s), want 2 (CONFIG_NUMA_EMU, numa=fake=2)"; fail=1; }
exit $fail
