// SPDX-License-Identifier: GPL-2.0
/*
 * The RWP contract (docs/contract.md) over the life of a mapping: fork,
 * mremap, zapping, MOVE and the fill ioctls (area I), accesses made by the
 * kernel on the process's behalf and core dumps (area K), bounded races of
 * faults against fork, mremap and resolves, and unprivileged use (area L).
 * Each test names its contract ids in the comment right above it.
 */
#include "rwp_mem.h"
#include <elf.h>
#include <sys/resource.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define SYSCTL_UNPRIV "/proc/sys/vm/unprivileged_userfaultfd"
#define NOBODY 65534

static int is_shared(enum mem_type t)
{
	return t == MEM_SHMEM || t == MEM_HUGETLB;
}

/* The address a fault message reports for an access at p (no EXACT_ADDRESS). */
static unsigned long fault_addr(const struct mem *m, const void *p)
{
	unsigned long mask = mem_is_huge(m->type) ? HPAGE_SIZE - 1 : page_size() - 1;

	return (unsigned long)p & ~mask;
}

/* ---- a syscall made from another thread, so the test can be its handler ---- */

struct job {
	pthread_t thread;
	long (*fn)(struct job *);
	int fd;
	pid_t tid;
	void *addr;
	void *buf;
	size_t len;
	long arg;
	long ret;
	int err;
	volatile int done;
};

static void *job_main(void *p)
{
	struct job *j = p;

	j->tid = (pid_t)syscall(SYS_gettid);
	errno = 0;
	j->ret = j->fn(j);
	j->err = errno;
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void job_start(struct job *j, long (*fn)(struct job *))
{
	j->fn = fn;
	j->done = 0;
	j->tid = 0;
	thread_start(&j->thread, job_main, j);
}

/* Did the job finish within ms? Joins it if so. */
static int job_wait(struct job *j, int ms)
{
	if (!WAIT_UNTIL(__atomic_load_n(&j->done, __ATOMIC_ACQUIRE), ms))
		return 0;
	pthread_join(j->thread, NULL);
	return 1;
}

static void job_finishes(struct job *j, const char *what)
{
	if (!job_wait(j, RWP_WAIT_MS))
		FAIL("%s did not return within %d ms", what, RWP_WAIT_MS);
}

static long do_read(struct job *j)
{
	return read(j->fd, j->addr, j->len);
}

static long do_write(struct job *j)
{
	return write(j->fd, j->addr, j->len);
}

static long do_pread(struct job *j)
{
	return pread(j->fd, j->buf, j->len, (off_t)(unsigned long)j->addr);
}

static long do_vm_readv(struct job *j)
{
	struct iovec local = { j->buf, j->len }, remote = { j->addr, j->len };

	return process_vm_readv((pid_t)j->arg, &local, 1, &remote, 1, 0);
}

static long do_madvise(struct job *j)
{
	return madvise(j->addr, j->len, (int)j->arg);
}

static long do_mlock(struct job *j)
{
	return mlock(j->addr, j->len);
}

static long do_mremap(struct job *j)
{
	return (long)mremap(j->addr, j->len, j->len, MREMAP_MAYMOVE | MREMAP_FIXED, j->buf);
}

/* ---- I. fork ---- */

/* Shared between a test and the child it forks from a job thread. */
static struct mem fork_mem;
static char fork_want;

static int child_wait_byte(int rfd)
{
	char c;

	return read(rfd, &c, 1) == 1;
}

/* I1, I2: without EVENT_FORK the child owes nothing to the uffd; the parent keeps its protection */
RWP_TEST_MEM(fork_without_event_child_reads_freely)
{
	int fd, status, go[2];
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;
	pid_t pid;

	arm(fd, m.addr, m.len);
	CHECK(pipe(go) == 0, "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		alarm(10);
		if (is_shared(type) && (pagemap_entry(m.addr) >> PM_PRESENT_BIT & 1))
			_exit(2);	/* I2: no page tables are copied */
		if (page_uffd_bit(m.addr))
			_exit(3);
		if (m.addr[m.unit + 7] != mem_unit_pattern(1))
			_exit(4);
		if (page_uffd_bit(m.addr + m.unit))
			_exit(5);
		if (!child_wait_byte(go[0]))
			_exit(6);
		/* The parent wrote 'P' to unit 2: shared types see it, private ones keep theirs. */
		_exit(m.addr[2 * m.unit] == (is_shared(type) ? 'P' : mem_unit_pattern(2)) ? 0 : 7);
	}
	disarm(fd, m.addr + 2 * m.unit, m.unit);
	m.addr[2 * m.unit] = 'P';
	CHECK(write(go[1], "g", 1) == 1, "pipe write");
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status 0x%x (exit 2: pages copied; 3/5: uffd bit; 4: data; 7: COW)", status);
	want_quiet(fd, "after the child's accesses");
	CHECK(page_uffd_bit(m.addr) && page_uffd_bit(m.addr + m.unit),
	      "the parent lost its protection across fork");
	accessor_start(&acc, m.addr + m.unit, 0, 0);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, m.addr + m.unit));
	disarm(fd, m.addr + m.unit, m.unit);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the parent's reader did not resume");
	CHECK(acc.value == mem_unit_pattern(1), "parent read 0x%x", acc.value);
}

static long do_fork_child(struct job *j)
{
	struct mem *m = &fork_mem;
	pid_t pid = fork();

	(void)j;
	if (pid != 0)
		return pid;
	alarm(10);
	if (!page_uffd_bit(m->addr) || !page_uffd_bit(m->addr + m->unit))
		_exit(2);
	/* Blocks on the child's own uffd until the monitor resolves it there. */
	if (m->addr[m->unit + 3] != mem_unit_pattern(1))
		_exit(3);
	if (page_uffd_bit(m->addr + m->unit) || !page_uffd_bit(m->addr))
		_exit(4);
	_exit(m->addr[2 * m->unit] == fork_want ? 0 : 5);
}

/* I3, I4: with EVENT_FORK the child keeps its protection on a new uffd; the event holds RWPROTECT off */
RWP_TEST_MEM(fork_with_event_child_keeps_protection)
{
	int fd, ufd, status;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_EVENT_FORK, UFFDIO_REGISTER_MODE_RWP);
	struct pollfd pfd = { .events = POLLIN };
	struct uffd_msg msg;
	struct accessor acc;
	struct job forker;

	arm(fd, m.addr, m.len);
	fork_mem = m;
	fork_want = is_shared(type) ? 'P' : mem_unit_pattern(2);
	job_start(&forker, do_fork_child);
	pfd.fd = fd;
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1, "no fork event within %d ms", RWP_WAIT_MS);
	CHECK(!job_wait(&forker, 200), "fork() returned before its event was read");
	refused(uffd_rwprotect(fd, m.addr, m.len, UFFDIO_RWPROTECT_MODE_RWP), EAGAIN,
		"RWPROTECT with the fork event unread");
	ok(uffd_set_mode(fd, 0, UFFD_FEATURE_RWP_ASYNC), "SET_MODE with the fork event unread");
	CHECK(uffd_read_msg(fd, &msg, 0) == 1, "read the fork event");
	CHECK(msg.event == UFFD_EVENT_FORK, "event 0x%x, want UFFD_EVENT_FORK", msg.event);
	ufd = (int)msg.arg.fork.ufd;
	CHECK(fcntl(ufd, F_GETFD) >= 0, "fork event ufd %d is not an open fd", ufd);
	job_finishes(&forker, "fork()");
	CHECK(forker.ret > 0, "fork failed: %s", strerror(forker.err));
	arm(fd, m.addr, m.unit);	/* RWPROTECT works again */

	/* COW: the parent's write after fork reaches the child only for shared memory. */
	disarm(fd, m.addr + 2 * m.unit, m.unit);
	m.addr[2 * m.unit] = 'P';

	want_fault(ufd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, m.addr + m.unit));
	want_quiet(fd, "child fault on the parent's uffd");
	ok(uffd_rwprotect(ufd, m.addr + m.unit, 2 * m.unit, 0), "resolve in the child");
	CHECK(waitpid((pid_t)forker.ret, &status, 0) == (pid_t)forker.ret, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status 0x%x (exit 2: protection not inherited; 3: data; 4: resolve; 5: COW)",
	      status);
	CHECK(page_uffd_bit(m.addr + m.unit), "resolving in the child unprotected the parent");
	accessor_start(&acc, m.addr + m.unit, 0, 0);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, m.addr + m.unit));
	disarm(fd, m.addr + m.unit, m.unit);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the parent's reader did not resume");
}

/* The forked child's half of I21: its copy of the pinned page, read through its own uffd. */
static long do_fork_pinned_child(struct job *j)
{
	char *p = fork_mem.addr + fork_mem.unit - page_size();
	uint64_t pfn;
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	alarm(10);
	if (!page_uffd_bit(p))
		_exit(2);
	/* Blocks on the child's own uffd until the test resolves it there. */
	for (size_t i = 0; i < page_size(); i++)
		if (p[i] != mem_unit_pattern(0))
			_exit(3);
	pfn = pfn_of(p);
	_exit(write((int)j->arg, &pfn, sizeof(pfn)) == sizeof(pfn) ? 0 : 4);
}

/*
 * I21: a page pinned when fork() runs is copied for the child, not shared (the pin
 * forbids COW), and the copy keeps the parent's protection on the child's uffd
 */
RWP_TEST_MEM(fork_copies_pinned_page_protected)
{
	int fd, ufd, status, pfns[2];
	struct mem m = mem_rwp(type, 2, &fd, UFFD_FEATURE_EVENT_FORK, UFFDIO_REGISTER_MODE_RWP);
	size_t ps = page_size();
	char *pinned = m.addr + m.unit - ps, buf[2 * 4096];
	struct job reader = { .addr = pinned, .buf = buf, .len = 2 * ps, .arg = getpid() };
	struct job forker = { 0 };
	struct uffd_msg msg;
	uint64_t child_pfn = 0;

	CHECK(ps == 4096, "page size %zu", ps);
	/*
	 * process_vm_readv() pins the last page of unit 0, still accessible, then
	 * waits on unit 1's RWP fault with that pin held: the window for fork().
	 */
	arm(fd, m.addr + m.unit, m.unit);
	job_start(&reader, do_vm_readv);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, m.addr + m.unit));
	arm(fd, m.addr, m.unit);
	CHECK(page_uffd_bit(pinned), "RWPROTECT of the pinned unit");

	fork_mem = m;
	CHECK(pipe(pfns) == 0, "pipe");
	forker.arg = pfns[1];
	job_start(&forker, do_fork_pinned_child);
	CHECK(uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1, "no fork event within %d ms", RWP_WAIT_MS);
	CHECK(msg.event == UFFD_EVENT_FORK, "event 0x%x, want UFFD_EVENT_FORK", msg.event);
	ufd = (int)msg.arg.fork.ufd;
	job_finishes(&forker, "fork()");
	CHECK(forker.ret > 0, "fork failed: %s", strerror(forker.err));

	want_fault(ufd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, pinned));
	ok(uffd_rwprotect(ufd, m.addr, m.unit, 0), "resolve unit 0 in the child");
	CHECK(waitpid((pid_t)forker.ret, &status, 0) == (pid_t)forker.ret, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status 0x%x (exit 2: protection not inherited; 3: data; 4: pipe)", status);
	CHECK(read(pfns[0], &child_pfn, sizeof(child_pfn)) == sizeof(child_pfn), "child's pfn");
	if (is_shared(type))
		CHECK(child_pfn == pfn_of(pinned), "shared memory: the child maps pfn 0x%llx, "
		      "the parent 0x%llx", (unsigned long long)child_pfn,
		      (unsigned long long)pfn_of(pinned));
	else
		CHECK(child_pfn != pfn_of(pinned), "the pinned private page (pfn 0x%llx) was "
		      "shared with the child, not copied", (unsigned long long)child_pfn);

	want_quiet(fd, "the child's fault on the parent's uffd");
	CHECK(page_uffd_bit(pinned), "resolving in the child unprotected the parent");
	disarm(fd, m.addr + m.unit, m.unit);
	job_finishes(&reader, "process_vm_readv");
	CHECK(reader.ret == (long)sizeof(buf), "process_vm_readv returned %ld (%s)", reader.ret,
	      strerror(reader.err));
	CHECK(buf[0] == mem_unit_pattern(0) && buf[ps] == mem_unit_pattern(1), "data read");
	close(pfns[0]);
	close(pfns[1]);
	close(ufd);
}

