// SPDX-License-Identifier: GPL-2.0
/*
 * The RWP contract (docs/contract.md area J) against the kernel's own memory
 * management: swap, swapoff, migration, THP split and collapse, NUMA
 * balancing and mTHP. Each test first proves that the kernel really did the
 * thing (a page that was never swapped out proves nothing about swap) from
 * pagemap, smaps, meminfo, move_pages() status, /proc/self/sched or the mTHP
 * counters, and also from /proc/vmstat where the kernel has event counters;
 * it fails if the kernel did not. Each test names its contract ids in the
 * comment right above it.
 */
#include "rwp_mem.h"
#include <sys/swap.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define MPOL_MF_MOVE (1 << 1)
#define HPAGE_NR (HPAGE_SIZE / 4096)	/* x86-64 and arm64 with 4K pages */
#define SPLIT_CTL "/sys/kernel/debug/split_huge_pages"
#define NUMA_SYSCTL "/proc/sys/kernel/numa_balancing"
#define NUMA_DEBUGFS "/sys/kernel/debug/sched/numa_balancing/"
#define MTHP_64K "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/"

/* ---- /proc and /sys ---- */

/*
 * A /proc/vmstat event counter, or -1 when the kernel has none
 * (CONFIG_VM_EVENT_COUNTERS off): the tests then rest on pagemap, smaps and
 * move_pages() status alone, which prove the same things page by page.
 */
static long long vmstat(const char *name)
{
	char key[64];
	long long v, found = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	CHECK(f != NULL, "open /proc/vmstat");
	while (fscanf(f, "%63s %lld", key, &v) == 2)
		if (!strcmp(key, name))
			found = v;
	fclose(f);
	return found;
}

/* Fails if the counter exists and did not grow since before. */
static void want_grown(const char *name, long long before)
{
	long long now = vmstat(name);

	if (before < 0 || now < 0)
		printf("# /proc/vmstat has no %s (CONFIG_VM_EVENT_COUNTERS off)\n", name);
	else if (now <= before)
		FAIL("%s did not grow (%lld)", name, now);
}

static void require_two_nodes(void)
{
	char buf[64];

	if (read_text("/sys/devices/system/node/online", buf, sizeof(buf)) || !strcmp(buf, "0"))
		SKIP("needs 2 NUMA nodes (online nodes: %s)", buf);
}

/* ---- pagemap ---- */

/* ---- uffd ---- */

/*
 * Reads p from a thread: is it still protected, i.e. did the read raise an RWP
 * fault at its page, with the uffd bit set before? The read must finish and
 * return want either way (the fault is resolved).
 */
static int still_protected(int fd, char *p, char want, const char *what)
{
	unsigned long base = (unsigned long)p & ~(page_size() - 1);
	uint64_t e = pagemap_entry(p);
	struct accessor acc;
	struct uffd_msg msg;
	int got;

	accessor_start(&acc, p, 0, 0);
	got = uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1;
	if (got)
		disarm(fd, (void *)base, page_size());
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "%s: the reader did not finish", what);
	printf("# %s: pagemap 0x%llx, %s, read 0x%x (want 0x%x)\n", what, (unsigned long long)e,
	       got ? "a message" : "no message", acc.value, want);
	CHECK(acc.value == want, "%s: read 0x%x, want 0x%x", what, acc.value, want);
	return ((e >> PM_UFFD_BIT) & 1) && got && msg.arg.pagefault.flags == UFFD_PAGEFAULT_FLAG_RWP &&
	       msg.arg.pagefault.address == base;
}

/* ---- reclaim ---- */

/* Every page of the range in swap (bit 62), and the kernel counted the writes. */
static void page_out(void *addr, size_t len)
{
	long long out0 = vmstat("pswpout");

	swap_out(addr, len / page_size());
	want_grown("pswpout", out0);
}

/* n units of type t, registered and protected, on a guest that has swap. */
static struct mem armed_for_swap(enum mem_type t, size_t n, int *fd)
{
	struct mem m;

	require_swap(NULL, 0, NULL);
	m = mem_rwp(t, n, fd, 0, UFFDIO_REGISTER_MODE_RWP);
	arm(*fd, m.addr, m.len);
	return m;
}

/* ---- J1, J2: swap-out and swap-in of anon pages ---- */

/* J1: a protected anon page is swapped out with its uffd bit and swapped back in still protected */
RWP_TEST(swap_out_keeps_protection_anon)
{
	int fd;
	struct mem m;
	size_t ps = page_size();
	long long in0;

	m = armed_for_swap(MEM_ANON, NUNITS, &fd);
	page_out(m.addr, m.len);
	want_bits(m.addr, NUNITS, PM_UFFD_BIT, 1, "swap entries of protected pages");
	want_bits(m.addr, NUNITS, PM_PRESENT_BIT, 0, "swapped pages");
	in0 = vmstat("pswpin");
	read_blocks_until_resolved(fd, m.addr + ps + 5, (unsigned long)m.addr + ps, ps, mem_unit_pattern(1));
	want_grown("pswpin", in0);
	CHECK(pm_bit(m.addr + ps, PM_PRESENT_BIT) && !pm_bit(m.addr + ps, PM_SWAP_BIT),
	      "page 1 should be swapped in after the resolved read");
	/* The write fault's swap-in must not COW or map writable: it must trap too. */
	{
		struct accessor acc;

		accessor_start(&acc, m.addr + 2 * ps, 1, 'W');
		want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP | UFFD_PAGEFAULT_FLAG_WRITE,
			   (unsigned long)m.addr + 2 * ps);
		CHECK(pm_bit(m.addr + 2 * ps, PM_PRESENT_BIT) && pm_bit(m.addr + 2 * ps, PM_UFFD_BIT),
		      "while the writer waits, the page should be present and still protected");
		disarm(fd, m.addr + 2 * ps, ps);
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the writer did not resume");
	}
	CHECK(m.addr[2 * ps] == 'W' && m.addr[2 * ps + 1] == mem_unit_pattern(2),
	      "page 2 after the write: 0x%x 0x%x", m.addr[2 * ps], m.addr[2 * ps + 1]);
	CHECK(pm_bit(m.addr + 3 * ps, PM_SWAP_BIT) && pm_bit(m.addr + 3 * ps, PM_UFFD_BIT),
	      "page 3, never touched, should still be a protected swap entry");
	want_quiet(fd, "after the resolved faults");
}

/* J1: with RWP_ASYNC a swapped-out protected page is swapped in and resolved without a message */
RWP_TEST(swap_in_async_resolves_anon)
{
	int fd;
	struct mem m;
	size_t ps = page_size();

	require_swap(NULL, 0, NULL);
	m = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);
	arm(fd, m.addr, m.len);
	page_out(m.addr, m.len);
	want_bits(m.addr, NUNITS, PM_UFFD_BIT, 1, "swap entries of protected pages");
	CHECK(m.addr[ps + 9] == mem_unit_pattern(1), "read 0x%x", m.addr[ps + 9]);
	m.addr[2 * ps] = 'W';
	want_quiet(fd, "async accesses");
	CHECK(!pm_bit(m.addr + ps, PM_UFFD_BIT) && pm_bit(m.addr + ps, PM_PRESENT_BIT),
	      "page 1 should be present and resolved after the read");
	CHECK(!pm_bit(m.addr + 2 * ps, PM_UFFD_BIT), "page 2 should be resolved after the write");
	CHECK(m.addr[2 * ps] == 'W' && m.addr[2 * ps + 1] == mem_unit_pattern(2), "page 2 contents");
	CHECK(pm_bit(m.addr + 3 * ps, PM_SWAP_BIT) && pm_bit(m.addr + 3 * ps, PM_UFFD_BIT),
	      "page 3, never touched, should still be a protected swap entry");
}

