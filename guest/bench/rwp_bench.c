// SPDX-License-Identifier: GPL-2.0
/*
 * RWP micro-benchmarks, beside what a user would otherwise use to learn
 * which pages are touched: uffd write-protect (WP), mprotect(PROT_NONE) with
 * a SIGSEGV handler, and idle page tracking (/sys/kernel/mm/page_idle).
 *
 * Each figure is one line: @@BENCH {"name", "method", "value", "unit"}.
 * The host computes the ratios to RWP; under TCG only those mean anything.
 *
 * usage: rwp_bench [MIB [ITERS [ASYNC_MIB]]]   (default 1024 2000 64)
 */
#include "rwp_test.h"
#include "rwp_mem.h"

#ifndef PAGE_IS_WRITTEN
#define PAGE_IS_WRITTEN (1 << 0)
#endif
#define IDLE_BITMAP "/sys/kernel/mm/page_idle/bitmap"
static size_t ps;

/* The clock of rwp_ktap.h, as a double: the figures are rates and ratios. */
static double now_ns(void)
{
	return (double)rwp_now_ns();
}

static void report(const char *name, const char *method, double value, const char *unit)
{
	printf("@@BENCH {\"name\": \"%s\", \"method\": \"%s\", \"value\": %.3f, "
	       "\"unit\": \"%s\"}\n", name, method, value, unit);
	fflush(stdout);
}

static void unavailable(const char *name, const char *method, const char *why)
{
	printf("@@BENCH {\"name\": \"%s\", \"method\": \"%s\", \"value\": null, "
	       "\"unavailable\": \"%s\"}\n", name, method, why);
	fflush(stdout);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report_latency(const char *method, double *ns, int n)
{
	qsort(ns, n, sizeof(*ns), by_value);
	printf("# %s: min %.0f median %.0f max %.0f ns\n", method, ns[0], ns[n / 2], ns[n - 1]);
	report("fault_round_trip_median", method, ns[n / 2] / 1000, "us");
	report("fault_round_trip_p99", method, ns[(n * 99) / 100] / 1000, "us");
}

/* A region of real 4 KiB PTEs, every page populated. */
static char *populated(size_t len)
{
	char *p = map_anon(len);
	size_t off;

	madvise(p, len, MADV_NOHUGEPAGE);
	for (off = 0; off < len; off += ps)
		p[off] = 1;
	return p;
}

static int wp_range(int fd, void *addr, size_t len, int protect)
{
	return uffd_writeprotect(fd, addr, len, protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0);
}

/* ---- the sync handler: resolves each fault so the faulting thread resumes ---- */

enum kind { KIND_RWP, KIND_WP };

struct handler {
	int fd;
	enum kind kind;
	volatile int stop;
	long handled;
	pthread_t thread;
};

static void *handle(void *arg)
{
	struct handler *h = arg;
	struct uffd_msg msg;
	unsigned long page;
	int n;

	while (!h->stop) {
		n = uffd_read_msg(h->fd, &msg, 100);
		if (n != 1 || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		page = msg.arg.pagefault.address & ~(ps - 1);
		if (h->kind == KIND_RWP)
			n = uffd_rwprotect(h->fd, (void *)page, ps, 0);
		else
			n = wp_range(h->fd, (void *)page, ps, 0);
		if (n)
			FAIL("resolving a fault at 0x%lx: %d", page, n);
		h->handled++;
	}
	return NULL;
}

static void handler_start(struct handler *h, int fd, enum kind kind)
{
	h->fd = fd;
	h->kind = kind;
	h->stop = 0;
	h->handled = 0;
	thread_start(&h->thread, handle, h);
}

/* Every timed access must have been a fault the handler resolved. */
static void handler_stop(struct handler *h, long expected)
{
	h->stop = 1;
	pthread_join(h->thread, NULL);
	CHECK(h->handled == expected, "handler resolved %ld faults, want %ld", h->handled,
	      expected);
}

/* ---- mprotect(PROT_NONE) tracking: the handler opens the page it faulted on ---- */

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	unsigned long page = (unsigned long)si->si_addr & ~(ps - 1);

	(void)sig;
	(void)ctx;
	if (mprotect((void *)page, ps, PROT_READ | PROT_WRITE))
		_exit(3);
}

static void segv_handler_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction");
}

/* ---- 1: one page, fault -> message -> resolve -> the thread resumes ---- */