/*
 * I5 helper: holds the only other reference to the uffd, and closes it as
 * soon as an event is pending, so that the fork event is abandoned unread.
 */
static void abandon_on_event(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	alarm(10);
	_exit(poll(&pfd, 1, RWP_WAIT_MS) == 1 && close(fd) == 0 ? 0 : 2);
}

/* I5: a fork event abandoned by closing the uffd must not leave RWP state in the child */
RWP_TEST(fork_event_abandoned_leaves_child_clean)
{
	int fd, status, hstatus;
	char *p;
	pid_t helper, pid;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_EVENT_FORK);
	helper = fork();	/* nothing is registered yet: no event for this fork */
	CHECK(helper >= 0, "fork helper");
	if (helper == 0)
		abandon_on_event(fd);
	p = map_anon(2 * page_size());
	memset(p, 'a', 2 * page_size());
	ok(uffd_register(fd, p, 2 * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER");
	arm(fd, p, 2 * page_size());
	close(fd);		/* the helper now holds the last reference */
	pid = fork();		/* returns once the helper's close abandons the event */
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int stale_before = page_uffd_bit(p), ok_read, stale_after;

		alarm(5);	/* a fault loop on the stale PTE dies of SIGALRM */
		ok_read = *(volatile char *)p == 'a';
		stale_after = page_uffd_bit(p);
		_exit((stale_before ? 1 : 0) | (stale_after ? 2 : 0) | (ok_read ? 0 : 4));
	}
	CHECK(waitpid(helper, &hstatus, 0) == helper && WIFEXITED(hstatus) &&
	      WEXITSTATUS(hstatus) == 0, "the helper saw no event to abandon (status 0x%x)", hstatus);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status), "the child's access to its copy did not complete (status 0x%x)",
	      status);
	CHECK(!(WEXITSTATUS(status) & 4), "the child read the wrong data");
	CHECK(!page_uffd_bit(p), "the parent's range is still protected after the uffd's release");
	rwp_diag("child: uffd bit before access %d, after access %d", WEXITSTATUS(status) & 1,
		 !!(WEXITSTATUS(status) & 2));
	FINDING("I5: userfaultfd_event_wait_completion() hands the child's new ctx to "
		"userfaultfd_release_new(), which only resets the VMAs' ctx; the PTEs copied "
		"as PAGE_NONE plus the uffd bit (memory.c copy_present_ptes) keep it "
		"in a VMA that is no longer registered",
		!(WEXITSTATUS(status) & 1), "the child's unregistered copy carries the uffd bit");
	CHECK(!(WEXITSTATUS(status) & 2), "the uffd bit survived the child's access");
}

/*
 * K9: the first touch of pages that fork copied, or that mremap moved, takes
 * no fault: protected PTEs are normalised for the unregistered copy or moved
 * range, never left PAGE_NONE to fault once more
 */
RWP_TEST(no_spurious_fault_after_fork_or_mremap)
{
	const size_t n = 16;
	int fd, status;
	struct mem m = mem_rwp(MEM_ANON, n, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	char *to = map_aligned(m.len, HPAGE_SIZE, PROT_NONE), *got;
	long faults;
	pid_t pid;

	arm(fd, m.addr, m.len / 2);
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		long f = 0;
		char which[64] = "";

		for (size_t i = 0; i < n; i++) {
			long one = faults_reading(m.addr + i * page_size(), 1);

			if (one && strlen(which) < sizeof(which) - 4)
				snprintf(which + strlen(which), 4, " %zu", i);
			f += one;
		}
		if (f)
			rwp_diag("child: pages that faulted:%s", which);
		_exit(f > 100 ? 100 : (int)f);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "child status 0x%x", status);
	CHECK(WEXITSTATUS(status) == 0, "the child took %d minor faults reading its %zu copied "
	      "pages (%zu of them protected in the parent)", WEXITSTATUS(status), n, n / 2);
	want_quiet(fd, "the child's reads");
	got = mremap(m.addr, m.len, m.len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	CHECK(got == to, "mremap to %p returned %p", (void *)to, (void *)got);
	faults = faults_reading(to, n);
	CHECK(faults == 0, "reading the %zu moved pages (%zu of them protected before) took %ld "
	      "minor faults", n, n / 2, faults);
	want_quiet(fd, "reads of the moved range");
}

/*
 * K9: the same for a protected PMD-mapped THP: fork without EVENT_FORK gives
 * the child an accessible PMD (copy_huge_pmd() normalises it), not one left
 * PAGE_NONE that a NUMA-hinting fault would open on the first read
 */
RWP_TEST(no_spurious_fault_after_fork_anon_thp)
{
	int fd, status;
	struct mem m = mem_rwp(MEM_ANON_THP, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	pid_t pid;

	arm(fd, m.addr, m.len);
	CHECK(vma_has_anon_thp(m.addr), "precondition: the protected THP is no longer PMD-mapped");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		long f = faults_reading(m.addr, m.len / page_size());

		_exit(f > 100 ? 100 : (int)f);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "child status 0x%x", status);
	CHECK(WEXITSTATUS(status) == 0, "the child took %d minor faults reading its copy of a "
	      "protected THP", WEXITSTATUS(status));
	want_quiet(fd, "the child's reads");
}

/* I1: without EVENT_FORK the child's copy is not registered and not protected */
RWP_TEST(fork_without_event_child_unprotected)
{
	int fd, status;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	pid_t pid;

	arm(fd, m.addr, m.len);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		alarm(5);
		_exit(m.addr[1] == mem_unit_pattern(0) && !page_uffd_bit(m.addr) ? 0 : 3);
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child access to the protected copy: status 0x%x", status);
	want_quiet(fd, "child access");
	CHECK(page_uffd_bit(m.addr), "the parent lost its protection across fork");
}

/* ---- I. mremap ---- */

/* I8: without EVENT_REMAP the moved range is unregistered and its pages accessible */
RWP_TEST_MEM(mremap_without_event_drops_protection)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	char *to = map_aligned(m.len, HPAGE_SIZE, PROT_NONE), *got;

	arm(fd, m.addr, m.len);
	got = mremap(m.addr, m.len, m.len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	CHECK(got == to, "mremap to %p returned %p", (void *)to, (void *)got);
	for (size_t i = 0; i < NUNITS; i++) {
		CHECK(!page_uffd_bit(to + i * m.unit), "unit %zu kept the uffd bit across mremap", i);
		CHECK(to[i * m.unit + 9] == mem_unit_pattern(i), "unit %zu contents", i);
	}
	want_quiet(fd, "accesses at the new address");
	refused(uffd_rwprotect(fd, to, m.len, UFFDIO_RWPROTECT_MODE_RWP), ENOENT,
		"RWPROTECT of the moved (unregistered) range");
}

/* I9, I4: with EVENT_REMAP the protection moves with the pages, after a REMAP message */
RWP_TEST_MEM(mremap_with_event_moves_protection)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_EVENT_REMAP, UFFDIO_REGISTER_MODE_RWP);
	struct pollfd pfd = { .events = POLLIN };
	struct uffd_msg msg;
	struct accessor acc;
	struct job mover = { .addr = m.addr, .len = m.len };
	char *to = map_aligned(m.len, HPAGE_SIZE, PROT_NONE);

	arm(fd, m.addr, m.len);
	mover.buf = to;
	job_start(&mover, do_mremap);
	pfd.fd = fd;
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1, "no remap event within %d ms", RWP_WAIT_MS);
	CHECK(!job_wait(&mover, 200), "mremap() returned before its event was read");
	refused(uffd_rwprotect(fd, to, m.len, UFFDIO_RWPROTECT_MODE_RWP), EAGAIN,
		"RWPROTECT with the remap event unread");
	CHECK(uffd_read_msg(fd, &msg, 0) == 1, "read the remap event");
	CHECK(msg.event == UFFD_EVENT_REMAP, "event 0x%x, want UFFD_EVENT_REMAP", msg.event);
	CHECK(msg.arg.remap.from == (unsigned long)m.addr && msg.arg.remap.to == (unsigned long)to &&
	      msg.arg.remap.len == m.len, "remap 0x%llx -> 0x%llx len 0x%llx",
	      (unsigned long long)msg.arg.remap.from, (unsigned long long)msg.arg.remap.to,
	      (unsigned long long)msg.arg.remap.len);
	job_finishes(&mover, "mremap()");
	CHECK((char *)mover.ret == to, "mremap returned %p: %s", (void *)mover.ret,
	      strerror(mover.err));
	for (size_t i = 0; i < NUNITS; i++)
		CHECK(page_uffd_bit(to + i * m.unit), "unit %zu lost its protection in the move", i);
	accessor_start(&acc, to + m.unit + 5, 0, 0);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, to + m.unit));
	disarm(fd, to + m.unit, m.unit);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume");
	CHECK(acc.value == mem_unit_pattern(1), "read 0x%x after the move", acc.value);
	CHECK(page_uffd_bit(to), "resolving unit 1 unprotected unit 0");
}

/*
 * I8: a range moved by mremap without EVENT_REMAP, one unit of it protected:
 * only the protected entries are normalised; the units that were never
 * protected keep their write permission, so their first write takes no fault
 */