/* J1, J6: a protected anon THP is split on swap-out and every 4K swap entry keeps the uffd bit */
RWP_TEST(swap_out_keeps_protection_anon_thp)
{
	int fd;
	struct mem m;
	size_t ps = page_size();

	m = armed_for_swap(MEM_ANON_THP, 1, &fd);
	page_out(m.addr, m.len);
	want_bits(m.addr, HPAGE_NR, PM_UFFD_BIT, 1, "swap entries of the protected THP");
	read_blocks_until_resolved(fd, m.addr + 77 * ps + 1, (unsigned long)m.addr + 77 * ps, ps,
		    mem_unit_pattern(0));
	/* The fault resolved one 4K page, not the whole former THP. */
	CHECK(pm_bit(m.addr + 78 * ps, PM_UFFD_BIT) && pm_bit(m.addr + 76 * ps, PM_UFFD_BIT),
	      "the neighbours of the resolved page lost their protection");
	read_blocks_until_resolved(fd, m.addr + 400 * ps, (unsigned long)m.addr + 400 * ps, ps, mem_unit_pattern(0));
	want_quiet(fd, "after the resolved faults");
}

/* J2: an accessed (unprotected) page goes through swap with no uffd activity */
RWP_TEST(swap_unprotected_page_silent_anon)
{
	int fd;
	struct mem m;
	size_t ps = page_size();
	struct page_region r[4];
	long n;

	m = armed_for_swap(MEM_ANON, NUNITS, &fd);
	disarm(fd, m.addr, 2 * ps);
	page_out(m.addr, m.len);
	want_bits(m.addr, 2, PM_UFFD_BIT, 0, "swap entries of resolved pages");
	want_bits(m.addr + 2 * ps, 2, PM_UFFD_BIT, 1, "swap entries of protected pages");
	n = scan_pages(m.addr, m.len, PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(n == 1 && r[0].start == (unsigned long)m.addr &&
	      r[0].end == (unsigned long)m.addr + 2 * ps,
	      "PAGEMAP_SCAN(ACCESSED) found %ld regions, first [0x%llx, 0x%llx), want pages 0-1",
	      n, n > 0 ? (unsigned long long)r[0].start : 0ULL,
	      n > 0 ? (unsigned long long)r[0].end : 0ULL);
	CHECK(m.addr[3] == mem_unit_pattern(0) && m.addr[ps + 3] == mem_unit_pattern(1),
	      "contents of the swapped-in pages");
	m.addr[ps] = 'W';
	want_quiet(fd, "accesses to unprotected swapped pages");
	CHECK(pm_bit(m.addr, PM_PRESENT_BIT) && !pm_bit(m.addr, PM_UFFD_BIT),
	      "page 0 after swap-in: present, no uffd bit");
}

/*
 * J16: a resolved page of a read-only RWP VMA comes back from swap as it was
 * before: readable at the cost of one fault, and still not writable
 */
RWP_TEST(swap_in_of_resolved_page_keeps_vma_protection_anon)
{
	int fd;
	struct mem m;
	long faults;
	char got;

	m = armed_for_swap(MEM_ANON, 1, &fd);
	disarm(fd, m.addr, m.len);
	CHECK(mprotect(m.addr, m.len, PROT_READ) == 0, "mprotect(PROT_READ)");
	page_out(m.addr, m.len);
	want_bits(m.addr, 1, PM_UFFD_BIT, 0, "swap entry of the resolved page");
	faults = thread_faults();
	got = *(volatile char *)m.addr;
	faults = thread_faults() - faults;
	CHECK(got == mem_unit_pattern(0), "contents after swap-in: 0x%x", got);
	/* A second fault would be a PROT_NONE entry without the uffd bit: a NUMA-hinting one. */
	CHECK(faults == 1, "the read after swap-in took %ld faults, want 1 (the swap-in)", faults);
	CHECK(pm_bit(m.addr, PM_PRESENT_BIT) && !pm_bit(m.addr, PM_UFFD_BIT),
	      "after swap-in: present, no uffd bit");
	CHECK(access_signal(m.addr, 1, NULL) == SIGSEGV, "a write to the PROT_READ VMA succeeded after swap-in: "
	      "the swapped-in entry was made writable");
	CHECK(*(volatile char *)m.addr == mem_unit_pattern(0), "contents after the refused write");
	want_quiet(fd, "swap-in of a resolved page");
}

/* ---- J11-J14: what a protected page in swap goes through ---- */

/* A thread's read of p finishes (no fault left to block it) and returns want. */
static void reads_freely(char *p, char want, const char *what)
{
	struct accessor acc;

	accessor_start(&acc, p, 0, 0);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "%s: the read blocked", what);
	CHECK(acc.value == want, "%s: read 0x%x, want 0x%x", what, acc.value, want);
}

/*
 * J11: a protected page in swap loses its protection to UNRWP, UNREGISTER or
 * close of the uffd: its swap entry drops the uffd bit, the swap-in is silent
 */
RWP_TEST(swapped_protection_dropped_by_resolve_unregister_close)
{
	static const char *const how[] = { "UNRWP", "UNREGISTER", "close" };
	size_t ps = page_size();

	for (int h = 0; h < 3; h++) {
		int fd;
		struct mem m = armed_for_swap(MEM_ANON, 2, &fd);

		page_out(m.addr, m.len);
		want_bits(m.addr, 2, PM_UFFD_BIT, 1, "protected swap entries");
		if (h == 0)
			disarm(fd, m.addr, ps);
		else if (h == 1)
			ok(uffd_unregister(fd, m.addr, ps), "UNREGISTER page 0");
		else
			CHECK(close(fd) == 0, "close the uffd");
		want_bits(m.addr, 1, PM_SWAP_BIT, 1, how[h]);
		want_bits(m.addr, 1, PM_UFFD_BIT, 0, how[h]);
		reads_freely(m.addr + 3, mem_unit_pattern(0), how[h]);
		CHECK(pm_bit(m.addr, PM_PRESENT_BIT) && !pm_bit(m.addr, PM_UFFD_BIT),
		      "%s: page 0 after its swap-in", how[h]);
		if (h < 2) {
			want_quiet(fd, how[h]);
			CHECK(pm_bit(m.addr + ps, PM_SWAP_BIT) && pm_bit(m.addr + ps, PM_UFFD_BIT),
			      "%s of page 0 changed page 1", how[h]);
			read_blocks_until_resolved(fd, m.addr + ps + 1, (unsigned long)m.addr + ps, ps,
				    mem_unit_pattern(1));
			close(fd);
		} else {
			CHECK(!pm_bit(m.addr + ps, PM_UFFD_BIT), "close left page 1's swap entry armed");
		}
		munmap(m.addr, m.len);
	}
}

/* The forked child reports its copy of the page: 1 a swap entry, 2 the uffd bit. */
static void report_copy(void *page)
{
	_exit(pm_bit(page, PM_SWAP_BIT) | pm_bit(page, PM_UFFD_BIT) << 1);
}

