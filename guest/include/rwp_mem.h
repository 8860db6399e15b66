/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Memory types for the RWP tests, and the page-table views that show RWP
 * state: /proc/self/pagemap bit 57 and PAGEMAP_SCAN's PAGE_IS_ACCESSED.
 *
 * RWP_TEST_MEM(fn) declares one test per memory type, named fn__<type>;
 * the harness reads RWP_MEM_NAMES to know them without compiling.
 */
#ifndef RWP_MEM_H
#define RWP_MEM_H

#include "rwp_test.h"
#include <linux/fs.h>
#include <linux/memfd.h>
#include <setjmp.h>
#include <sys/resource.h>

#define RWP_MEM_NAMES "anon anon_thp shmem shmem_private hugetlb hugetlb_private"

enum mem_type { MEM_ANON, MEM_ANON_THP, MEM_SHMEM, MEM_SHMEM_PRIVATE, MEM_HUGETLB,
		MEM_HUGETLB_PRIVATE, MEM_NTYPES };

static const char *const mem_names[MEM_NTYPES] = {
	"anon", "anon_thp", "shmem", "shmem_private", "hugetlb", "hugetlb_private",
};

#define HPAGE_SIZE (2UL << 20)
/* A test's usual range: the unit it touches has a neighbour on each side, and one more. */
#define NUNITS 4