RWP_TEST_MEM(mremap_keeps_unprotected_units_writable)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	char *to = map_aligned(m.len, HPAGE_SIZE, PROT_NONE), *got;
	long f0, faults;

	arm(fd, m.addr + m.unit, m.unit);
	got = mremap(m.addr, m.len, m.len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	CHECK(got == to, "mremap to %p returned %p", (void *)to, (void *)got);
	CHECK(type != MEM_ANON_THP || vma_has_anon_thp(to),
	      "precondition: the moved range holds no PMD-mapped THP");
	CHECK(!page_uffd_bit(to + m.unit), "the moved protected unit kept the uffd bit");
	thread_minor_faults();		/* its own pages are faulted in now, not below */
	f0 = thread_minor_faults();
	for (size_t i = 0; i < NUNITS; i++)
		if (i != 1)
			to[i * m.unit + 7] = 'w';
	faults = thread_minor_faults() - f0;
	CHECK(faults == 0, "the first writes to the %d moved units never protected took %ld "
	      "faults, want 0", NUNITS - 1, faults);
	CHECK(to[m.unit] == mem_unit_pattern(1), "the moved protected unit reads 0x%x",
	      to[m.unit]);
	want_quiet(fd, "accesses to the moved range");
}

/* ---- I. mprotect ---- */

/* I6: mprotect round trips keep the protection of protected pages only */
RWP_TEST_MEM(mprotect_round_trip_keeps_protection)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	arm(fd, m.addr, m.len);
	ok(uffd_rwprotect(fd, m.addr + m.unit, m.unit, 0), "resolve unit 1");
	CHECK(mprotect(m.addr, m.len, PROT_READ) == 0, "mprotect(PROT_READ)");
	CHECK(mprotect(m.addr, m.len, PROT_READ | PROT_WRITE) == 0, "mprotect(RW)");
	CHECK(page_uffd_bit(m.addr), "unit 0 lost its protection across mprotect");
	CHECK(!page_uffd_bit(m.addr + m.unit), "unit 1 became protected across mprotect");
	m.addr[m.unit + 1] = 'W';
	read_blocks_until_resolved(fd, m.addr, (unsigned long)m.addr, m.unit, ANY_BYTE);
}

/* I7: an RWP VMA made PROT_NONE faults as SIGSEGV, not to the handler; RW re-arms RWP */
RWP_TEST(prot_none_over_rwp_is_sigsegv_then_rwp_again)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	arm(fd, m.addr, m.len);
	CHECK(mprotect(m.addr, m.len, PROT_NONE) == 0, "mprotect(PROT_NONE)");
	CHECK(access_signal(m.addr, 0, NULL) == SIGSEGV, "a read of the PROT_NONE RWP VMA succeeded");
	want_quiet(fd, "access to PROT_NONE");
	CHECK(mprotect(m.addr, m.len, PROT_READ | PROT_WRITE) == 0, "mprotect(RW)");
	read_blocks_until_resolved(fd, m.addr, (unsigned long)m.addr, page_size(), ANY_BYTE);
}

/* ---- I. zapping: MADV_DONTNEED, hole punch, truncate ---- */

static const enum mem_type shared_types[] = { MEM_SHMEM, MEM_HUGETLB };

/* I11: MADV_DONTNEED on shared memory drops the protection but keeps the data */
RWP_TEST(dontneed_shared_keeps_data_drops_protection)
{
	for (size_t k = 0; k < 2; k++) {
		int fd;
		struct mem m = mem_rwp(shared_types[k], NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
		struct accessor acc;

		arm(fd, m.addr, m.len);
		CHECK(madvise(m.addr + m.unit, m.unit, MADV_DONTNEED) == 0, "MADV_DONTNEED %s",
		      mem_names[m.type]);
		CHECK(!page_uffd_bit(m.addr + m.unit), "%s: uffd bit on a zapped unit",
		      mem_names[m.type]);
		accessor_start(&acc, m.addr + m.unit + 11, 0, 0);
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "%s: access after DONTNEED blocked",
		      mem_names[m.type]);
		CHECK(acc.value == mem_unit_pattern(1), "%s: read 0x%x, data lost", mem_names[m.type],
		      acc.value);
		want_quiet(fd, "access after DONTNEED");
		CHECK(!page_uffd_bit(m.addr + m.unit), "%s: refaulted unit protected",
		      mem_names[m.type]);
		CHECK(page_uffd_bit(m.addr + 2 * m.unit), "%s: neighbour lost its protection",
		      mem_names[m.type]);
		close(fd);
	}
}

/* I12, I13: punching a hole under a blocked RWP fault: UFFDIO_WAKE, then MISSING, then COPY */
RWP_TEST(hole_punch_under_blocked_fault)
{
	for (size_t k = 0; k < 2; k++) {
		int fd;
		struct mem m = mem_rwp(shared_types[k], NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP);
		const char *name = mem_names[m.type];
		char *src = map_anon(m.unit);
		struct uffdio_copy copy = {
			.dst = (unsigned long)m.addr + m.unit, .src = (unsigned long)src,
			.len = m.unit,
		};
		struct accessor acc;

		memset(src, 'C', m.unit);
		arm(fd, m.addr, m.len);
		accessor_start(&acc, m.addr + m.unit + 1, 0, 0);
		want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)m.addr + m.unit);
		CHECK(fallocate(m.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)m.unit,
				(off_t)m.unit) == 0, "%s: punch hole", name);
		CHECK(!(pagemap_entry(m.addr + m.unit) >> PM_PRESENT_BIT & 1),
		      "%s: punched unit still mapped", name);
		CHECK(!accessor_wait(&acc, 300), "%s: the punch woke the blocked thread", name);
		ok(uffd_wake(fd, m.addr + m.unit, m.unit), "UFFDIO_WAKE");
		want_fault(fd, 0, (unsigned long)m.addr + m.unit);	/* MISSING, a read */
		ok(ioctl_err(fd, UFFDIO_COPY, &copy), "UFFDIO_COPY");
		CHECK(copy.copy == (__s64)m.unit, "%s: copy = %lld", name, (long long)copy.copy);
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "%s: COPY did not release the thread", name);
		CHECK(acc.value == 'C', "%s: read 0x%x, want the copied data", name, acc.value);
		CHECK(!page_uffd_bit(m.addr + m.unit), "%s: COPY armed RWP", name);
		CHECK(page_uffd_bit(m.addr), "%s: unit 0 lost its protection", name);
		want_quiet(fd, "after COPY");
		close(fd);
	}
}

/* I12: truncation drops the protected pages: an access beyond EOF is SIGBUS, with no message */
RWP_TEST(truncate_protected_range_sigbus)
{
	for (size_t k = 0; k < 2; k++) {
		int fd;
		struct mem m = mem_rwp(shared_types[k], NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
		const char *name = mem_names[m.type];

		arm(fd, m.addr, m.len);
		CHECK(ftruncate(m.fd, (off_t)m.unit) == 0, "%s: ftruncate", name);
		CHECK(page_uffd_bit(m.addr), "%s: unit 0 (below EOF) lost its protection", name);
		CHECK(!(pagemap_entry(m.addr + 2 * m.unit) >> PM_PRESENT_BIT & 1),
		      "%s: truncated unit still mapped", name);
		CHECK(access_signal(m.addr + 2 * m.unit, 0, NULL) == SIGBUS,
		      "%s: access beyond EOF was not SIGBUS", name);
		want_quiet(fd, "access beyond EOF");
		close(fd);
	}
}

/* I10: MADV_DONTNEED drops the protection of anon pages with the pages */
RWP_TEST(madv_dontneed_drops_protection)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	arm(fd, m.addr, m.len);
	CHECK(madvise(m.addr, page_size(), MADV_DONTNEED) == 0, "MADV_DONTNEED");
	CHECK(!page_uffd_bit(m.addr), "uffd bit on a zapped page");
	CHECK(m.addr[0] == 0, "a dropped anon page reads 0x%x, want a zero page", m.addr[0]);
	want_quiet(fd, "access after MADV_DONTNEED");
	CHECK(page_uffd_bit(m.addr + page_size()), "the next page lost its protection");
}

/* ---- I. fill ioctls ---- */

/* Make unit i unpopulated (no PTE, and no page cache page for shared memory). */
static void make_hole(struct mem *m, size_t i)
{
	if (is_shared(m->type))
		CHECK(fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(i * m->unit), (off_t)m->unit) == 0, "punch unit %zu", i);
	else
		CHECK(madvise(m->addr + i * m->unit, m->unit, MADV_DONTNEED) == 0,
		      "DONTNEED unit %zu", i);
	CHECK(!(pagemap_entry(m->addr + i * m->unit) >> PM_PRESENT_BIT & 1),
	      "unit %zu still mapped", i);
}

/*
 * I20: POISON into an RWP range: the poisoned unit is SIGBUS; a poison marker
 * carries no protection, so PAGEMAP_SCAN reports it swapped and accessed after
 * RWPROTECT; RWPROTECT and the resolve over it keep the poison
 */
RWP_TEST_MEM(poison_in_rwp_range_stays_poisoned)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_POISON,
			       UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP);
	char *poisoned = m.addr + m.unit;
	struct uffdio_poison po = { .range = { .start = (unsigned long)poisoned, .len = m.unit } };
	struct page_region r[NUNITS];
	long n;

	make_hole(&m, 1);
	ok(ioctl_err(fd, UFFDIO_POISON, &po), "UFFDIO_POISON into a hole");
	CHECK(po.updated == (__s64)m.unit, "poisoned %lld bytes, want %zu", (long long)po.updated,
	      m.unit);
	arm(fd, m.addr, m.len);
	n = scan_pages(m.addr, m.len, PAGE_IS_ACCESSED, 0, r, NUNITS);
	CHECK(n == 1 && r[0].start == (unsigned long)poisoned &&
	      r[0].end == (unsigned long)poisoned + m.unit,
	      "ACCESSED after RWPROTECT: %ld regions, the first [%llx, %llx), want the poisoned "
	      "unit [%p, %p)", n, n > 0 ? (unsigned long long)r[0].start : 0ULL,
	      n > 0 ? (unsigned long long)r[0].end : 0ULL, (void *)poisoned,
	      (void *)(poisoned + m.unit));
	n = scan_pages(poisoned, m.unit, PAGE_IS_SWAPPED, 0, r, NUNITS);
	CHECK(n == 1, "the poisoned unit is not PAGE_IS_SWAPPED (%ld regions)", n);
	disarm(fd, m.addr, m.len);
	CHECK(access_signal(poisoned, 0, NULL) == SIGBUS, "the poisoned unit was not SIGBUS after "
	      "RWPROTECT and its resolve");
	CHECK(m.addr[0] == mem_unit_pattern(0) && m.addr[2 * m.unit] == mem_unit_pattern(2),
	      "the units beside the poison changed");
	want_quiet(fd, "the SIGBUS of a poisoned unit");
}