/*
 * J12: fork of a protected page in swap: without EVENT_FORK the child's copy
 * has no uffd bit and reads freely; with EVENT_FORK it keeps the bit for the
 * child's ctx; the parent stays protected either way
 */
RWP_TEST(fork_of_swapped_protected_page)
{
	size_t ps = page_size();
	int fd, status;
	struct mem m = armed_for_swap(MEM_ANON, 2, &fd);
	struct forker f = { .child = report_copy };
	struct uffd_msg msg;
	pid_t pid;

	page_out(m.addr, m.len);
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int bit = pm_bit(m.addr, PM_UFFD_BIT), swapped = pm_bit(m.addr, PM_SWAP_BIT);

		alarm(5);
		_exit(!swapped ? 3 : bit ? 4 : m.addr[7] != mem_unit_pattern(0) ? 5 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status),
	      "the child of a fork without EVENT_FORK did not exit (status 0x%x)", status);
	CHECK(WEXITSTATUS(status) != 3, "the child's copy of page 0 is not a swap entry");
	CHECK(WEXITSTATUS(status) != 4, "the child's copy of page 0 kept the uffd bit");
	CHECK(WEXITSTATUS(status) == 0, "the child read the wrong data (status %d)",
	      WEXITSTATUS(status));
	want_quiet(fd, "the child's read of its copy");
	CHECK(pm_bit(m.addr, PM_UFFD_BIT), "the parent's swap entry lost its protection");
	close(fd);
	munmap(m.addr, m.len);

	m = mem_rwp(MEM_ANON, 2, &fd, UFFD_FEATURE_EVENT_FORK, UFFDIO_REGISTER_MODE_RWP);
	arm(fd, m.addr, m.len);
	page_out(m.addr, m.len);
	f.arg = m.addr;
	forker_start(&f);
	CHECK(uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1 && msg.event == UFFD_EVENT_FORK,
	      "no FORK message");
	forker_join(&f);
	CHECK(waitpid(f.pid, &status, 0) == f.pid && WIFEXITED(status), "child status 0x%x", status);
	CHECK(WEXITSTATUS(status) == 3, "with EVENT_FORK the child's copy of page 0 is %s%s",
	      WEXITSTATUS(status) & 1 ? "a swap entry" : "not a swap entry",
	      WEXITSTATUS(status) & 2 ? "" : " without the uffd bit");
	close((int)msg.arg.fork.ufd);
	CHECK(pm_bit(m.addr + ps, PM_UFFD_BIT), "the parent's swap entry lost its protection");
	read_blocks_until_resolved(fd, m.addr + ps + 2, (unsigned long)m.addr + ps, ps, mem_unit_pattern(1));
}

/*
 * A protected swap entry shared by fork: the child's first touch of the page
 * is touch(), which returns NULL or what went wrong; the parent's entry must
 * stay a protected swap entry, and the parent's own write must fault
 * (upstream's rwp-swap-cow), not COW itself a silent copy. The child then
 * exits 0 if its copy is still as intact() wants it.
 */
static void swap_shared_by_fork(const char *(*touch)(char *p), int (*intact)(const char *p))
{
	int fd, status, report[2], release[2];
	struct mem m = armed_for_swap(MEM_ANON, 1, &fd);
	char why[200] = "";
	pid_t pid;

	page_out(m.addr, m.len);
	CHECK(pipe(report) == 0 && pipe(release) == 0, "pipe");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		const char *err;
		char c;

		alarm(5);
		err = touch(m.addr);
		if (write(report[1], err ? err : "", err ? strlen(err) : 1) < 0 || err)
			_exit(3);
		_exit(read(release[0], &c, 1) == 1 && intact(m.addr) ? 0 : 3);
	}
	close(report[1]);		/* a child that dies early ends the read */
	close(release[0]);
	if (read(report[0], why, sizeof(why) - 1) <= 0 || why[0]) {
		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		FAIL("the child's first touch %s (status 0x%x)", why[0] ? why : "did not complete",
		     status);
	}
	CHECK(pm_bit(m.addr, PM_UFFD_BIT) && !pm_bit(m.addr, PM_PRESENT_BIT),
	      "the child's touch changed the parent's protected swap entry (0x%llx)",
	      (unsigned long long)pagemap_entry(m.addr));
	access_blocks_until_resolved(fd, m.addr + 2, 1, 'P', (unsigned long)m.addr, page_size());
	CHECK(m.addr[0] == mem_unit_pattern(0) && m.addr[2] == 'P',
	      "the parent's page after its write: 0x%x 0x%x, want 0x%x 'P'", m.addr[0], m.addr[2],
	      mem_unit_pattern(0));
	CHECK(write(release[1], "r", 1) == 1, "release the child");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child's copy changed under the parent's write (status 0x%x)", status);
	want_quiet(fd, "after the parent's resolved fault");
}

static const char *child_writes(char *p)
{
	/*
	 * The first touch must be this write (a write swap-in of a shared entry,
	 * COWed at once: do_swap_page()'s !rwp_restore branch); without the
	 * volatile store and the barrier gcc loads p[1] first, and the swap-in is
	 * a read.
	 */
	*(volatile char *)p = 'C';
	__asm__ volatile("" ::: "memory");
	return p[0] == 'C' && p[1] == mem_unit_pattern(0) ? NULL : "wrote into the wrong data";
}

static int child_write_kept(const char *p)
{
	return p[0] == 'C';
}

/*
 * J13: a protected swap entry shared by fork: the child's write (a swap-in and
 * a private copy) neither reaches nor unprotects the parent's page, and the
 * parent's own write faults
 */
RWP_TEST(swap_shared_by_fork_then_child_writes)
{
	swap_shared_by_fork(child_writes, child_write_kept);
}

/* The read maps the swap-cache folio the parent's entry still refers to: a read is never a COW. */
static const char *child_reads(char *p)
{
	uint64_t flags;

	if (*(volatile char *)p != mem_unit_pattern(0))
		return "read the wrong data";
	flags = kpageflags_of(p);
	if (flags == ~0ULL || !((flags >> KPF_SWAPCACHE) & 1))
		return "mapped a page outside the swap cache: it copied the folio it should share";
	return NULL;
}

static int child_copy_unchanged(const char *p)
{
	return p[2] == mem_unit_pattern(0);
}

/*
 * J15: a protected swap entry shared by fork, read by the child: the child
 * still maps the swapped-in folio when the parent writes, so the parent's
 * write must raise an RWP write fault and not COW itself an unprotected copy
 * (do_swap_page() skips do_wp_page() for an RWP-restored pte); the child's
 * copy never sees the parent's write
 */
RWP_TEST(swap_shared_by_fork_child_reads_then_parent_writes)
{
	swap_shared_by_fork(child_reads, child_copy_unchanged);
}

/*
 * J14: MOVE of an unprotected page in swap into an RWP range arms the moved
 * swap entry (uffd.c:1452-1454), as MOVE arms a present page (I13)
 */