static void bench_round_trip(int iters)
{
	volatile char *p = (volatile char *)populated(ps);
	double *ns = calloc(iters, sizeof(*ns));
	struct handler h;
	double t0;
	int fd, i;

	CHECK(ns != NULL, "calloc");
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, (void *)p, ps, UFFDIO_REGISTER_MODE_RWP, NULL), "register RWP");
	handler_start(&h, fd, KIND_RWP);
	for (i = 0; i < iters; i++) {
		ok(uffd_rwprotect(fd, (void *)p, ps, UFFDIO_RWPROTECT_MODE_RWP), "protect");
		t0 = now_ns();
		(void)*p;
		ns[i] = now_ns() - t0;
	}
	handler_stop(&h, iters);
	close(fd);
	report_latency("rwp", ns, iters);

	fd = uffd_new(0);
	ok(uffd_register(fd, (void *)p, ps, UFFDIO_REGISTER_MODE_WP, NULL), "register WP");
	handler_start(&h, fd, KIND_WP);
	for (i = 0; i < iters; i++) {
		ok(wp_range(fd, (void *)p, ps, 1), "write-protect");
		t0 = now_ns();
		*p = (char)i;
		ns[i] = now_ns() - t0;
	}
	handler_stop(&h, iters);
	close(fd);
	report_latency("uffd_wp", ns, iters);

	segv_handler_install();
	for (i = 0; i < iters; i++) {
		CHECK(mprotect((void *)p, ps, PROT_NONE) == 0, "mprotect");
		t0 = now_ns();
		(void)*p;
		ns[i] = now_ns() - t0;
	}
	report_latency("mprotect_sigsegv", ns, iters);
	free(ns);
}

/* ---- 2: async resolution, per page, over a populated region ---- */

static double touch_all_ns(volatile char *p, size_t len, int write)
{
	double t0 = now_ns();
	size_t off;

	for (off = 0; off < len; off += ps) {
		if (write)
			p[off] = 2;
		else
			(void)p[off];
	}
	return now_ns() - t0;
}

static void bench_async(size_t len)
{
	char *p = populated(len);
	double base, t, pages = (double)(len / ps);
	int fd;

	base = touch_all_ns(p, len, 0);
	report("touch_unprotected_per_page", "none", base / pages, "ns");

	fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_RWP_ASYNC);
	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_RWP, NULL), "register RWP");
	ok(uffd_rwprotect(fd, p, len, UFFDIO_RWPROTECT_MODE_RWP), "protect");
	t = touch_all_ns(p, len, 0);
	report("async_fault_per_page", "rwp", (t - base) / pages, "ns");
	close(fd);

	fd = uffd_new(UFFD_FEATURE_WP_ASYNC);
	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_WP, NULL), "register WP");
	ok(wp_range(fd, p, len, 1), "write-protect");
	t = touch_all_ns(p, len, 1);
	report("async_fault_per_page", "uffd_wp", (t - base) / pages, "ns");
	close(fd);

	segv_handler_install();
	CHECK(mprotect(p, len, PROT_NONE) == 0, "mprotect");
	t = touch_all_ns(p, len, 0);
	report("async_fault_per_page", "mprotect_sigsegv", (t - base) / pages, "ns");
	munmap(p, len);
}

/* ---- 3: protect and resolve a whole populated region ---- */

static void report_rate(const char *name, const char *method, size_t len, double ns)
{
	report(name, method, ((double)len / (1 << 30)) / (ns / 1e9), "GiB/s");
}

static int rwp_set(int fd, char *p, size_t len, int protect)
{
	return uffd_rwprotect(fd, p, len, protect ? UFFDIO_RWPROTECT_MODE_RWP : 0);
}

static int wp_set(int fd, char *p, size_t len, int protect)
{
	return wp_range(fd, p, len, protect);
}

static int mprotect_set(int fd, char *p, size_t len, int protect)
{
	(void)fd;
	return mprotect(p, len, protect ? PROT_NONE : PROT_READ | PROT_WRITE) ? -errno : 0;
}

/* Times one protect and one resolve of the whole range with set(). */
static void time_protect(const char *method, int (*set)(int, char *, size_t, int), int fd, char *p,
			 size_t len)
{
	double t0, t1, t2;

	t0 = now_ns();
	ok(set(fd, p, len, 1), "protect");
	t1 = now_ns();
	ok(set(fd, p, len, 0), "resolve");
	t2 = now_ns();
	report_rate("protect_throughput", method, len, t1 - t0);
	report_rate("resolve_throughput", method, len, t2 - t1);
}

static void bench_protect(char *p, size_t len)
{
	int fd = uffd_new(UFFD_FEATURE_RWP);

	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_RWP, NULL), "register RWP");
	time_protect("rwp", rwp_set, fd, p, len);
	close(fd);
	fd = uffd_new(0);
	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_WP, NULL), "register WP");
	time_protect("uffd_wp", wp_set, fd, p, len);
	close(fd);
	time_protect("mprotect", mprotect_set, -1, p, len);
}