/* I13: COPY and ZEROPAGE into an RWP range fill unprotected pages; populated targets are EEXIST */
RWP_TEST_MEM(copy_and_zeropage_do_not_arm)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP);
	char *src = map_anon(m.unit);
	struct uffdio_copy copy = {
		.dst = (unsigned long)m.addr + m.unit, .src = (unsigned long)src, .len = m.unit,
	};
	struct uffdio_zeropage zp = {
		.range = { .start = (unsigned long)m.addr + 2 * m.unit, .len = m.unit },
	};
	int zerr;

	memset(src, 'C', m.unit);
	arm(fd, m.addr, m.len);
	make_hole(&m, 1);
	make_hole(&m, 2);

	copy.mode = UFFDIO_COPY_MODE_WP;
	refused(ioctl_err(fd, UFFDIO_COPY, &copy), EINVAL, "COPY MODE_WP into a non-WP VMA");
	copy.mode = 0;
	ok(ioctl_err(fd, UFFDIO_COPY, &copy), "UFFDIO_COPY into a hole");
	CHECK(copy.copy == (__s64)m.unit, "copy = %lld", (long long)copy.copy);
	CHECK(!page_uffd_bit(m.addr + m.unit), "COPY armed RWP");
	CHECK(m.addr[m.unit + 17] == 'C', "copied data");

	zerr = ioctl_err(fd, UFFDIO_ZEROPAGE, &zp);
	if (mem_is_huge(type)) {
		CHECK(zerr == -EINVAL, "ZEROPAGE on hugetlb returned %d, want -EINVAL", zerr);
	} else {
		CHECK(zerr == 0, "UFFDIO_ZEROPAGE: %s", strerror(-zerr));
		CHECK(zp.zeropage == (__s64)m.unit, "zeropage = %lld", (long long)zp.zeropage);
		CHECK(!page_uffd_bit(m.addr + 2 * m.unit), "ZEROPAGE armed RWP");
		CHECK(m.addr[2 * m.unit + 3] == 0, "zero-filled unit reads 0x%x",
		      m.addr[2 * m.unit + 3]);
	}
	want_quiet(fd, "accesses to filled units");

	copy.dst = (unsigned long)m.addr;
	refused(ioctl_err(fd, UFFDIO_COPY, &copy), EEXIST, "COPY onto a protected unit");
	CHECK(page_uffd_bit(m.addr), "the refused COPY unprotected unit 0");
}

/* I11, I14: after DONTNEED a MINOR|RWP shmem unit raises a MINOR fault; CONTINUE maps it unprotected */
RWP_TEST(continue_into_rwp_range)
{
	for (size_t k = 0; k < 2; k++) {
		int fd;
		struct mem m = mem_rwp(shared_types[k], NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_RWP);
		const char *name = mem_names[m.type];
		struct uffdio_continue cont = {
			.range = { .start = (unsigned long)m.addr + m.unit, .len = m.unit },
		};
		struct accessor acc;

		arm(fd, m.addr, m.len);
		CHECK(madvise(m.addr + m.unit, m.unit, MADV_DONTNEED) == 0, "%s: DONTNEED", name);
		accessor_start(&acc, m.addr + m.unit + 2, 0, 0);
		want_fault(fd, UFFD_PAGEFAULT_FLAG_MINOR, (unsigned long)m.addr + m.unit);
		ok(ioctl_err(fd, UFFDIO_CONTINUE, &cont), "UFFDIO_CONTINUE");
		CHECK(cont.mapped == (__s64)m.unit, "%s: mapped = %lld", name, (long long)cont.mapped);
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "%s: CONTINUE did not release the thread", name);
		CHECK(acc.value == mem_unit_pattern(1), "%s: read 0x%x", name, acc.value);
		CHECK(!page_uffd_bit(m.addr + m.unit), "%s: CONTINUE armed RWP", name);
		CHECK(page_uffd_bit(m.addr + 2 * m.unit), "%s: unit 2 lost its protection", name);
		want_quiet(fd, "after CONTINUE");
		close(fd);
	}
}

static int move_fd(void)
{
	require_rwp();
	if (!(uffd_kernel_features() & UFFD_FEATURE_MOVE))
		SKIP("kernel does not advertise UFFD_FEATURE_MOVE");
	return uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_MOVE);
}

/* I15: MOVE into an RWP destination arms the moved page (a normal page and the zero page) */
RWP_TEST(move_into_rwp_rearms)
{
	size_t ps = page_size();
	int fd = move_fd();
	char *dst = map_anon(2 * ps), *src = map_anon(2 * ps);
	struct page_region vec[2];
	__s64 moved;

	ok(uffd_register(fd, dst, 2 * ps, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP,
			 NULL), "REGISTER MISSING|RWP");
	memset(src, 'M', ps);
	(void)*(volatile char *)(src + ps);	/* maps the zero page */
	ok(uffd_move(fd, dst, src, ps, &moved), "MOVE a page");
	CHECK(moved == (__s64)ps, "move = %lld", (long long)moved);
	ok(uffd_move(fd, dst + ps, src + ps, ps, &moved), "MOVE the zero page");
	CHECK(moved == (__s64)ps, "move = %lld", (long long)moved);
	CHECK(page_uffd_bit(dst) && page_uffd_bit(dst + ps), "moved pages not armed");
	CHECK(scan_pages(dst, 2 * ps, PAGE_IS_ACCESSED, 0, vec, 2) == 0,
	      "moved pages reported accessed");
	read_blocks_until_resolved(fd, dst + 5, (unsigned long)dst, ps, 'M');
	read_blocks_until_resolved(fd, dst + ps + 5, (unsigned long)(dst + ps), ps, 0);
	want_quiet(fd, "after resolving");
}

/* I15: MOVE of a whole PMD-mapped THP into an RWP destination arms the huge PMD */
RWP_TEST(move_thp_into_rwp_rearms)
{
	int fd = move_fd();
	char *src = map_aligned_anon_thp(HPAGE_SIZE), *dst = map_aligned_anon_thp(HPAGE_SIZE);
	__s64 moved;

	memset(src, 'T', HPAGE_SIZE);
	CHECK(vma_has_anon_thp(src), "source is not a PMD-mapped THP");
	ok(uffd_register(fd, dst, HPAGE_SIZE,
			 UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP, NULL),
	   "REGISTER MISSING|RWP");
	ok(uffd_move(fd, dst, src, HPAGE_SIZE, &moved), "MOVE a THP");
	CHECK(moved == (__s64)HPAGE_SIZE, "move = %lld", (long long)moved);
	CHECK(page_uffd_bit(dst) && page_uffd_bit(dst + HPAGE_SIZE - page_size()),
	      "moved THP not armed");
	read_blocks_until_resolved(fd, dst + HPAGE_SIZE / 2 + 1, (unsigned long)(dst + HPAGE_SIZE / 2),
				   HPAGE_SIZE, 'T');
}

/* I16: a MISSING fault resolved by MOVE turns into an RWP fault for the same page */
RWP_TEST(missing_resolved_by_move_then_rwp_fault)
{
	size_t ps = page_size();
	int fd = move_fd();
	char *dst = map_anon(ps), *src = map_anon(ps);
	struct accessor acc;
	__s64 moved;

	ok(uffd_register(fd, dst, ps, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP, NULL),
	   "REGISTER MISSING|RWP");
	memset(src, 'M', ps);
	accessor_start(&acc, dst + 9, 0, 0);
	want_fault(fd, 0, (unsigned long)dst);
	ok(uffd_move(fd, dst, src, ps, &moved), "MOVE to resolve the MISSING fault");
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)dst);
	CHECK(!accessor_wait(&acc, 200), "the reader got past the re-armed page");
	disarm(fd, dst, ps);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume");
	CHECK(acc.value == 'M', "read 0x%x", acc.value);
}

/* I18: MOVE keeps its own rules on RWP ranges: shared or hugetlb dst, unequal prot, another uffd's dst */
RWP_TEST(move_validation_unchanged_by_rwp)
{
	size_t ps = page_size();
	int fd = move_fd(), other = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_MOVE);
	const __u64 mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP;
	char *src = map_anon(ps), *ro = map_anon(ps), *plain = map_anon(ps), *foreign = map_anon(ps);
	struct mem sh = mem_map(MEM_SHMEM, 1), hp = mem_map(MEM_HUGETLB_PRIVATE, 1);
	__s64 moved;

	memset(src, 'S', ps);
	memset(ro, 'R', ps);
	CHECK(mprotect(ro, ps, PROT_READ) == 0, "mprotect(PROT_READ)");
	ok(uffd_register(fd, sh.addr, sh.len, mode, NULL), "REGISTER shmem");
	ok(uffd_register(fd, hp.addr, hp.len, mode, NULL), "REGISTER hugetlb_private");
	ok(uffd_register(fd, plain, ps, mode, NULL), "REGISTER anon");
	ok(uffd_register(other, foreign, ps, mode, NULL), "REGISTER anon on another uffd");
	make_hole(&sh, 0);
	make_hole(&hp, 0);
	refused(uffd_move(fd, sh.addr, src, ps, &moved), EINVAL, "MOVE into an RWP shmem range");
	refused(uffd_move(fd, hp.addr, src, ps, &moved), EINVAL, "MOVE into an RWP hugetlb range");
	refused(uffd_move(fd, plain, ro, ps, &moved), EINVAL, "MOVE from a PROT_READ source");
	refused(uffd_move(fd, foreign, src, ps, &moved), EINVAL,
		"MOVE into a range registered on another uffd");
	CHECK(src[7] == 'S' && ro[7] == 'R', "a refused MOVE took the source page");
	ok(uffd_move(fd, plain, src, ps, &moved), "MOVE into the RWP anon range");
	CHECK(page_uffd_bit(plain), "the accepted MOVE did not arm the page");
}

/* I17: MOVE out of an RWP source: the present page arrives clean, the swapped one must too */
RWP_TEST(move_out_of_rwp_source)
{
	size_t ps = page_size();
	struct accessor acc;
	__s64 moved = 0;
	char *src, *dst;
	int fd, err = 0, bit;

	require_rwp();
	require_swap(NULL, 0, NULL);
	if (!(uffd_kernel_features() & UFFD_FEATURE_MOVE))
		SKIP("kernel does not advertise UFFD_FEATURE_MOVE");
	src = mem_rwp(MEM_ANON, 2, &fd, UFFD_FEATURE_MOVE, UFFDIO_REGISTER_MODE_RWP).addr;
	dst = map_anon(2 * ps);
	ok(uffd_register(fd, dst, 2 * ps, UFFDIO_REGISTER_MODE_MISSING, NULL), "REG dst MISSING");
	arm(fd, src, 2 * ps);
	swap_out(src + ps, 1);
	CHECK(pm_bit(src + ps, PM_UFFD_BIT),
	      "src page 1 is not a protected swap entry (0x%llx)",
	      (unsigned long long)pagemap_entry(src + ps));

	ok(uffd_move(fd, dst, src, ps, &moved), "MOVE the present page");
	CHECK(moved == (__s64)ps, "moved %lld", (long long)moved);
	CHECK(!pm_bit(dst, PM_UFFD_BIT) && pm_bit(dst, PM_PRESENT_BIT), "dst page 0: 0x%llx",
	      (unsigned long long)pagemap_entry(dst));
	CHECK(dst[3] == 'a', "dst page 0 data");
	want_quiet(fd, "read of the moved present page");

	/* A swap entry whose folio is still in the swap cache is EBUSY for a while. */
	WAIT_UNTIL((err = uffd_move(fd, dst + ps, src + ps, ps, &moved)) != -EBUSY && err != -EAGAIN,
		   RWP_WAIT_MS);
	ok(err, "MOVE the swapped page");
	CHECK(pm_bit(dst + ps, PM_SWAP_BIT), "dst page 1 is not a swap entry (0x%llx)",
	      (unsigned long long)pagemap_entry(dst + ps));
	bit = pm_bit(dst + ps, PM_UFFD_BIT);
	accessor_start(&acc, dst + ps, 0, 0);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the read of the moved swapped page blocked");
	CHECK(acc.value == 'b', "dst page 1 reads 0x%x", acc.value);
	want_quiet(fd, "read of the moved swapped page");
	rwp_diag("moved swap entry: bit 57 %d before swap-in, %d after", bit,
		 pm_bit(dst + ps, PM_UFFD_BIT));
	FINDING("I17: move_swap_pte() keeps the source's swap-PTE uffd bit "
		"(uffd.c:1449-1455), so the page lands in a non-RWP VMA still marked",
		!bit, "the swapped page arrived with the uffd bit in a non-RWP VMA");
}