RWP_TEST(move_swapped_page_into_rwp_range)
{
	size_t ps = page_size();
	struct mem dst;
	__s64 moved = 0;
	char *src;
	int fd, err = 0;

	require_swap(NULL, 0, NULL);
	if (!(uffd_kernel_features() & UFFD_FEATURE_MOVE))
		SKIP("kernel does not advertise UFFD_FEATURE_MOVE");
	dst = mem_rwp(MEM_ANON, 1, &fd, UFFD_FEATURE_MOVE, UFFDIO_REGISTER_MODE_RWP);
	CHECK(madvise(dst.addr, ps, MADV_DONTNEED) == 0, "DONTNEED dst");
	src = map_anon(ps);
	memset(src, 'M', ps);
	swap_out(src, 1);
	CHECK(!pm_bit(src, PM_UFFD_BIT), "the unregistered source has the uffd bit");
	/* A swap entry whose folio is still in the swap cache is EBUSY or EAGAIN for a while. */
	WAIT_UNTIL((err = uffd_move(fd, dst.addr, src, ps, &moved)) != -EBUSY && err != -EAGAIN,
		   RWP_WAIT_MS);
	ok(err, "MOVE the swapped page into the RWP range");
	CHECK(moved == (__s64)ps, "moved %lld", (long long)moved);
	CHECK(pm_bit(dst.addr, PM_SWAP_BIT) && pm_bit(dst.addr, PM_UFFD_BIT),
	      "the moved swap entry is not armed (0x%llx)", (unsigned long long)pagemap_entry(dst.addr));
	read_blocks_until_resolved(fd, dst.addr + 5, (unsigned long)dst.addr, ps, 'M');
	want_quiet(fd, "after the resolved fault");
}

/* ---- J3: swapoff ---- */

struct swapdev {
	char dev[200];
	int prio;
};

static void swapon_again(void *arg)
{
	struct swapdev *s = arg;
	int flags = s->prio >= 0 ? SWAP_FLAG_PREFER |
		(s->prio & SWAP_FLAG_PRIO_MASK) << SWAP_FLAG_PRIO_SHIFT : 0;

	if (swapon(s->dev, flags) && errno != EBUSY)
		printf("# swapon %s failed: %s: later tests lose their swap\n", s->dev,
		       strerror(errno));
}

static void swapoff_body(void *arg)
{
	struct swapdev *s = arg;
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	size_t ps = page_size();
	long faults;

	arm(fd, m.addr, m.len);
	disarm(fd, m.addr, ps);
	page_out(m.addr, m.len);
	CHECK(swapoff(s->dev) == 0, "swapoff %s", s->dev);
	want_bits(m.addr, NUNITS, PM_PRESENT_BIT, 1, "after swapoff (present)");
	want_bits(m.addr + ps, 3, PM_UFFD_BIT, 1, "protected pages after swapoff");
	CHECK(!pm_bit(m.addr, PM_UFFD_BIT), "the resolved page gained the uffd bit in swapoff");
	/* swapoff mapped it present and readable: its read takes no fault */
	faults = faults_reading(m.addr, 1);
	CHECK(faults == 0, "the read of the resolved page after swapoff took %ld faults", faults);
	CHECK(m.addr[1] == mem_unit_pattern(0), "resolved page contents");
	want_quiet(fd, "swapoff and the read of a resolved page");
	read_blocks_until_resolved(fd, m.addr + 2 * ps + 2, (unsigned long)m.addr + 2 * ps, ps,
		    mem_unit_pattern(2));
}

/* J3: swapoff brings protected pages back still protected, and they still fault */
RWP_TEST(swapoff_keeps_protection_anon)
{
	struct swapdev s;

	require_rwp();
	require_swap(s.dev, sizeof(s.dev), &s.prio);
	run_then_restore(swapoff_body, &s, swapon_again, &s);
	{
		char again[200];
		int prio;

		require_swap(again, sizeof(again), &prio);
		CHECK(!strcmp(again, s.dev), "swap device %s after the test, was %s", again, s.dev);
	}
}

/* ---- J4: migration ---- */

static long move_pages(int count, void **pages, const int *nodes, int *status, int flags)
{
	return syscall(__NR_move_pages, 0, (unsigned long)count, pages, nodes, status, flags);
}

/* Moves both units of m (two of them) to the other NUMA node, checked. */
static void move_units_to_other_node(struct mem *m)
{
	enum { N = 2 };
	int node[N], status[N];
	void *pages[N];
	long long mig0;
	long r;

	for (int i = 0; i < N; i++)
		pages[i] = m->addr + i * m->unit;
	CHECK(move_pages(N, pages, NULL, status, 0) == 0, "move_pages query");
	for (int i = 0; i < N; i++) {
		CHECK(status[i] >= 0, "unit %d: node query gave %d", i, status[i]);
		node[i] = !status[i];
	}
	mig0 = vmstat("pgmigrate_success");
	r = move_pages(N, pages, node, status, MPOL_MF_MOVE);
	CHECK(r == 0, "move_pages returned %ld", r);
	for (int i = 0; i < N; i++)
		CHECK(status[i] == node[i], "unit %d is on node %d after the move, want %d", i,
		      status[i], node[i]);
	want_grown("pgmigrate_success", mig0);
}