#define RWP_TEST_MEM(fn)						\
	static void fn(int type);					\
	__attribute__((constructor)) static void rwp_reg_##fn(void)	\
	{								\
		for (int t = 0; t < MEM_NTYPES; t++) {			\
			char *name = NULL;				\
			if (asprintf(&name, "%s__%s", #fn, mem_names[t]) > 0) \
				rwp_register(name, fn, t, __LINE__);	\
		}							\
	}								\
	static void fn(int type)

/* A mapping of one memory type, in units of its page size. */
struct mem {
	enum mem_type type;
	char *addr;
	size_t len;
	size_t unit;		/* the size a fault and a protection act on */
	int fd;
};

static inline int mem_is_huge(enum mem_type t)
{
	return t == MEM_HUGETLB || t == MEM_HUGETLB_PRIVATE;
}

static inline int mem_unit_pattern(size_t i)
{
	return 'a' + (int)(i % 26);
}

static inline void mem_fill(struct mem *m)
{
	for (size_t i = 0; i < m->len / m->unit; i++)
		memset(m->addr + i * m->unit, mem_unit_pattern(i), m->unit);
}

/*
 * The value of a "Key: value" line of a /proc file, without its newline,
 * into buf: in smaps, of the VMA holding addr (addr NULL: the whole file, as
 * for meminfo). Returns whether the line was there.
 */
static inline int proc_field(const char *path, void *addr, const char *key, char *buf, size_t len)
{
	unsigned long a = (unsigned long)addr, lo, hi;
	char line[512];
	size_t klen = strlen(key);
	int inside = !addr, found = 0;
	FILE *f = fopen(path, "r");

	CHECK(f != NULL, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		if (addr && sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			inside = lo <= a && a < hi;
		} else if (inside && !strncmp(line, key, klen) && line[klen] == ':') {
			snprintf(buf, len, "%s", line + klen + 1 + strspn(line + klen + 1, " \t"));
			buf[strcspn(buf, "\n")] = '\0';
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* Does smaps say the VMA containing addr holds at least one anon THP? */
static inline int vma_has_anon_thp(void *addr)
{
	char v[64];

	return proc_field("/proc/self/smaps", addr, "AnonHugePages", v, sizeof(v)) &&
	       atol(v) >= 2048;
}

/*
 * len bytes of private anon memory with prot, starting at an align boundary
 * (a power of two): PROT_NONE reserves room to mmap or mremap onto.
 */
static inline char *map_aligned(size_t len, size_t align, int prot)
{
	char *raw = mmap(NULL, len + align, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(raw != MAP_FAILED, "mmap %zu bytes to align to 0x%zx", len + align, align);
	return (char *)(((unsigned long)raw + align - 1) & ~(align - 1));
}

static inline char *map_aligned_anon_thp(size_t len)
{
	char *p = map_aligned(len, HPAGE_SIZE, PROT_READ | PROT_WRITE);

	CHECK(madvise(p, len, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE");
	return p;
}

/* Free memory in blocks of 2 MiB or more, counted in 2 MiB blocks (/proc/buddyinfo, all zones). */
static inline long free_huge_blocks(void)
{
	char line[512];
	long n = 0;
	FILE *f = fopen("/proc/buddyinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "zone");
		int order = 0, used;
		long c;

		if (!p)
			continue;
		p += strlen("zone");
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;		/* the zone's name */
		for (; sscanf(p, "%ld%n", &c, &used) == 1; order++, p += used)
			if (order >= 9)
				n += c << (order - 9);
	}
	fclose(f);
	return n;
}

/*
 * A huge page the test needs did not come although compaction was tried: a
 * skip that names the precondition only when memory is really short (no free
 * 2 MiB block), a failure otherwise.
 */
#define HUGE_PAGE_MISSING(fmt, ...)							\
	do {										\
		long fb_ = free_huge_blocks();						\
		if (fb_ == 0)								\
			SKIP("precondition: memory is short (no free 2 MiB block after "	\
			     "compaction): " fmt, __VA_ARGS__);				\
		FAIL(fmt " although %ld free 2 MiB blocks remain", __VA_ARGS__, fb_);	\
	} while (0)

static inline void compact_memory(void)
{
	(void)write_text("/proc/sys/vm/compact_memory", "1");
}

/*
 * Map n units of type t, filled with a pattern per unit. The hugetlb types
 * need pages reserved by the harness's guest set-up; anon_thp must really be
 * PMD-mapped, or the test would silently test PTEs.
 */
static inline struct mem mem_map(enum mem_type t, size_t n)
{
	struct mem m = { .type = t, .fd = -1 };
	int flags = (t == MEM_SHMEM || t == MEM_HUGETLB) ? MAP_SHARED : MAP_PRIVATE;

	m.unit = mem_is_huge(t) ? HPAGE_SIZE : (t == MEM_ANON_THP ? HPAGE_SIZE : page_size());
	m.len = n * m.unit;
	switch (t) {
	case MEM_ANON:
		m.addr = map_anon(m.len);
		break;
	case MEM_ANON_THP:
		m.addr = map_aligned_anon_thp(m.len);
		break;
	default:
		m.fd = memfd_create(mem_names[t], MFD_CLOEXEC | (mem_is_huge(t) ? MFD_HUGETLB : 0));
		CHECK(m.fd >= 0, "memfd_create for %s", mem_names[t]);
		CHECK(ftruncate(m.fd, (off_t)m.len) == 0, "ftruncate %zu", m.len);
		m.addr = mmap(NULL, m.len, PROT_READ | PROT_WRITE, flags, m.fd, 0);
		if (m.addr == MAP_FAILED && mem_is_huge(t))
			FAIL("no hugetlb pages for %zu bytes: is vm.nr_hugepages set?", m.len);
		CHECK(m.addr != MAP_FAILED, "mmap %s", mem_names[t]);
	}
	mem_fill(&m);
	if (t == MEM_ANON_THP && !vma_has_anon_thp(m.addr)) {
		compact_memory();
		CHECK(madvise(m.addr, m.len, MADV_DONTNEED) == 0, "MADV_DONTNEED to retry the THP");
		mem_fill(&m);
		if (!vma_has_anon_thp(m.addr))
			HUGE_PAGE_MISSING("no PMD-mapped THP at %p after MADV_HUGEPAGE", (void *)m.addr);
	}
	return m;
}

/* The minor page faults this thread has taken so far. */
static inline long thread_minor_faults(void)
{
	struct rusage ru;

	CHECK(getrusage(RUSAGE_THREAD, &ru) == 0, "getrusage");
	return ru.ru_minflt;
}

/* The minor faults this thread takes reading one byte of each of the n pages at p. */
static inline long faults_reading(const char *p, size_t n)
{
	volatile char sink = 0;
	long f0;

	thread_minor_faults();		/* its own stack page is faulted in now, not below */
	f0 = thread_minor_faults();
	for (size_t i = 0; i < n; i++)
		sink += p[i * page_size() + 1];
	(void)sink;
	return thread_minor_faults() - f0;
}

/* All the page faults this thread has taken: one retried after a wake-up counts as major. */
static inline long thread_faults(void)
{
	struct rusage ru;

	CHECK(getrusage(RUSAGE_THREAD, &ru) == 0, "getrusage");
	return ru.ru_minflt + ru.ru_majflt;
}

/* ---- an access that may raise a signal ---- */

/* A thread that touches one byte and reports SIGSEGV or SIGBUS instead of dying. */
struct toucher {
	pthread_t thread;
	volatile char *addr;
	int write;
	volatile int done, sig;
	siginfo_t info;
};

static __thread sigjmp_buf toucher_env __attribute__((unused));
static __thread siginfo_t toucher_info __attribute__((unused));

static inline void toucher_jump(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	toucher_info = *si;
	siglongjmp(toucher_env, sig);
}

static inline void *toucher_fn(void *arg)
{
	struct toucher *t = arg;
	int sig = sigsetjmp(toucher_env, 1);

	if (sig == 0 && t->write)
		*t->addr = 'z';
	else if (sig == 0)
		(void)*t->addr;
	t->sig = sig;
	t->info = toucher_info;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Reads addr (or writes 'z' there) from another thread, so that an access
 * which blocks fails the test instead of hanging it. Returns the signal the
 * access raised, SIGSEGV or SIGBUS (its siginfo in *info when info is given),
 * or 0 if it succeeded.
 */
static inline int access_signal(void *addr, int write, siginfo_t *info)
{
	struct sigaction sa = { .sa_sigaction = toucher_jump, .sa_flags = SA_SIGINFO | SA_NODEFER };
	struct sigaction old_segv, old_bus;
	struct toucher t = { .addr = addr, .write = write };

	CHECK(sigaction(SIGSEGV, &sa, &old_segv) == 0 && sigaction(SIGBUS, &sa, &old_bus) == 0,
	      "sigaction");
	thread_start(&t.thread, toucher_fn, &t);
	CHECK(WAIT_UNTIL(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE), RWP_WAIT_MS),
	      "the %s of %p blocked", write ? "write" : "read", addr);
	pthread_join(t.thread, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	if (info)
		*info = t.info;
	return t.sig;
}

/* ---- pagemap ---- */

#define PM_UFFD_BIT 57
#define PM_SWAP_BIT 62
#define PM_PRESENT_BIT 63
#define PFN_MASK ((1ULL << 55) - 1)		/* pagemap bits 0-54 */

static inline uint64_t pagemap_entry(void *addr)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;

	CHECK(fd >= 0, "open pagemap");
	CHECK(pread(fd, &e, sizeof(e), (off_t)((unsigned long)addr / page_size() * 8)) == 8,
	      "pread pagemap");
	close(fd);
	return e;
}

static inline int page_uffd_bit(void *addr)
{
	return (int)((pagemap_entry(addr) >> PM_UFFD_BIT) & 1);
}

/* Hosts with headers before 6.7 lack PAGEMAP_SCAN; the guest kernel has it. */
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PAGE_IS_PRESENT
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif
#ifndef PAGE_IS_ACCESSED
#define PAGE_IS_ACCESSED (1 << 9)
#endif

/* PAGEMAP_SCAN for one category; returns the number of regions found. */
static inline long scan_pages(void *start, size_t len, __u64 category, int inverted,
			      struct page_region *vec, size_t nvec)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (unsigned long)start,
		.end = (unsigned long)start + len,
		.vec = (unsigned long)vec,
		.vec_len = nvec,
		.category_mask = category,
		.category_inverted = inverted ? category : 0,
		.return_mask = category,
	};

	int fd = open("/proc/self/pagemap", O_RDONLY);
	long n;

	CHECK(fd >= 0, "open pagemap");
	n = ioctl(fd, PAGEMAP_SCAN, &arg);
	close(fd);
	return n;
}

/* A "Key:   N kB" line of /proc/meminfo, or of smaps for the VMA holding addr. */
static inline long long kb_field(const char *path, void *addr, const char *key)
{
	char v[64];

	if (!proc_field(path, addr, key, v, sizeof(v)))
		FAIL("%s has no %s line%s", path, key, addr ? " for the VMA" : "");
	return atoll(v);
}

/* ---- pagemap of a range ---- */

static inline void pagemap_range(void *addr, size_t n, uint64_t *out)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);

	CHECK(fd >= 0, "open pagemap");
	CHECK(pread(fd, out, n * 8, (off_t)((unsigned long)addr / page_size() * 8)) ==
	      (ssize_t)(n * 8), "pread pagemap");
	close(fd);
}

/* The page frame at addr (pagemap bits 0-54; root sees it, others read 0). */
static inline uint64_t pfn_of(void *addr)
{
	return pagemap_entry(addr) & PFN_MASK;
}

#define KPF_SWAPCACHE 14

/* The kernel's flags of the page frame at addr (/proc/kpageflags, root only); ~0 if unreadable. */
static inline uint64_t kpageflags_of(void *addr)
{
	uint64_t pfn = pfn_of(addr), flags = ~0ULL;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd >= 0 && pread(fd, &flags, 8, (off_t)(pfn * 8)) != 8)
		flags = ~0ULL;
	if (fd >= 0)
		close(fd);
	return flags;
}

static inline int pm_bit(void *addr, int bit)
{
	return (int)((pagemap_entry(addr) >> bit) & 1);
}

/* Fails unless every one of the n pages at addr has bit == want. */
static inline void want_bits(void *addr, size_t n, int bit, int want, const char *what)
{
	uint64_t *e = calloc(n, 8);

	CHECK(e != NULL, "calloc");
	pagemap_range(addr, n, e);
	for (size_t i = 0; i < n; i++)
		if ((int)((e[i] >> bit) & 1) != want)
			FAIL("%s: page %zu of %zu has pagemap bit %d = %d (entry 0x%llx)", what, i,
			     n, bit, !want, (unsigned long long)e[i]);
	free(e);
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static inline size_t first_not_swapped(void *addr, size_t n, uint64_t *e)
{
	size_t i;

	CHECK(madvise(addr, n * page_size(), MADV_PAGEOUT) == 0, "MADV_PAGEOUT");
	pagemap_range(addr, n, e);
	for (i = 0; i < n && ((e[i] >> PM_SWAP_BIT) & 1); i++)
		;
	return i;
}

/*
 * Pages out the n pages at addr until every one is a swap entry (pagemap bit
 * 62). One MADV_PAGEOUT skips a page still in a CPU's LRU-add batch, so it is
 * repeated for up to RWP_WAIT_MS; a page still present then fails the test's
 * precondition by name.
 */
static inline void swap_out(void *addr, size_t n)
{
	uint64_t *e = calloc(n, 8);
	size_t i = 0;

	CHECK(e != NULL, "calloc");
	if (!WAIT_UNTIL((i = first_not_swapped(addr, n, e)) == n, RWP_WAIT_MS))
		FAIL("precondition: page %zu of %zu is not in swap after %d ms of MADV_PAGEOUT "
		     "(entry 0x%llx)", i, n, RWP_WAIT_MS, (unsigned long long)e[i]);
	free(e);
}

/* n units of type t on a new uffd with RWP|features, registered MODE_RWP. */
static inline struct mem mem_rwp(enum mem_type t, size_t n, int *fd, __u64 features,
				 __u64 mode)
{
	struct mem m;

	require_rwp();
	m = mem_map(t, n);
	*fd = uffd_new(UFFD_FEATURE_RWP | features);
	ok(uffd_register(*fd, m.addr, m.len, mode, NULL), "UFFDIO_REGISTER");
	return m;
}

#endif /* RWP_MEM_H */