/* ---- K. kernel-side accesses ---- */

/* K1: process_vm_readv/writev on protected pages fault like the caller, from its own task */
RWP_TEST_MEM(process_vm_rw_blocks_until_resolved)
{
	int fd, status, go[2];
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_THREAD_ID, UFFDIO_REGISTER_MODE_RWP);
	char buf[16];
	struct job j = { .addr = NULL, .buf = buf, .len = sizeof(buf) };
	struct uffd_msg msg;
	pid_t pid;

	arm(fd, m.addr, m.len);
	j.addr = m.addr + m.unit + 8;
	j.arg = getpid();
	job_start(&j, do_vm_readv);
	msg = want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, j.addr));
	CHECK(!j.done, "process_vm_readv completed while the page was protected");
	CHECK((pid_t)msg.arg.pagefault.feat.ptid == j.tid, "ptid %u, want the caller %d",
	      msg.arg.pagefault.feat.ptid, j.tid);
	disarm(fd, m.addr + m.unit, m.unit);
	job_finishes(&j, "process_vm_readv");
	CHECK(j.ret == (long)sizeof(buf), "process_vm_readv returned %ld (%s)", j.ret,
	      strerror(j.err));
	CHECK(buf[0] == mem_unit_pattern(1) && buf[15] == mem_unit_pattern(1), "data read");

	/* From another process: the fault is reported with that process's task. */
	CHECK(pipe(go) == 0, "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char w[16];
		struct iovec l = { w, sizeof(w) }, r = { m.addr + 2 * m.unit + 4, sizeof(w) };

		alarm(10);
		memset(w, 'W', sizeof(w));
		_exit(process_vm_writev(getppid(), &l, 1, &r, 1, 0) == (ssize_t)sizeof(w) ? 0 : 2);
	}
	msg = want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP | UFFD_PAGEFAULT_FLAG_WRITE,
			 fault_addr(&m, m.addr + 2 * m.unit));
	CHECK((pid_t)msg.arg.pagefault.feat.ptid == pid, "ptid %u, want the writer %d",
	      msg.arg.pagefault.feat.ptid, pid);
	disarm(fd, m.addr + 2 * m.unit, m.unit);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status 0x%x", status);
	CHECK(m.addr[2 * m.unit + 4] == 'W' && m.addr[2 * m.unit + 19] == 'W', "written data");
	CHECK(page_uffd_bit(m.addr), "unit 0 lost its protection");
}

/* K2: read()/write() of a pipe with a protected buffer block on an RWP fault until resolved */
RWP_TEST_MEM(pipe_io_blocks_until_resolved)
{
	int fd, p[2];
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	char in[16], out[16];
	struct job j = { .len = sizeof(in) };

	CHECK(pipe(p) == 0, "pipe");
	memset(in, 'p', sizeof(in));
	CHECK(write(p[1], in, sizeof(in)) == (ssize_t)sizeof(in), "fill pipe");
	arm(fd, m.addr, m.len);

	j.fd = p[0];
	j.addr = m.addr + m.unit + 4;
	job_start(&j, do_read);		/* the kernel writes user memory */
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP | UFFD_PAGEFAULT_FLAG_WRITE,
		   fault_addr(&m, m.addr + m.unit));
	CHECK(!job_wait(&j, 100), "read() completed into a protected buffer");
	disarm(fd, m.addr + m.unit, m.unit);
	job_finishes(&j, "read()");
	CHECK(j.ret == (long)sizeof(in), "read returned %ld (%s)", j.ret, strerror(j.err));
	CHECK(m.addr[m.unit + 4] == 'p' && m.addr[m.unit + 19] == 'p', "data read from the pipe");

	j.fd = p[1];
	j.addr = m.addr + 2 * m.unit;
	job_start(&j, do_write);	/* the kernel reads user memory */
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, m.addr + 2 * m.unit));
	CHECK(!job_wait(&j, 100), "write() completed from a protected buffer");
	disarm(fd, m.addr + 2 * m.unit, m.unit);
	job_finishes(&j, "write()");
	CHECK(j.ret == (long)sizeof(in), "write returned %ld (%s)", j.ret, strerror(j.err));
	CHECK(read(p[0], out, sizeof(out)) == (ssize_t)sizeof(out), "drain pipe");
	CHECK(out[0] == mem_unit_pattern(2) && out[15] == mem_unit_pattern(2), "data written");
	want_quiet(fd, "after resolving");
}

static int uffd_user_mode_only(void)
{
	int fd = (int)syscall(__NR_userfaultfd, UFFD_USER_MODE_ONLY | O_CLOEXEC | O_NONBLOCK);

	CHECK(fd >= 0, "userfaultfd(UFFD_USER_MODE_ONLY)");
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "API(RWP) on a user-mode-only uffd");
	return fd;
}

/* A kernel access through job fn at addr must fail with EFAULT at once, leaving addr protected. */
static void kernel_access_efaults(int fd, struct job *j, long (*fn)(struct job *), char *addr,
				  const char *what)
{
	job_start(j, fn);
	job_finishes(j, what);
	CHECK(j->ret == -1 && j->err == EFAULT, "%s returned %ld (%s), want EFAULT", what, j->ret,
	      strerror(j->err));
	want_quiet(fd, what);
	CHECK(page_uffd_bit(addr), "%s unprotected the page", what);
}

/* K3: with UFFD_USER_MODE_ONLY kernel accesses get EFAULT, user accesses still fault */
RWP_TEST_MEM(user_mode_only_kernel_access_efaults)
{
	int fd, p[2];
	struct mem m;
	char buf[16];
	struct job j = { .buf = buf, .len = sizeof(buf) };
	struct accessor acc;

	require_rwp();
	m = mem_map(type, NUNITS);
	fd = uffd_user_mode_only();
	ok(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER RWP");
	arm(fd, m.addr, m.len);
	CHECK(pipe(p) == 0, "pipe");
	CHECK(write(p[1], "0123456789abcdef", 16) == 16, "fill pipe");

	j.addr = m.addr + m.unit;
	j.fd = p[0];
	kernel_access_efaults(fd, &j, do_read, m.addr + m.unit, "read() into the buffer");
	j.fd = p[1];
	kernel_access_efaults(fd, &j, do_write, m.addr + m.unit, "write() from the buffer");
	j.arg = getpid();
	kernel_access_efaults(fd, &j, do_vm_readv, m.addr + m.unit, "process_vm_readv");

	accessor_start(&acc, m.addr + m.unit, 0, 0);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, fault_addr(&m, m.addr + m.unit));
	disarm(fd, m.addr + m.unit, m.unit);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the user reader did not resume");
	CHECK(acc.value == mem_unit_pattern(1), "read 0x%x", acc.value);
}

static int open_self_mem(int flags)
{
	int fd = open("/proc/self/mem", flags);

	CHECK(fd >= 0, "open /proc/self/mem");
	return fd;
}

/* K4: /proc/self/mem (no fault retry) cannot wait: sync gives EIO, async resolves the page */
RWP_TEST_MEM(proc_mem_read_sync_eio_async_resolves)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	char buf[16];
	struct job j = { .buf = buf, .len = sizeof(buf) };

	arm(fd, m.addr, m.len);
	j.fd = open_self_mem(O_RDONLY);
	j.addr = m.addr + m.unit + 8;
	job_start(&j, do_pread);
	job_finishes(&j, "pread(/proc/self/mem)");
	CHECK(j.ret == -1 && j.err == EIO, "sync pread returned %ld (%s), want EIO", j.ret,
	      strerror(j.err));
	want_quiet(fd, "sync /proc/self/mem read");
	CHECK(page_uffd_bit(m.addr + m.unit), "the failed read unprotected the unit");

	ok(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), "SET_MODE async");
	job_start(&j, do_pread);
	job_finishes(&j, "async pread(/proc/self/mem)");
	CHECK(j.ret == (long)sizeof(buf), "async pread returned %ld (%s)", j.ret, strerror(j.err));
	CHECK(buf[0] == mem_unit_pattern(1) && buf[15] == mem_unit_pattern(1), "data read");
	CHECK(!page_uffd_bit(m.addr + m.unit), "the async read left the unit protected");
	CHECK(page_uffd_bit(m.addr), "unit 0 lost its protection");
	want_quiet(fd, "async /proc/self/mem read");
}

/* What the traced child of proc_mem_on_prot_none_rwp_vma saw. */
struct k5_shared {
	char *addr;
	size_t unit;
	int quiet;		/* no uffd message after the accesses */
	int prot[NUNITS];		/* uffd bit of each unit after the accesses */
};

/*
 * The child owns the RWP range: it protects it, makes it PROT_NONE and stops
 * under ptrace, so that its parent, as its tracer, gets FOLL_FORCE access
 * through /proc/<child>/mem (CONFIG_PROC_MEM_FORCE_PTRACE) and PTRACE_PEEKDATA.
 */
static void k5_child(enum mem_type type, struct k5_shared *sh)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct uffd_msg msg;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	arm(fd, m.addr, m.len);
	CHECK(mprotect(m.addr, m.len, PROT_NONE) == 0, "mprotect(PROT_NONE)");
	sh->addr = m.addr;
	sh->unit = m.unit;
	CHECK(ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0, "PTRACE_TRACEME");
	raise(SIGSTOP);
	sh->quiet = uffd_read_msg(fd, &msg, 0) == 0;
	for (size_t i = 0; i < NUNITS; i++)
		sh->prot[i] = page_uffd_bit(m.addr + i * m.unit);
	_exit(0);
}

/*
 * K5: once an RWP VMA is PROT_NONE, a tracer's FOLL_FORCE access behaves as on
 * any PROT_NONE VMA: reads succeed, writes succeed on private mappings only,
 * with no uffd message and the uffd bits kept
 */