/* J4: moving protected pages to the other NUMA node keeps the uffd bit and the RWP fault */
RWP_TEST_MEM(migration_keeps_protection)
{
	enum { N = 2 };
	int fd;
	struct mem m;

	require_two_nodes();
	m = mem_rwp(type, N, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	arm(fd, m.addr, m.len);
	move_units_to_other_node(&m);
	for (int i = 0; i < N; i++) {
		CHECK(pm_bit(m.addr + i * m.unit, PM_PRESENT_BIT), "unit %d not present", i);
		CHECK(page_uffd_bit(m.addr + i * m.unit), "unit %d lost its uffd bit", i);
	}
	CHECK(page_uffd_bit(m.addr + m.unit - page_size()), "last 4K of unit 0 lost its uffd bit");
	read_blocks_until_resolved(fd, m.addr + m.unit + 11, (unsigned long)m.addr + m.unit,
		    mem_is_huge(type) ? m.unit : page_size(), mem_unit_pattern(1));
	want_quiet(fd, "after the resolved fault");
}

/*
 * J4: a unit never protected, moved to the other node beside a protected one,
 * comes back accessible: its first reads take no fault
 */
RWP_TEST_MEM(migration_keeps_unprotected_unit_accessible)
{
	long faults;
	struct mem m;
	int fd;

	require_two_nodes();
	m = mem_rwp(type, 2, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	arm(fd, m.addr, m.unit);
	move_units_to_other_node(&m);
	CHECK(page_uffd_bit(m.addr), "the protected unit lost its uffd bit");
	CHECK(!page_uffd_bit(m.addr + m.unit), "the unprotected unit gained the uffd bit");
	faults = faults_reading(m.addr + m.unit, m.unit / page_size());
	CHECK(faults == 0, "reading the moved, never protected unit took %ld faults, want 0",
	      faults);
	want_quiet(fd, "reads of the moved unprotected unit");
}

/* ---- J6: THP split ---- */

/* J4, J6: splitting a protected THP (through migration entries) leaves 512 protected PTEs */
RWP_TEST(thp_split_keeps_protection_anon_thp)
{
	int fd;
	char cmd[128];
	struct mem m;
	size_t ps = page_size();
	long long split0;

	if (access(SPLIT_CTL, W_OK))
		SKIP("no %s (debugfs not mounted?)", SPLIT_CTL);
	m = mem_rwp(MEM_ANON_THP, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	arm(fd, m.addr, m.len);
	split0 = vmstat("thp_split_page");
	snprintf(cmd, sizeof(cmd), "%d,0x%lx,0x%lx", getpid(), (unsigned long)m.addr,
		 (unsigned long)m.addr + m.len);
	ok(write_text(SPLIT_CTL, cmd), "write " SPLIT_CTL);
	CHECK(!vma_has_anon_thp(m.addr), "the THP is still PMD-mapped after the split request");
	want_grown("thp_split_page", split0);
	want_bits(m.addr, HPAGE_NR, PM_PRESENT_BIT, 1, "after the split (present)");
	want_bits(m.addr, HPAGE_NR, PM_UFFD_BIT, 1, "after the split (uffd bit)");
	read_blocks_until_resolved(fd, m.addr + 5 * ps, (unsigned long)m.addr + 5 * ps, ps, mem_unit_pattern(0));
	CHECK(page_uffd_bit(m.addr + 4 * ps) && page_uffd_bit(m.addr + 6 * ps),
	      "resolving one 4K page resolved its neighbours");
	read_blocks_until_resolved(fd, m.addr + 511 * ps + 9, (unsigned long)m.addr + 511 * ps, ps,
		    mem_unit_pattern(0));
	want_quiet(fd, "after the resolved faults");
}

/*
 * J6: a split maps a protected zero-filled subpage to the shared zero page
 * (try_to_map_unused_to_zeropage(), migrate.c:333-335) and keeps it protected:
 * the zero page's PTE is PAGE_NONE with the uffd bit, not readable
 */
RWP_TEST(thp_split_zero_subpage_keeps_protection_anon_thp)
{
	int fd;
	char cmd[128];
	struct mem m;
	struct page_region r[2];
	size_t ps = page_size();

	if (access(SPLIT_CTL, W_OK))
		SKIP("no %s (debugfs not mounted?)", SPLIT_CTL);
	m = mem_rwp(MEM_ANON_THP, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	memset(m.addr + 3 * ps, 0, ps);
	memset(m.addr + 300 * ps, 0, ps);
	CHECK(vma_has_anon_thp(m.addr), "zeroing two subpages split the THP");
	arm(fd, m.addr, m.len);
	snprintf(cmd, sizeof(cmd), "%d,0x%lx,0x%lx", getpid(), (unsigned long)m.addr,
		 (unsigned long)m.addr + m.len);
	ok(write_text(SPLIT_CTL, cmd), "write " SPLIT_CTL);
	CHECK(!vma_has_anon_thp(m.addr), "the THP is still PMD-mapped after the split request");
	CHECK(scan_pages(m.addr + 300 * ps, ps, PAGE_IS_PFNZERO, 0, r, 2) == 1 &&
	      scan_pages(m.addr + 3 * ps, ps, PAGE_IS_PFNZERO, 0, r, 2) == 1,
	      "the zero-filled subpages are not the shared zero page after the split");
	CHECK(scan_pages(m.addr + 4 * ps, ps, PAGE_IS_PFNZERO, 0, r, 2) == 0,
	      "a subpage with data became the zero page");
	want_bits(m.addr, HPAGE_NR, PM_UFFD_BIT, 1, "after the split (uffd bit)");
	read_blocks_until_resolved(fd, m.addr + 300 * ps + 7, (unsigned long)m.addr + 300 * ps, ps, 0);
	read_blocks_until_resolved(fd, m.addr + 4 * ps + 1, (unsigned long)m.addr + 4 * ps, ps, mem_unit_pattern(0));
	CHECK(page_uffd_bit(m.addr + 3 * ps), "resolving page 300 resolved page 3");
	want_quiet(fd, "after the resolved faults");
}

/* 2 MiB of RWP-registered anon memory that a read has mapped to the huge zero page. */
static char *huge_zero_page_rwp(int *fd)
{
	struct page_region r[2];
	char use_zero[16];
	char *p;

	require_rwp();
	if (read_text("/sys/kernel/mm/transparent_hugepage/use_zero_page", use_zero,
		      sizeof(use_zero)) || strcmp(use_zero, "1"))
		SKIP("the huge zero page is off (use_zero_page: %s)", use_zero);
	p = map_aligned_anon_thp(HPAGE_SIZE);
	*fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(*fd, p, HPAGE_SIZE, UFFDIO_REGISTER_MODE_RWP, NULL), "UFFDIO_REGISTER");
	CHECK(*(volatile char *)p == 0, "a fresh anonymous page reads nonzero");
	CHECK(scan_pages(p, HPAGE_SIZE, PAGE_IS_HUGE | PAGE_IS_PFNZERO, 0, r, 2) == 1 &&
	      r[0].end - r[0].start == HPAGE_SIZE,
	      "precondition: a read of an unpopulated MADV_HUGEPAGE range did not map the "
	      "huge zero page");
	return p;
}

/* The minor faults of reading every 4K page of the 2 MiB at p but page skip. */
static long faults_reading_huge_but(const char *p, size_t skip)
{
	return faults_reading(p, skip) +
	       faults_reading(p + (skip + 1) * page_size(), HPAGE_NR - skip - 1);
}

/*
 * J6: a protected huge zero page split by a 4K resolve leaves the other 511
 * zero-page PTEs protected (__split_huge_zero_page_pmd(), huge_memory.c:3175-3177)
 */
RWP_TEST(huge_zero_page_split_keeps_protection)
{
	struct page_region r[2];
	size_t ps = page_size();
	int fd;
	char *p = huge_zero_page_rwp(&fd);

	arm(fd, p, HPAGE_SIZE);
	CHECK(scan_pages(p, HPAGE_SIZE, PAGE_IS_HUGE | PAGE_IS_PFNZERO, 0, r, 2) == 1,
	      "protecting the huge zero page unmapped it");
	want_bits(p, HPAGE_NR, PM_UFFD_BIT, 1, "protected huge zero page");
	disarm(fd, p + 5 * ps, ps);
	CHECK(scan_pages(p, HPAGE_SIZE, PAGE_IS_HUGE, 0, r, 2) == 0,
	      "a 4K resolve left the huge zero page PMD-mapped");
	CHECK(!page_uffd_bit(p + 5 * ps), "the resolved page kept bit 57");
	want_bits(p, 5, PM_UFFD_BIT, 1, "pages before the resolved one");
	want_bits(p + 6 * ps, HPAGE_NR - 6, PM_UFFD_BIT, 1, "pages after the resolved one");
	CHECK(p[5 * ps] == 0, "the resolved page reads nonzero");
	want_quiet(fd, "a read of the resolved page");
	read_blocks_until_resolved(fd, p + 300 * ps + 3, (unsigned long)p + 300 * ps, ps, 0);
	want_quiet(fd, "after the resolved fault");
}

/*
 * An armed anon THP whose page k is resolved (or dropped by MADV_DONTNEED)
 * must split, every other page keeping its uffd bit (and, dropped, only page
 * k leaving).
 */
static struct mem thp_changed_at(int *fd, size_t k, int drop)
{
	size_t ps = page_size();
	uint64_t *e = calloc(HPAGE_NR, 8);
	struct mem m;

	CHECK(e != NULL, "calloc");
	m = mem_rwp(MEM_ANON_THP, 1, fd, 0, UFFDIO_REGISTER_MODE_RWP);
	arm(*fd, m.addr, m.len);
	if (drop)
		CHECK(madvise(m.addr + k * ps, ps, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	else
		disarm(*fd, m.addr + k * ps, ps);
	CHECK(!vma_has_anon_thp(m.addr), "the PMD is still mapped after a 4K %s",
	      drop ? "MADV_DONTNEED" : "resolve");
	pagemap_range(m.addr, HPAGE_NR, e);
	for (size_t i = 0; i < HPAGE_NR; i++) {
		int uffd = (e[i] >> PM_UFFD_BIT) & 1, present = (e[i] >> PM_PRESENT_BIT) & 1;

		if (uffd != (i != k) || (drop && present != (i != k)))
			FAIL("page %zu: pagemap 0x%llx after %s page %zu only", i,
			     (unsigned long long)e[i], drop ? "dropping" : "resolving", k);
	}
	free(e);
	return m;
}

/*
 * J6: a huge zero page never protected in an RWP VMA, split by a 4K
 * MADV_DONTNEED, leaves the other 511 zero-page PTEs readable without a fault
 */
RWP_TEST(unprotected_huge_zero_page_split_stays_readable)
{
	int fd;
	char *p = huge_zero_page_rwp(&fd);
	long faults;

	CHECK(madvise(p + 5 * page_size(), page_size(), MADV_DONTNEED) == 0, "MADV_DONTNEED");
	faults = faults_reading_huge_but(p, 5);
	CHECK(faults == 0, "reading the 511 pages of a split, never protected huge zero page "
	      "took %ld faults, want 0", faults);
	want_quiet(fd, "reads of the split huge zero page");
}

/*
 * J6: a THP never protected in an RWP VMA, split by a 4K MADV_DONTNEED,
 * leaves its other 511 pages accessible: no fault on their first read
 */
RWP_TEST(unprotected_thp_split_stays_accessible_anon_thp)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON_THP, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	long faults;

	CHECK(madvise(m.addr + 7 * page_size(), page_size(), MADV_DONTNEED) == 0,
	      "MADV_DONTNEED");
	CHECK(!vma_has_anon_thp(m.addr), "the PMD is still mapped after a 4K MADV_DONTNEED");
	faults = faults_reading_huge_but(m.addr, 7);
	CHECK(faults == 0, "reading the 511 pages of a split, never protected THP took %ld "
	      "faults, want 0", faults);
	want_quiet(fd, "reads of the split THP");
}

/* J6: resolving one 4K page of a protected THP splits the PMD and keeps the other 511 protected */
RWP_TEST(partial_resolve_splits_thp_anon_thp)
{
	int fd;
	struct mem m = thp_changed_at(&fd, 7, 0);
	size_t ps = page_size();

	CHECK(m.addr[7 * ps + 1] == mem_unit_pattern(0), "resolved page contents");
	want_quiet(fd, "read of the resolved page");
	read_blocks_until_resolved(fd, m.addr + 8 * ps, (unsigned long)m.addr + 8 * ps, ps,
				   mem_unit_pattern(0));
}

/* J6: MADV_DONTNEED of one 4K page splits a protected THP; the other 511 PTEs stay protected */
RWP_TEST(dontneed_splits_thp_keeps_protection_anon_thp)
{
	int fd;
	struct mem m = thp_changed_at(&fd, 10, 1);
	size_t ps = page_size();

	read_blocks_until_resolved(fd, m.addr + 11 * ps, (unsigned long)m.addr + 11 * ps, ps,
				   mem_unit_pattern(0));
	read_blocks_until_resolved(fd, m.addr + 9 * ps, (unsigned long)m.addr + 9 * ps, ps,
				   mem_unit_pattern(0));
	want_quiet(fd, "after the resolved faults");
}

/* ---- J7, J8: collapse ---- */

/* 2 MiB of anon at a 2 MiB boundary, filled with 4K pages (THP stays off: enabled=madvise). */
static char *map_collapsible(int *fd)
{
	char *p;

	require_rwp();
	p = map_aligned(HPAGE_SIZE, HPAGE_SIZE, PROT_READ | PROT_WRITE);
	for (size_t i = 0; i < HPAGE_NR; i++)
		p[i * page_size()] = (char)('A' + i % 26);
	if (vma_has_anon_thp(p))
		FAIL("the region got a THP at fault time: is THP enabled=always?");
	*fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(*fd, p, HPAGE_SIZE, UFFDIO_REGISTER_MODE_RWP, NULL), "UFFDIO_REGISTER");
	return p;
}

/* J7: MADV_COLLAPSE over protected PTEs is refused with EINVAL and changes nothing */
RWP_TEST(collapse_refused_over_protected_anon)
{
	int fd, r;
	char *p = map_collapsible(&fd);

	arm(fd, p, 8 * page_size());
	r = madvise(p, HPAGE_SIZE, MADV_COLLAPSE);
	CHECK(r == -1 && errno == EINVAL, "MADV_COLLAPSE returned %d, want EINVAL", r);
	CHECK(!vma_has_anon_thp(p), "a THP appeared");
	want_bits(p, 8, PM_UFFD_BIT, 1, "protected pages after the refused collapse");
	want_bits(p + 8 * page_size(), HPAGE_NR - 8, PM_UFFD_BIT, 0, "unprotected pages");
	read_blocks_until_resolved(fd, p + 3 * page_size(), (unsigned long)p + 3 * page_size(), page_size(),
		    'A' + 3);
}

/* J7: with every page resolved MADV_COLLAPSE succeeds and the THP is unprotected */
RWP_TEST(collapse_of_resolved_range_anon)
{
	int fd, r;
	char *p = map_collapsible(&fd);
	long long c0 = vmstat("thp_collapse_alloc");
	struct page_region reg[4];
	long n;

	arm(fd, p, HPAGE_SIZE);
	disarm(fd, p, HPAGE_SIZE);
	r = madvise(p, HPAGE_SIZE, MADV_COLLAPSE);
	CHECK(r == 0, "MADV_COLLAPSE returned %d", r);
	CHECK(vma_has_anon_thp(p), "no PMD-mapped THP after MADV_COLLAPSE");
	want_grown("thp_collapse_alloc", c0);
	want_bits(p, HPAGE_NR, PM_UFFD_BIT, 0, "the collapsed THP");
	n = scan_pages(p, HPAGE_SIZE, PAGE_IS_ACCESSED, 0, reg, 4);
	CHECK(n == 1 && reg[0].start == (unsigned long)p && reg[0].end == (unsigned long)p + HPAGE_SIZE,
	      "PAGEMAP_SCAN(ACCESSED) found %ld regions, want the whole THP", n);
	for (size_t i = 0; i < HPAGE_NR; i += 97)
		CHECK(p[i * page_size()] == (char)('A' + i % 26), "page %zu contents", i);
	want_quiet(fd, "reads of the collapsed THP");
}

/* J7: an armed VMA allows no empty PTE in a collapse: EBUSY */
RWP_TEST(collapse_with_hole_busy_anon)
{
	int fd, r;
	char *p = map_collapsible(&fd);

	CHECK(madvise(p + 100 * page_size(), page_size(), MADV_DONTNEED) == 0, "MADV_DONTNEED");
	r = madvise(p, HPAGE_SIZE, MADV_COLLAPSE);
	CHECK(r == -1 && errno == EBUSY, "MADV_COLLAPSE returned %d, want EBUSY", r);
	CHECK(!vma_has_anon_thp(p), "a THP appeared");
	CHECK(!pm_bit(p + 100 * page_size(), PM_PRESENT_BIT), "the hole was filled");
}

/* J8: MADV_COLLAPSE of protected shmem unmaps the protected PTEs, and the next access is silent */
RWP_TEST(collapse_drops_protection_shmem)
{
	int fd, mfd;
	char *p;
	long long c0 = vmstat("thp_collapse_alloc"), huge0 = kb_field("/proc/meminfo", NULL, "ShmemHugePages");
	size_t ps = page_size();
	int r, e;

	require_rwp();
	mfd = memfd_create("j8", MFD_CLOEXEC);
	CHECK(mfd >= 0, "memfd_create");
	CHECK(ftruncate(mfd, HPAGE_SIZE) == 0, "ftruncate");
	p = map_aligned(HPAGE_SIZE, HPAGE_SIZE, PROT_NONE);
	CHECK(mmap(p, HPAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0) == p,
	      "mmap memfd at a 2 MiB boundary");
	for (size_t i = 0; i < HPAGE_NR; i++)
		p[i * ps] = (char)('A' + i % 26);
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, HPAGE_SIZE, UFFDIO_REGISTER_MODE_RWP, NULL), "UFFDIO_REGISTER");
	arm(fd, p, HPAGE_SIZE);
	r = madvise(p, HPAGE_SIZE, MADV_COLLAPSE);
	e = errno;
	/*
	 * collapse_file() has already replaced the page cache when the PMD
	 * install is refused for the protected VMA (SCAN_PTE_UFFD, khugepaged.c
	 * 1899-1903): the call reports EINVAL for a range it did change.
	 */
	CHECK(r == -1 && e == EINVAL, "MADV_COLLAPSE returned %d (%s), want EINVAL", r,
	      r ? strerror(e) : "success");
	want_grown("thp_collapse_alloc", c0);
	CHECK(kb_field("/proc/meminfo", NULL, "ShmemHugePages") >= huge0 + 2048,
	      "ShmemHugePages did not grow by 2 MiB: the page cache was not collapsed");
	FINDING("J8: collapse_file() (khugepaged.c:2437-2439) try_to_unmap()s the protected "
		"shmem PTEs and installs no marker; the uffd bit and the RWP fault are lost",
		still_protected(fd, p + 3 * ps, 'A' + 3, "page 3 after the collapse"),
		"page 3 is no longer protected after the collapse");
}

/* ---- J5: shmem reclaim ---- */

/* J5: a protected shmem page reclaimed to swap should still fault when it comes back */
RWP_TEST(swap_out_drops_protection_shmem)
{
	int fd;
	struct mem m = armed_for_swap(MEM_SHMEM, NUNITS, &fd);
	long long out0 = vmstat("pswpout");
	size_t ps = page_size();

	/* A reclaimed shmem page leaves no PTE: smaps' Swap line tells it is out. */
	if (!WAIT_UNTIL(madvise(m.addr, m.len, MADV_PAGEOUT) == 0 &&
			kb_field("/proc/self/smaps", m.addr, "Swap") >= 16, RWP_WAIT_MS))
		FAIL("precondition: smaps shows %lld kB of the memfd in swap after %d ms of "
		     "MADV_PAGEOUT, want 16", kb_field("/proc/self/smaps", m.addr, "Swap"),
		     RWP_WAIT_MS);
	want_grown("pswpout", out0);
	want_bits(m.addr, NUNITS, PM_PRESENT_BIT, 0, "after MADV_PAGEOUT (unmapped)");
	FINDING("J5: try_to_unmap_one() clears file PTEs and only uffd-wp gets a marker "
		"(memory.c:1705-1724, rmap.c:2340-2345); rst 386-389 says protection is "
		"preserved across reclaim",
		still_protected(fd, m.addr + ps, mem_unit_pattern(1), "reclaimed page 1"),
		"reclaimed page 1 is no longer protected");
}

/* ---- J9: NUMA balancing ---- */

#define NUMA_PAGES 64

/* A "key : value" line of /proc/self/sched (NUMA balancing's per-task state). */
static long long sched_field(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f = fopen("/proc/self/sched", "r");

	CHECK(f != NULL, "open /proc/self/sched");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && strchr(line, ':'))
			v = atoll(strchr(line, ':') + 1);
	fclose(f);
	if (v < 0)
		FAIL("/proc/self/sched has no %s", key);
	return v;
}