/* ---- 4: find the touched pages of a region where every other page was touched ---- */

static void touch_every_other(volatile char *p, size_t len, int write)
{
	size_t off;

	for (off = 0; off < len; off += 2 * ps) {
		if (write)
			p[off] = 3;
		else
			(void)p[off];
	}
}

static void timed_scan(const char *method, char *p, size_t len, __u64 category)
{
	size_t nvec = len / ps / 2 + 1;
	struct page_region *vec = calloc(nvec, sizeof(*vec));
	double t0;
	long n;

	CHECK(vec != NULL, "calloc");
	t0 = now_ns();
	n = scan_pages(p, len, category, 0, vec, nvec);
	report_rate("scan_throughput", method, len, now_ns() - t0);
	CHECK(n == (long)(len / ps / 2), "%s scan found %ld regions, want %zu", method, n,
	      len / ps / 2);
	free(vec);
}

static void bench_scan_uffd(char *p, size_t len)
{
	int fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_RWP_ASYNC);

	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_RWP, NULL), "register RWP");
	ok(uffd_rwprotect(fd, p, len, UFFDIO_RWPROTECT_MODE_RWP), "protect");
	touch_every_other(p, len, 0);
	timed_scan("rwp", p, len, PAGE_IS_ACCESSED);
	close(fd);

	fd = uffd_new(UFFD_FEATURE_WP_ASYNC);
	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_WP, NULL), "register WP");
	ok(wp_range(fd, p, len, 1), "write-protect");
	touch_every_other(p, len, 1);
	timed_scan("uffd_wp", p, len, PAGE_IS_WRITTEN);
	close(fd);
}

static int by_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return (x > y) - (x < y);
}

/* Idle page tracking: PFNs from pagemap, mark them idle, touch, read the bits back. */
static void bench_scan_idle(char *p, size_t len)
{
	size_t npages = len / ps, i, idle = 0;
	__u64 *pfn = calloc(npages, sizeof(*pfn)), word, bits;
	double t0, t1;
	int pm, bm;

	CHECK(pfn != NULL, "calloc");
	bm = open(IDLE_BITMAP, O_RDWR);
	if (bm < 0) {
		unavailable("scan_throughput", "page_idle", strerror(errno));
		free(pfn);
		return;
	}
	t0 = now_ns();
	pm = open("/proc/self/pagemap", O_RDONLY);
	CHECK(pm >= 0, "open pagemap");
	CHECK(pread(pm, pfn, npages * 8, (off_t)((unsigned long)p / ps) * 8) == (ssize_t)(npages * 8),
	      "read pagemap");
	close(pm);
	for (i = 0; i < npages; i++)
		pfn[i] &= PFN_MASK;
	qsort(pfn, npages, sizeof(*pfn), by_u64);
	/* one 64-page word of the bitmap per write, as a careful user would */
	for (i = 0; i < npages; ) {
		word = pfn[i] / 64;
		bits = 0;
		for (; i < npages && pfn[i] / 64 == word; i++)
			bits |= 1ULL << (pfn[i] % 64);
		CHECK(pwrite(bm, &bits, 8, (off_t)word * 8) == 8, "mark idle");
	}
	t1 = now_ns();
	touch_every_other(p, len, 0);
	t0 -= now_ns() - t1;		/* the touching is not part of the tracking cost */
	for (i = 0; i < npages; ) {
		word = pfn[i] / 64;
		CHECK(pread(bm, &bits, 8, (off_t)word * 8) == 8, "read idle");
		for (; i < npages && pfn[i] / 64 == word; i++)
			idle += (bits >> (pfn[i] % 64)) & 1;
	}
	report_rate("scan_throughput", "page_idle", len, now_ns() - t0);
	CHECK(idle == npages / 2, "page_idle: %zu idle pages, want %zu", idle, npages / 2);
	close(bm);
	free(pfn);
}

int main(int argc, char **argv)
{
	size_t len = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
	int iters = argc > 2 ? atoi(argv[2]) : 2000;
	size_t async_len = (size_t)(argc > 3 ? atol(argv[3]) : 64) << 20;
	char *p;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ps = page_size();
	if (!(uffd_kernel_features() & UFFD_FEATURE_RWP)) {
		printf("@@BENCH-SKIP %s\n", RWP_NO_FEATURE_REASON);
		return 0;
	}
	bench_round_trip(iters);
	bench_async(async_len);
	p = populated(len);
	bench_protect(p, len);
	bench_scan_uffd(p, len);
	bench_scan_idle(p, len);
	munmap(p, len);
	return 0;
}