RWP_TEST_MEM(proc_mem_on_prot_none_rwp_vma)
{
	struct k5_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[64], rbuf[16], wbuf[16];
	ssize_t r, w;
	long peek;
	int status, mfd, peek_err, w_err;
	pid_t pid;

	require_rwp();
	CHECK(sh != MAP_FAILED, "shared page");
	memset(wbuf, 'F', sizeof(wbuf));
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		k5_child(type, sh);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status),
	      "the child did not stop under ptrace (status 0x%x)", status);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mfd = open(path, O_RDWR);
	CHECK(mfd >= 0, "open %s", path);
	r = pread(mfd, rbuf, sizeof(rbuf), (off_t)(unsigned long)(sh->addr + sh->unit));
	w = pwrite(mfd, wbuf, sizeof(wbuf), (off_t)(unsigned long)(sh->addr + 2 * sh->unit));
	w_err = errno;
	errno = 0;
	peek = ptrace(PTRACE_PEEKDATA, pid, sh->addr + 3 * sh->unit, NULL);
	peek_err = errno;
	CHECK(ptrace(PTRACE_DETACH, pid, NULL, NULL) == 0, "PTRACE_DETACH");
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
	CHECK(sh->quiet, "a FOLL_FORCE access produced a uffd message");
	rwp_diag("%s: forced read %zd, write %zd, peek %s; units 1-3 still protected: %d %d %d",
		 mem_names[type], r, w, peek_err ? strerror(peek_err) : "ok", sh->prot[1],
		 sh->prot[2], sh->prot[3]);
	CHECK(r == (ssize_t)sizeof(rbuf) && rbuf[0] == mem_unit_pattern(1),
	      "the forced read returned %zd, byte 0x%x", r, r > 0 ? rbuf[0] : 0);
	CHECK(!peek_err && (char)peek == mem_unit_pattern(3), "PTRACE_PEEKDATA: %s, 0x%lx",
	      peek_err ? strerror(peek_err) : "ok", peek);
	if (type == MEM_SHMEM || type == MEM_HUGETLB)
		CHECK(w == -1, "a forced write to a shared PROT_NONE mapping returned %zd", w);
	else
		CHECK(w == (ssize_t)sizeof(wbuf), "a forced write to a private PROT_NONE mapping "
		      "returned %zd (%s)", w, w < 0 ? strerror(w_err) : "short");
	for (int i = 0; i < NUNITS; i++)
		CHECK(sh->prot[i], "unit %d lost its uffd bit to a forced access", i);
}

/*
 * Protect the whole range and let job j (fn over the range) populate it: it
 * must fault on each unit in turn with flags, and not return while any unit
 * is still protected; each fault is resolved for that unit alone.
 */
static void fault_each_unit(int fd, struct mem *m, struct job *j, long (*fn)(struct job *),
			    __u64 flags, const char *what)
{
	arm(fd, m->addr, m->len);
	j->addr = m->addr;
	j->len = m->len;
	job_start(j, fn);
	for (size_t i = 0; i < NUNITS; i++) {
		want_fault(fd, flags, (unsigned long)m->addr + i * m->unit);
		CHECK(!j->done, "%s returned with unit %zu protected", what, i);
		disarm(fd, m->addr + i * m->unit, m->unit);
	}
	job_finishes(j, what);
}

/* K6: MADV_POPULATE_READ/WRITE fault every protected unit (sync); async resolves all at once */
RWP_TEST_MEM(populate_faults_each_protected_unit)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct job j = { .arg = MADV_POPULATE_READ };

	fault_each_unit(fd, &m, &j, do_madvise, UFFD_PAGEFAULT_FLAG_RWP, "MADV_POPULATE_READ");
	CHECK(j.ret == 0, "MADV_POPULATE_READ: %s", strerror(j.err));

	arm(fd, m.addr, m.len);
	ok(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), "SET_MODE async");
	j.arg = MADV_POPULATE_WRITE;
	job_start(&j, do_madvise);
	job_finishes(&j, "async MADV_POPULATE_WRITE");
	CHECK(j.ret == 0, "MADV_POPULATE_WRITE: %s", strerror(j.err));
	for (size_t i = 0; i < NUNITS; i++)
		CHECK(!page_uffd_bit(m.addr + i * m.unit), "unit %zu still protected", i);
	want_quiet(fd, "async populate");
}

/* K6: mlock() populates through GUP too: one RWP fault per protected unit, a write fault if it may COW */
RWP_TEST_MEM(mlock_faults_each_protected_unit)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	/* populate_vma_page_range() write-faults private writable VMAs to break COW */
	__u64 flags = UFFD_PAGEFAULT_FLAG_RWP | (is_shared(type) ? 0 : UFFD_PAGEFAULT_FLAG_WRITE);
	struct job j = { .arg = 0 };

	fault_each_unit(fd, &m, &j, do_mlock, flags, "mlock");
	CHECK(j.ret == 0, "mlock: %s", strerror(j.err));
	CHECK(m.addr[3 * m.unit] == mem_unit_pattern(3), "data after mlock");
	want_quiet(fd, "after mlock");
}

/* K8: a second, unregistered mapping of the same shared file neither faults nor disarms */
RWP_TEST(second_mapping_of_shared_file_unaffected)
{
	for (size_t k = 0; k < 2; k++) {
		int fd;
		struct mem m = mem_rwp(shared_types[k], NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
		const char *name = mem_names[m.type];
		char *b = mmap(NULL, m.len, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
		struct accessor acc;

		CHECK(b != MAP_FAILED, "%s: second mapping", name);
		arm(fd, m.addr, m.len);
		accessor_start(&acc, b + m.unit + 3, 1, 'B');
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "%s: write through B blocked", name);
		CHECK(b[2 * m.unit] == mem_unit_pattern(2), "%s: read through B", name);
		want_quiet(fd, "accesses through the second mapping");
		for (size_t i = 0; i < NUNITS; i++)
			CHECK(page_uffd_bit(m.addr + i * m.unit), "%s: unit %zu of A disarmed", name, i);
		read_blocks_until_resolved(fd, m.addr + m.unit + 3, (unsigned long)(m.addr + m.unit),
					   m.unit, 'B');
		close(fd);
	}
}

#define CORE_PATTERN "/proc/sys/kernel/core_pattern"

/*
 * A sync-protected page in a core dump must be skipped or zero-filled: the
 * dump may neither block on the fault nor read the data. The dumping child
 * passes its uffd to the test so that the ctx outlives it and a dump stuck
 * in handle_userfault() would show.
 */
/* The byte at vaddr in an ELF core file: 0 if the segment omits it, -1 if not mapped. */
static int core_byte(const char *path, unsigned long vaddr)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	unsigned char c;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;

	CHECK(fd >= 0, "open %s", path);
	CHECK(pread(fd, &eh, sizeof(eh), 0) == sizeof(eh) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	      eh.e_type == ET_CORE, "%s is not an ELF core", path);
	for (int i = 0; i < eh.e_phnum && ret < 0; i++) {
		CHECK(pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) == sizeof(ph),
		      "phdr %d", i);
		if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr || vaddr >= ph.p_vaddr + ph.p_memsz)
			continue;
		if (vaddr - ph.p_vaddr >= ph.p_filesz)
			ret = 0;
		else
			ret = pread(fd, &c, 1, (off_t)(ph.p_offset + vaddr - ph.p_vaddr)) == 1 ? c : 0;
	}
	close(fd);
	return ret;
}

static void core_body(void *arg)
{
	int sv[2], fd, status, got;
	struct uffd_msg msg;
	char core[64], *p;
	unsigned long addr;
	pid_t pid;

	(void)arg;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		int cfd;
		char *c = mem_rwp(MEM_ANON, NUNITS, &cfd, 0, UFFDIO_REGISTER_MODE_RWP).addr;

		CHECK(setrlimit(RLIMIT_CORE, &rl) == 0, "RLIMIT_CORE");
		memset(c, 'Q', NUNITS * page_size());
		arm(cfd, c, 2 * page_size());
		CHECK(write(sv[1], &c, sizeof(c)) == sizeof(c), "send the address");
		send_fd(sv[1], cfd);
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	{
		struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

		CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(sv[0], &p, sizeof(p)) == sizeof(p),
		      "address from the child");
	}
	fd = recv_fd(sv[0]);
	addr = (unsigned long)p;
	/* Nobody resolves: a dump that waited on the fault would never end. */
	if (!wait_pid_ms(pid, &status, 10000)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		FAIL("the core dump of a sync-protected range did not finish in 10 s");
	}
	got = uffd_read_msg(fd, &msg, 0);
	CHECK(got == 0, "the dump raised a message (flags 0x%llx at 0x%llx)",
	      (unsigned long long)msg.arg.pagefault.flags,
	      (unsigned long long)msg.arg.pagefault.address);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child status 0x%x", status);
	CHECK(WCOREDUMP(status), "no core was dumped (status 0x%x)", status);
	snprintf(core, sizeof(core), "/tmp/rwp-core.%d", pid);
	{
		int prot = core_byte(core, addr + 100), open_ = core_byte(core, addr + 2 * page_size());

		unlink(core);
		CHECK(open_ == 'Q', "the unprotected page dumped as %d, want 'Q'", open_);
		CHECK(prot == 0, "the protected page dumped as %d, want 0 or omitted", prot);
	}
}

/* K7: a core dump of a sync-protected range neither hangs nor reads the protected data */
RWP_TEST(core_dump_skips_sync_protected)
{
	struct setting pattern[] = { { .path = CORE_PATTERN }, { 0 } };

	require_rwp();
	if (access(CORE_PATTERN, F_OK))
		SKIP("needs CONFIG_COREDUMP (no %s)", CORE_PATTERN);
	CHECK(setting_read(&pattern[0]) == 0, "read core_pattern");
	ok(write_text(CORE_PATTERN, "/tmp/rwp-core.%p"), "set core_pattern");
	run_then_restore(core_body, NULL, settings_restore, pattern);
}

/* ---- concurrency ---- */

#define STRESS_PAGES 8
#define STRESS_WORKERS 4
#define STRESS_MS 2000

struct stress {
	char *base;
	int fd;
	volatile int stop;		/* workers finish their round and leave */
	volatile int handler_stop;
	long messages;
	long resolve_errors;
};

struct stress_worker {
	pthread_t thread;
	struct stress *s;
	int id;
	uint64_t rounds;
	int corrupt;
	volatile int done;
};