/* The scanner finished a pass over this mm and this task took hinting faults. */
static int numa_scanned(void)
{
	return sched_field("mm->numa_scan_seq") >= 1 && sched_field("total_numa_faults") > 0;
}

static void *idle_thread(void *arg)
{
	(void)arg;
	sleep(rwp_deadline_s);
	return NULL;
}

/*
 * arg: a memory type. MEM_ANON is NUMA_PAGES pages, the second half protected;
 * MEM_ANON_THP is one THP, all protected and then its first half resolved,
 * which splits the PMD: NUMA balancing then scans a split protected THP.
 */
static void numa_body(void *arg)
{
	enum mem_type type = *(enum mem_type *)arg;
	int fd;
	struct mem m = mem_rwp(type, type == MEM_ANON ? NUMA_PAGES : 1, &fd, 0,
			       UFFDIO_REGISTER_MODE_RWP);
	size_t ps = page_size(), npages = m.len / ps, half = npages / 2 * ps;
	long long upd0 = vmstat("numa_pte_updates"), hint0 = vmstat("numa_hint_faults");
	/* Half the test's deadline: the rest of the test needs the other half on a slow guest. */
	long long budget_ns = rwp_deadline_s * 500000000LL, t_end = rwp_now_ns() + budget_ns;
	struct page_region r[4];
	long n;
	volatile char sink = 0;

	pthread_t idle;

	(void)arg;
	/*
	 * The scanner leaves alone the pages of a single-threaded process that
	 * sit on its own node (folio_can_map_prot_numa()): a second thread
	 * makes it mark them all.
	 */
	thread_start(&idle, idle_thread, NULL);
	if (type == MEM_ANON) {
		arm(fd, m.addr + half, half);
	} else {
		arm(fd, m.addr, m.len);
		disarm(fd, m.addr, half);
		CHECK(!vma_has_anon_thp(m.addr), "resolving half of the protected THP did not split it");
	}
	ok(write_text(NUMA_SYSCTL, "1"), "enable numa_balancing");
	/*
	 * Spin touching the resolved half: the scanner runs from this task's
	 * ticks, so the task must be on the CPU, and its hinting faults must
	 * land on the resolved pages.
	 */
	while (rwp_now_ns() < t_end) {
		long long t_check = rwp_now_ns() + 100000000LL;

		while (rwp_now_ns() < t_check)
			for (size_t i = 0; i < npages / 2; i++)
				sink += m.addr[i * ps];
		if (numa_scanned())
			break;
	}
	(void)sink;
	ok(write_text(NUMA_SYSCTL, "0"), "disable numa_balancing");
	CHECK(numa_scanned(), "no NUMA scan pass or hinting fault in %lld s (numa_scan_seq %lld, "
	      "total_numa_faults %lld)", budget_ns / 1000000000LL, sched_field("mm->numa_scan_seq"),
	      sched_field("total_numa_faults"));
	printf("# numa_scan_seq %lld, total_numa_faults %lld\n", sched_field("mm->numa_scan_seq"),
	       sched_field("total_numa_faults"));
	want_grown("numa_pte_updates", upd0);
	want_grown("numa_hint_faults", hint0);
	want_quiet(fd, "NUMA balancing");
	want_bits(m.addr + half, npages / 2, PM_UFFD_BIT, 1, "protected half after NUMA scans");
	want_bits(m.addr, npages / 2, PM_UFFD_BIT, 0, "resolved half after NUMA scans");
	n = scan_pages(m.addr, m.len, PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(n == 1 && r[0].start == (unsigned long)m.addr && r[0].end == (unsigned long)m.addr + half,
	      "PAGEMAP_SCAN(ACCESSED) found %ld regions, want exactly the resolved half", n);
	for (size_t i = 0; i < npages / 2; i++)
		CHECK(m.addr[i * ps + 1] == mem_unit_pattern(type == MEM_ANON ? i : 0),
		      "resolved page %zu contents", i);
	read_blocks_until_resolved(fd, m.addr + half + 3 * ps, (unsigned long)m.addr + half + 3 * ps, ps,
		    type == MEM_ANON ? mem_unit_pattern(npages / 2 + 3) : mem_unit_pattern(0));
	want_quiet(fd, "after the resolved fault");
}

/* NUMA balancing made to scan soon and often over the body for type, then restored. */
static void numa_scanned_over(enum mem_type type)
{
	struct setting knobs[] = {
		{ .path = NUMA_SYSCTL },
		{ .path = NUMA_DEBUGFS "scan_delay_ms" },
		{ .path = NUMA_DEBUGFS "scan_period_min_ms" },
		{ 0 },
	};

	require_rwp();
	require_two_nodes();
	if (access(NUMA_SYSCTL, W_OK))
		SKIP("no %s (CONFIG_NUMA_BALANCING off)", NUMA_SYSCTL);
	CHECK(setting_read(&knobs[0]) == 0, "read %s", NUMA_SYSCTL);
	/* Scan soon and often: TCG is slow and the test has a deadline. */
	if (setting_read(&knobs[1]) == 0)
		write_text(knobs[1].path, "50");
	if (setting_read(&knobs[2]) == 0)
		write_text(knobs[2].path, "100");
	run_then_restore(numa_body, &type, settings_restore, knobs);
}

/* J9: NUMA balancing scans an RWP VMA without RWP messages and without touching protected PTEs */
RWP_TEST(numa_balancing_no_rwp_faults_anon)
{
	numa_scanned_over(MEM_ANON);
}

/* J9, J6: the same over a protected THP split by a partial resolve */
RWP_TEST(numa_balancing_no_rwp_faults_split_thp)
{
	numa_scanned_over(MEM_ANON_THP);
}

/* ---- J10: mTHP ---- */

/* A per-size counter of 64K mTHP (these exist without CONFIG_VM_EVENT_COUNTERS). */
static long long mthp_stat(const char *name)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), MTHP_64K "stats/%s", name);
	ok(read_text(path, buf, sizeof(buf)), path);
	return atoll(buf);
}

static long long mthp_faults(void)
{
	return mthp_stat("anon_fault_alloc");
}

/* 1 MiB of untouched anon at a 64K boundary, so a 64K mTHP fits every slot. */
static char *map_64k_aligned(void)
{
	return map_aligned(1 << 20, 0x10000, PROT_READ | PROT_WRITE);
}

static void mthp_body(void *arg)
{
	int fd;
	size_t len = 1 << 20, ps = page_size();
	char *ctl = map_64k_aligned(), *armed = map_64k_aligned();
	long long f0;

	(void)arg;
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, armed, len, UFFDIO_REGISTER_MODE_RWP, NULL), "UFFDIO_REGISTER");
	f0 = mthp_faults();
	for (size_t i = 0; i < len; i += ps)
		ctl[i] = 1;
	CHECK(mthp_faults() > f0, "64K mTHP faults did not happen outside uffd: the control failed");
	f0 = mthp_faults();
	for (size_t i = 0; i < len; i += ps)
		armed[i] = 1;
	CHECK(mthp_faults() == f0, "%lld 64K mTHP folios were allocated in the armed VMA",
	      mthp_faults() - f0);
	want_quiet(fd, "first touch of unprotected pages");
	/* Protecting then resolving one page must act on exactly that page. */
	arm(fd, armed, len);
	disarm(fd, armed + 3 * ps, ps);
	CHECK(page_uffd_bit(armed + 2 * ps) && page_uffd_bit(armed + 4 * ps) &&
	      !page_uffd_bit(armed + 3 * ps), "a 4K resolve changed its neighbours");
}