/* Each worker owns one counter in every page, so all of them share every page. */
static void *stress_worker_fn(void *arg)
{
	struct stress_worker *w = arg;

	while (!__atomic_load_n(&w->s->stop, __ATOMIC_ACQUIRE)) {
		for (int p = 0; p < STRESS_PAGES; p++) {
			volatile uint64_t *c = (volatile uint64_t *)(w->s->base + p * page_size() +
								    w->id * 64);

			if (*c != w->rounds)
				w->corrupt = 1;
			*c = w->rounds + 1;
		}
		w->rounds++;
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *stress_handler_fn(void *arg)
{
	struct stress *s = arg;
	struct uffd_msg msg;

	while (!__atomic_load_n(&s->handler_stop, __ATOMIC_ACQUIRE)) {
		if (uffd_read_msg(s->fd, &msg, 20) != 1 || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		s->messages++;
		if (uffd_rwprotect(s->fd, (void *)(unsigned long)msg.arg.pagefault.address,
				   page_size(), 0))
			s->resolve_errors++;
	}
	return NULL;
}

/* D17: protect, fault and resolve from several threads at once: no hang, no lost wake-up, no corruption */
RWP_TEST(concurrent_protect_fault_resolve)
{
	size_t len = STRESS_PAGES * page_size();
	struct stress s = { .base = map_anon(len) };
	struct stress_worker w[STRESS_WORKERS];
	struct timespec t0, now, nap = { 0, 300 * 1000 };
	pthread_t handler;
	long protects = 0;
	int i;

	require_rwp();
	memset(s.base, 0, len);
	s.fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(s.fd, s.base, len, UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER");
	thread_start(&handler, stress_handler_fn, &s);
	for (i = 0; i < STRESS_WORKERS; i++) {
		w[i] = (struct stress_worker){ .s = &s, .id = i };
		thread_start(&w[i].thread, stress_worker_fn, &w[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		arm(s.fd, s.base, len);
		protects++;
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < STRESS_MS);
	/* No more protection: every blocked worker must now get through on the handler's resolves alone. */
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < STRESS_WORKERS; i++) {
		CHECK(WAIT_UNTIL(__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE), RWP_WAIT_MS), "worker %d still blocked %d ms after protection stopped "
		      "(%ld messages handled): a lost wake-up", i, RWP_WAIT_MS, s.messages);
		pthread_join(w[i].thread, NULL);
	}
	__atomic_store_n(&s.handler_stop, 1, __ATOMIC_RELEASE);
	pthread_join(handler, NULL);
	rwp_diag("%ld protects, %ld faults handled, rounds %llu %llu %llu %llu", protects,
		 s.messages, (unsigned long long)w[0].rounds, (unsigned long long)w[1].rounds,
		 (unsigned long long)w[2].rounds, (unsigned long long)w[3].rounds);
	CHECK(s.messages > 0, "no fault was ever delivered: the test exercised nothing");
	CHECK(s.resolve_errors == 0, "%ld resolves failed", s.resolve_errors);
	/*
	 * A page no worker touched after the last protect is still protected, and
	 * the handler has stopped: resolve everything before reading the counters.
	 */
	disarm(s.fd, s.base, len);
	for (i = 0; i < STRESS_WORKERS; i++) {
		CHECK(!w[i].corrupt, "worker %d saw a counter it did not write", i);
		for (int p = 0; p < STRESS_PAGES; p++)
			CHECK(*(uint64_t *)(s.base + p * page_size() + i * 64) == w[i].rounds,
			      "page %d: worker %d's counter is not its round count", p, i);
	}
}

/*
 * D18 helper: touches its unit once per round, r->delay spins after the
 * monitor starts the round, and says whether the touch took a page fault.
 */
struct racer {
	pthread_t thread;
	volatile char *addr;
	long go, done, stop;		/* rounds started and finished; 1: leave */
	volatile long delay;		/* spins before the touch, set by the monitor */
	volatile int last_faulted;
	long faulted;			/* rounds whose touch faulted */
	volatile long long touched_ns;	/* when the last touch began */
};

static void *racer_fn(void *arg)
{
	struct racer *r = arg;
	long round = 0, before;

	for (;;) {
		/* Counted before the round starts: a syscall would delay the touch. */
		before = thread_faults();
		while (__atomic_load_n(&r->go, __ATOMIC_ACQUIRE) == round)
			if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
				return NULL;
		round++;
		for (volatile long spin = 0; spin < r->delay; spin++)
			;
		r->touched_ns = rwp_now_ns();
		(void)*r->addr;
		r->last_faulted = thread_faults() != before;
		r->faulted += r->last_faulted;
		__atomic_store_n(&r->done, round, __ATOMIC_RELEASE);
	}
}

#define RACE_MS 3000
#define RACE_ROUNDS 20000

/*
 * D18: a fault racing a waking resolve, with nobody reading the uffd: the
 * faulting thread gets through whether the resolve's wake-up finds it queued
 * or the re-check after it queued sees the resolved entry. The touch's delay
 * follows the race (later after a touch that faulted, sooner after one that
 * did not), so most rounds touch while the resolve is under way.
 */
RWP_TEST_MEM(fault_racing_resolve_needs_no_reader)
{
	int fd;
	struct mem m = mem_rwp(type, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct racer r = { .addr = m.addr };
	long long end = rwp_now_ns() + RACE_MS * 1000000LL;
	long round, step;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP("one CPU online: the touch and the resolve would only take turns");
	thread_start(&r.thread, racer_fn, &r);
	for (round = 1; round <= RACE_ROUNDS && rwp_now_ns() < end; round++) {
		arm(fd, m.addr, m.unit);
		__atomic_store_n(&r.go, round, __ATOMIC_RELEASE);
		disarm(fd, m.addr, m.unit);
		for (int spin = 0; spin < 100000 && __atomic_load_n(&r.done, __ATOMIC_ACQUIRE) != round;
		     spin++)
			;
		CHECK(WAIT_UNTIL(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) == round, RWP_WAIT_MS),
		      "round %ld: the touch is still blocked %d ms after the resolve that woke its "
		      "range (%ld of %ld rounds faulted, delay %ld): a fault that queued after the "
		      "wake-up sleeps on a resolved entry", round, RWP_WAIT_MS, r.faulted, round - 1,
		      r.delay);
		step = r.delay / 16 + 1;
		r.delay = r.last_faulted ? r.delay + step : (r.delay > step ? r.delay - step : 0);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(r.thread, NULL);
	rwp_diag("%ld rounds, %ld faulted, final delay %ld spins", round - 1, r.faulted, r.delay);
	/* Both outcomes of the race, or the test did not straddle it. */
	CHECK(r.faulted > 0, "no touch faulted in %ld rounds: the race was never run", round - 1);
	CHECK(r.faulted < round - 1, "every touch faulted: the resolve never won the race");
	want_quiet(fd, "after the last round");
}

/*
 * I22 helper: one page or one THP moved into a MISSING|RWP range (MOVE arms
 * it, I15) while a thread's MISSING fault on it races the move. A MISSING
 * message is left unanswered: a waiter that queued before the move is woken
 * by it, and one that queued after must see the armed entry in the re-check
 * and retry into an RWP fault, which is resolved.
 */
static void missing_fault_racing_armed_move(size_t unit)
{
	int fd = move_fd();
	int thp = unit != page_size();
	char *dst = thp ? map_aligned_anon_thp(unit) : map_anon(unit);
	char *src = thp ? map_aligned_anon_thp(unit) : map_anon(unit);
	struct racer r = { .addr = dst + unit / 2 };
	long long end = rwp_now_ns() + RACE_MS * 1000000LL, t0, t1;
	long round, step, stale = 0, rwp = 0, inside = 0;
	struct uffd_msg msg;
	__s64 moved;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP("one CPU online: the fault and the move would only take turns");
	ok(uffd_register(fd, dst, unit, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP,
			 NULL), "REGISTER MISSING|RWP");
	thread_start(&r.thread, racer_fn, &r);
	for (round = 1; round <= RACE_ROUNDS && rwp_now_ns() < end; round++) {
		memset(src, 'V', unit);
		if (thp && round == 1)
			CHECK(vma_has_anon_thp(src), "the move's source is not a PMD-mapped THP");
		__atomic_store_n(&r.go, round, __ATOMIC_RELEASE);
		t0 = rwp_now_ns();
		ok(uffd_move(fd, dst, src, unit, &moved), "MOVE into the range");
		t1 = rwp_now_ns();
		CHECK(moved == (__s64)unit, "round %ld: moved %lld", round, (long long)moved);
		while (__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) != round) {
			int n = uffd_read_msg(fd, &msg, 1);

			if (n == 1 && msg.event == UFFD_EVENT_PAGEFAULT) {
				if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_RWP) {
					rwp++;
					disarm(fd, dst, unit);
				} else {
					stale++;
				}
			}
			CHECK(rwp_now_ns() < end + RWP_WAIT_MS * 1000000LL,
			      "round %ld: the touch is still blocked %d ms after the move armed "
			      "the page and every RWP fault was resolved (%ld MISSING messages "
			      "unanswered, %ld RWP faults): a MISSING fault that queued after the "
			      "move's wake-up sleeps on a present page", round, RWP_WAIT_MS,
			      stale, rwp);
		}
		CHECK(r.addr[0] == 'V', "round %ld: read 0x%x", round, r.addr[0]);
		/* Aim the next touch at the move: later if it began before, sooner if after. */
		step = r.delay / 16 + 1;
		if (r.touched_ns < t0)
			r.delay += step;
		else if (r.touched_ns > t1)
			r.delay = r.delay > step ? r.delay - step : 0;
		else
			inside++;
		CHECK(madvise(dst, unit, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(r.thread, NULL);
	rwp_diag("%ld rounds, %ld touches during the move, %ld MISSING messages left unanswered, "
		 "%ld RWP faults resolved, final delay %ld spins", round - 1, inside, stale, rwp,
		 r.delay);
	CHECK(inside > 0, "no touch began during a move in %ld rounds: the race was never run",
	      round - 1);
}

/* I22: a MISSING fault racing an armed MOVE never sleeps on the moved-in page */
RWP_TEST(missing_fault_racing_armed_move_anon)
{
	missing_fault_racing_armed_move(page_size());
}

/* I22: the same with a whole THP moved in (a PMD armed under the fault) */
RWP_TEST(missing_fault_racing_armed_move_anon_thp)
{
	missing_fault_racing_armed_move(HPAGE_SIZE);
}

#define MM_RACE_PAGES 16

#define MM_RACE_MS 2500

struct race {
	int fd;
	char *p;
	volatile int stop, handler_stop;
	long faults, forks, mremaps, bad;
	pthread_mutex_t lock;	/* serialises mremap against the other threads' view of p */
};

/* Touches pages and checks that each keeps its own pattern. */
static void *race_toucher(void *arg)
{
	struct race *r = arg;
	unsigned int seed = (unsigned int)(unsigned long)pthread_self();

	while (!r->stop) {
		int i = (int)(rand_r(&seed) % MM_RACE_PAGES);

		pthread_mutex_lock(&r->lock);
		if (r->p[i * page_size() + 7] != mem_unit_pattern(i))
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/* Resolves every fault, reads the REMAP events mremap waits for, and keeps re-protecting. */
static void *race_handler(void *arg)
{
	struct race *r = arg;
	struct uffd_msg msg;

	while (!r->handler_stop) {
		int n = uffd_read_msg(r->fd, &msg, 20);

		if (n == 1 && msg.event == UFFD_EVENT_PAGEFAULT) {
			uffd_rwprotect(r->fd, (void *)(unsigned long)msg.arg.pagefault.address,
				       page_size(), 0);
			__atomic_add_fetch(&r->faults, 1, __ATOMIC_RELAXED);
		}
		uffd_rwprotect(r->fd, __atomic_load_n(&r->p, __ATOMIC_RELAXED),
			       MM_RACE_PAGES * page_size(), UFFDIO_RWPROTECT_MODE_RWP);
	}
	return NULL;
}

/* Forks children that check their unprotected copy, and mremaps the range back and forth. */
static void *race_mm(void *arg)
{
	struct race *r = arg;
	size_t len = MM_RACE_PAGES * page_size();
	char *other = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	while (!r->stop && other != MAP_FAILED) {
		int status;
		pid_t pid = fork();

		if (pid == 0) {
			for (int i = 0; i < MM_RACE_PAGES; i++)
				if (r->p[i * page_size() + 7] != mem_unit_pattern(i))
					_exit(1);
			_exit(0);
		}
		if (pid > 0) {
			if (!wait_pid_ms(pid, &status, 3000)) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				__atomic_add_fetch(&r->bad, 1000, __ATOMIC_RELAXED);
			} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			}
			r->forks++;
		}
		pthread_mutex_lock(&r->lock);
		{
			char *q = mremap(r->p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, other);

			if (q != MAP_FAILED) {
				other = r->p;
				r->p = q;
				r->mremaps++;
			}
		}
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/*
 * Concurrency: fork() and mremap() race with protect, resolve and sync
 * faults from several threads for a bounded time; no fault may be lost (a
 * stuck thread fails the deadline), no data may change, children see their
 * data. With EVENT_REMAP the range stays registered and armed wherever it
 * moves; the handler's RWPROTECT may hit the old address just after a move
 * and fail, which is harmless.
 */
/* I19: fork and mremap racing with protect, resolve and faults: no hang, no lost data */
RWP_TEST(race_fork_mremap_with_faults)
{
	struct race r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t t[4];
	long long end;
	int i;

	r.p = mem_rwp(MEM_ANON, MM_RACE_PAGES, &r.fd, UFFD_FEATURE_EVENT_REMAP, UFFDIO_REGISTER_MODE_RWP).addr;
	arm(r.fd, r.p, MM_RACE_PAGES * page_size());
	thread_start(&t[0], race_handler, &r);
	thread_start(&t[1], race_toucher, &r);
	thread_start(&t[2], race_toucher, &r);
	thread_start(&t[3], race_mm, &r);
	end = rwp_now_ns() + MM_RACE_MS * 1000000LL;
	while (rwp_now_ns() < end)
		sleep_ms(50);
	r.stop = 1;
	/* The handler must keep running until the touchers are done: they may be blocked. */
	pthread_join(t[1], NULL);
	pthread_join(t[2], NULL);
	pthread_join(t[3], NULL);
	r.handler_stop = 1;
	pthread_join(t[0], NULL);
	rwp_diag("%ld faults resolved, %ld forks, %ld mremaps", r.faults, r.forks, r.mremaps);
	CHECK(r.bad == 0, "%ld data or child errors", r.bad);
	CHECK(r.forks > 0 && r.mremaps > 0 && r.faults > 0, "the race did not run");
	/* With the handler gone, a protected page would block the check below. */
	disarm(r.fd, r.p, MM_RACE_PAGES * page_size());
	for (i = 0; i < MM_RACE_PAGES; i++)
		CHECK(r.p[i * page_size() + 7] == mem_unit_pattern(i), "page %d data", i);
}

/* ---- L. privileges ---- */

static int sysctl_get(void)
{
	char v[16], *end;
	long n;

	if (read_text(SYSCTL_UNPRIV, v, sizeof(v)))
		SKIP("no %s (CONFIG_SYSCTL off?)", SYSCTL_UNPRIV);
	n = strtol(v, &end, 10);
	CHECK(end != v && *end == '\0', "read %s: \"%s\"", SYSCTL_UNPRIV, v);
	return (int)n;
}

/* Write v to the sysctl: 0 or -errno. */
static int sysctl_put(int v)
{
	char s[16];

	snprintf(s, sizeof(s), "%d\n", v);
	return write_text(SYSCTL_UNPRIV, s);
}

/*
 * Run fn in a child that has dropped to uid/gid 65534 with no capabilities,
 * with the sysctl set to unpriv (or left alone if negative); the parent
 * restores the sysctl whatever the child does. Returns the child's status.
 */
static int as_nobody(void (*fn)(void *), void *arg, int unpriv)
{
	int old = sysctl_get(), status = -1;
	pid_t pid;

	if (unpriv >= 0)
		ok(sysctl_put(unpriv), "set " SYSCTL_UNPRIV);
	pid = fork();
	if (pid == 0) {
		alarm(10);
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			FAIL("cannot drop to uid %d: %s", NOBODY, strerror(errno));
		prctl(PR_SET_DUMPABLE, 1);	/* keep /proc/self/pagemap ours */
		fn(arg);
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	ok(sysctl_put(old), "restore " SYSCTL_UNPRIV);
	CHECK(pid > 0, "fork");
	return status;
}

static void expect_child_ok(int status, const char *what)
{
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: unprivileged child status 0x%x",
	      what, status);
}

/* A sync RWP fault from a user access, handled by this (unprivileged) process. */
static void user_fault_round_trip(int fd)
{
	char *p = map_anon(page_size());
	struct accessor acc;

	p[0] = 'u';
	ok(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER RWP");
	arm(fd, p, page_size());
	accessor_start(&acc, p, 0, 0);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	disarm(fd, p, page_size());
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume");
	CHECK(acc.value == 'u', "read 0x%x", acc.value);
}

static void nobody_refused(void *arg)
{
	(void)arg;
	errno = 0;
	CHECK(syscall(__NR_userfaultfd, O_CLOEXEC) == -1 && errno == EPERM,
	      "unprivileged userfaultfd(O_CLOEXEC) with the sysctl at 0 was not EPERM");
	errno = 0;
	CHECK(syscall(__NR_userfaultfd, 0x2) == -1 && errno == EPERM,
	      "unprivileged userfaultfd(unknown flag) was not EPERM (privilege checked first)");
}

/* L1: unprivileged userfaultfd() is EPERM with the sysctl at 0, before the flags are checked */
RWP_TEST(unprivileged_userfaultfd_refused)
{
	require_rwp();
	errno = 0;
	CHECK(syscall(__NR_userfaultfd, 0x2) == -1 && errno == EINVAL,
	      "root userfaultfd(unknown flag) was not EINVAL");
	expect_child_ok(as_nobody(nobody_refused, NULL, 0), "sysctl 0");
}

static void nobody_user_mode_only(void *arg)
{
	int fd = (int)syscall(__NR_userfaultfd, UFFD_USER_MODE_ONLY | O_CLOEXEC | O_NONBLOCK);

	(void)arg;
	CHECK(fd >= 0, "unprivileged userfaultfd(UFFD_USER_MODE_ONLY)");
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "unprivileged API(RWP)");
	user_fault_round_trip(fd);
}

/* L2: UFFD_USER_MODE_ONLY needs no privilege, and RWP works on it */
RWP_TEST(unprivileged_user_mode_only_allowed)
{
	require_rwp();
	expect_child_ok(as_nobody(nobody_user_mode_only, NULL, 0), "user-mode-only");
}

/* fd handles kernel faults: a pipe read into a protected buffer waits for the resolve. */
static void kernel_fault_round_trip(int fd)
{
	char *buf = map_anon(page_size());
	struct job j = { .addr = buf, .len = 4 };
	int p[2];

	buf[0] = 1;
	ok(uffd_register(fd, buf, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER");
	arm(fd, buf, page_size());
	CHECK(pipe(p) == 0 && write(p[1], "kern", 4) == 4, "pipe");
	j.fd = p[0];
	job_start(&j, do_read);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP | UFFD_PAGEFAULT_FLAG_WRITE, (unsigned long)buf);
	CHECK(!job_wait(&j, 100), "read() completed into a protected buffer");
	disarm(fd, buf, page_size());
	job_finishes(&j, "read()");
	CHECK(j.ret == 4 && buf[0] == 'k', "read returned %ld", j.ret);
}

static void nobody_allowed_by_sysctl(void *arg)
{
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	(void)arg;
	CHECK(fd >= 0, "unprivileged userfaultfd(0) with the sysctl at 1");
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "API(RWP)");
	user_fault_round_trip(fd);
	kernel_fault_round_trip(fd);
}

/* L3: vm.unprivileged_userfaultfd=1 allows full uffds; the sysctl takes only 0 and 1 */
RWP_TEST(sysctl_allows_unprivileged)
{
	int old;

	require_rwp();
	old = sysctl_get();
	refused(sysctl_put(2), EINVAL, "writing 2 to " SYSCTL_UNPRIV);
	CHECK(sysctl_get() == old, "the refused write changed the sysctl");
	expect_child_ok(as_nobody(nobody_allowed_by_sysctl, NULL, 1), "sysctl 1");
	CHECK(sysctl_get() == old, "the sysctl was not restored to %d", old);
}

static int open_dev_uffd(void)
{
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

	if (dev < 0 && errno == ENOENT)
		SKIP("/dev/userfaultfd does not exist in this guest");
	CHECK(dev >= 0, "open /dev/userfaultfd");
	return dev;
}

static void nobody_with_dev_fd(void *arg)
{
	int dev = *(int *)arg, fd, fd2;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_RWP |
				  UFFD_FEATURE_EVENT_FORK };

	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	CHECK(fd >= 0, "USERFAULTFD_IOC_NEW without privilege (device already open)");
	/* L5: EVENT_FORK still needs CAP_SYS_PTRACE, and the refusal leaves the fd usable. */
	refused(ioctl_err(fd, UFFDIO_API, &api), EPERM, "unprivileged API(RWP|EVENT_FORK)");
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "API(RWP) after the refusal");
	user_fault_round_trip(fd);
	kernel_fault_round_trip(fd);	/* not a user-mode-only uffd, though made without privilege */
	fd2 = (int)syscall(__NR_userfaultfd, O_CLOEXEC);
	CHECK(fd2 < 0 && errno == EPERM, "the syscall is still refused to this process");
}

/* L4, L5: /dev/userfaultfd makes uffds with no capability or sysctl check; EVENT_FORK still needs one */
RWP_TEST(dev_userfaultfd)
{
	int dev, fd;

	require_rwp();
	dev = open_dev_uffd();
	refused(ioctl(dev, USERFAULTFD_IOC_NEW, 0x4) < 0 ? -errno : 0, EINVAL,
		"USERFAULTFD_IOC_NEW with flag 0x4");
	refused(ioctl(dev, _IO(0xAA, 0x01), 0) < 0 ? -errno : 0, EINVAL, "an unknown device cmd");
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	CHECK(fd >= 0, "USERFAULTFD_IOC_NEW");
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "API(RWP) on a device uffd");
	user_fault_round_trip(fd);
	expect_child_ok(as_nobody(nobody_with_dev_fd, &dev, 0), "device fd");
}

/* L6: the fd flags requested from the syscall and from the device are the fd's */
RWP_TEST(uffd_fd_flags)
{
	int fd, dev;

	require_rwp();
	fd = (int)syscall(__NR_userfaultfd, O_NONBLOCK | O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHECK(fd >= 0, "userfaultfd(O_NONBLOCK|O_CLOEXEC|UFFD_USER_MODE_ONLY)");
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "O_NONBLOCK not set");
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC not set");
	fd = (int)syscall(__NR_userfaultfd, 0);
	CHECK(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK) && !(fcntl(fd, F_GETFD) & FD_CLOEXEC),
	      "userfaultfd(0) has flags");
	dev = open_dev_uffd();
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_NONBLOCK | O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHECK(fd >= 0, "USERFAULTFD_IOC_NEW(O_NONBLOCK|O_CLOEXEC|UFFD_USER_MODE_ONLY)");
	CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
	      "device uffd lacks the requested flags");
}

RWP_MAIN