/* Runs body with 64K mTHP enabled=always, then puts the old setting back. */
static void mthp_enable_then(void (*body)(void *))
{
	struct setting enabled[] = { { .path = MTHP_64K "enabled", .choice = 1 }, { 0 } };

	if (setting_read(&enabled[0]))
		SKIP("no %s (no 64K mTHP on this kernel)", MTHP_64K "enabled");
	ok(write_text(MTHP_64K "enabled", "always"), "enable 64K mTHP");
	run_then_restore(body, NULL, settings_restore, enabled);
}

/* J10: first-touch faults in an armed VMA allocate order-0 pages even with 64K mTHP enabled */
RWP_TEST(mthp_not_used_in_armed_vma_anon)
{
	require_rwp();
	mthp_enable_then(mthp_body);
}

static void read_all(char *p, size_t len)
{
	volatile char sink = 0;

	for (size_t i = 0; i < len; i += page_size())
		sink += p[i];
	(void)sink;
}

static void mthp_swapin_body(void *arg)
{
	int fd;
	size_t len = 1 << 20;
	char *ctl = map_64k_aligned(), *armed = map_64k_aligned();
	long long s0;

	(void)arg;
	/*
	 * Both regions are swapped out as 64K folios, so their swap slots are
	 * contiguous and aligned: only the armed check (memory.c:4807-4811)
	 * stands between the armed region and a 64K swap-in.
	 */
	s0 = mthp_faults();
	memset(ctl, 1, len);
	memset(armed, 2, len);
	CHECK(mthp_faults() >= s0 + 32, "only %lld 64K folios for 2 MiB", mthp_faults() - s0);
	s0 = mthp_stat("swpout");
	page_out(ctl, len);
	page_out(armed, len);
	if (mthp_stat("swpout") < s0 + 32)
		SKIP("the swap device took %lld of 32 64K folios whole (no large-folio swap-out)",
		     mthp_stat("swpout") - s0);
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, armed, len, UFFDIO_REGISTER_MODE_RWP, NULL), "UFFDIO_REGISTER");
	s0 = mthp_stat("swpin");
	read_all(ctl, len);
	if (mthp_stat("swpin") == s0)
		SKIP("control: no 64K swap-in outside uffd either (no large-folio swap-in from "
		     "this device), so the check would prove nothing");
	s0 = mthp_stat("swpin");
	read_all(armed, len);
	CHECK(mthp_stat("swpin") == s0, "%lld 64K folios were swapped in to the armed VMA",
	      mthp_stat("swpin") - s0);
	want_bits(armed, len / page_size(), PM_PRESENT_BIT, 1, "armed pages after the reads");
	CHECK(armed[len - 1] == 2, "armed region contents after swap-in");
	want_quiet(fd, "swap-in of unprotected pages");
}

/* J10: swap-in to an armed VMA is order-0 even where the slots would allow a 64K swap-in */
RWP_TEST(mthp_swapin_order0_in_armed_vma_anon)
{
	require_rwp();
	require_swap(NULL, 0, NULL);
	mthp_enable_then(mthp_swapin_body);
}

RWP_MAIN
