// SPDX-License-Identifier: GPL-2.0
/*
 * The RWP contract (docs/contract.md), one test per behaviour and, where it
 * applies, per memory type. Each test names its contract ids.
 */
#include "rwp_mem.h"
#include <setjmp.h>

#define NUNITS 4

/* The raw UFFDIO_API, keeping the struct the kernel wrote back. */
static int api_raw(int fd, struct uffdio_api *api, __u64 features)
{
	api->api = UFFD_API;
	api->features = features;
	api->ioctls = 0;
	return ioctl(fd, UFFDIO_API, api) ? -errno : 0;
}

static void protect_all(int uffd, struct mem *m)
{
	ok(uffd_rwprotect(uffd, m->addr, m->len, UFFDIO_RWPROTECT_MODE_RWP),
		  "UFFDIO_RWPROTECT MODE_RWP");
}

/* The message for a blocked access, checked; the thread is still blocked. */
static void expect_fault(int uffd, struct accessor *acc, __u64 flags, unsigned long addr)
{
	struct uffd_msg msg;
	int n = uffd_read_msg(uffd, &msg, RWP_WAIT_MS);

	CHECK(n == 1, "no fault message within %d ms (%d)", RWP_WAIT_MS, n);
	CHECK(msg.event == UFFD_EVENT_PAGEFAULT, "event 0x%x", msg.event);
	CHECK(msg.arg.pagefault.flags == flags, "flags 0x%llx, want 0x%llx",
	      (unsigned long long)msg.arg.pagefault.flags, (unsigned long long)flags);
	CHECK(msg.arg.pagefault.address == addr, "address 0x%llx, want 0x%lx",
	      (unsigned long long)msg.arg.pagefault.address, addr);
	CHECK(!acc->done, "the access completed while protected");
}

/* Start a reader of unit-aligned addr and see it block with its RWP message. */
static void block_reader(int uffd, struct accessor *acc, char *addr)
{
	accessor_start(acc, addr, 0, 0);
	expect_fault(uffd, acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)addr);
}

static void read_faults_until_resolved(int uffd, char *addr, size_t len)
{
	struct accessor acc;

	block_reader(uffd, &acc, addr);
	ok(uffd_rwprotect(uffd, addr, len, 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the thread did not resume after resolve");
}

/* ---- A. feature negotiation ---- */

/* A1 */
RWP_TEST(api_features_and_ioctls)
{
	struct uffdio_api api;
	int fd = uffd_open();

	ok(api_raw(fd, &api, 0), "UFFDIO_API(0)");
	if (!(api.features & UFFD_FEATURE_RWP))
		SKIP(RWP_NO_FEATURE_REASON);
	CHECK(api.features & UFFD_FEATURE_RWP_ASYNC, "RWP without RWP_ASYNC: 0x%llx",
	      (unsigned long long)api.features);
	CHECK(api.ioctls & (1ULL << _UFFDIO_SET_MODE), "ioctls 0x%llx lack SET_MODE",
	      (unsigned long long)api.ioctls);
	CHECK(api.ioctls & (1ULL << _UFFDIO_REGISTER), "ioctls lack REGISTER");
}

/* A12: a kernel without RWP refuses it everywhere (runs only there) */
RWP_TEST(rwp_refused_when_not_advertised)
{
	struct uffdio_api api;
	char *p = map_anon(page_size());
	int fd = uffd_open();

	if (uffd_kernel_features() & UFFD_FEATURE_RWP)
		SKIP("kernel advertises UFFD_FEATURE_RWP: the refusal path does not apply");
	CHECK(!(uffd_kernel_features() & UFFD_FEATURE_RWP_ASYNC), "RWP_ASYNC without RWP");
	refused(api_raw(fd, &api, UFFD_FEATURE_RWP), EINVAL, "API(RWP)");
	ok(api_raw(fd, &api, 0), "API(0)");
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "REGISTER MODE_RWP");
}

/* A12: without RWP the new ioctls are unknown and PAGEMAP_SCAN has no ACCESSED (runs only there) */
RWP_TEST(rwp_ioctls_unknown_when_not_advertised)
{
	size_t ps = page_size();
	char *p = map_anon(ps);
	struct uffdio_rwprotect rw = { .range = { (unsigned long)p, ps },
				       .mode = UFFDIO_RWPROTECT_MODE_RWP };
	struct uffdio_set_mode sm = { .enable = UFFD_FEATURE_RWP_ASYNC };
	struct page_region r;
	__u64 ioctls = 0;
	int fd;

	if (uffd_kernel_features() & UFFD_FEATURE_RWP)
		SKIP("kernel advertises UFFD_FEATURE_RWP: the refusal path does not apply");
	p[0] = 1;	/* populated: the scan must refuse the category, not find nothing */
	fd = uffd_open();
	ok(uffd_api(fd, 0, NULL, NULL), "API(0)");
	ok(uffd_register(fd, p, ps, UFFDIO_REGISTER_MODE_MISSING, &ioctls),
		  "REGISTER MODE_MISSING");
	CHECK(!(ioctls & (1ULL << _UFFDIO_RWPROTECT)) && !(ioctls & (1ULL << _UFFDIO_SET_MODE)),
	      "REGISTER's ioctls mask 0x%llx names RWPROTECT or SET_MODE", (unsigned long long)ioctls);
	refused(ioctl(fd, UFFDIO_RWPROTECT, &rw) ? -errno : 0, EINVAL, "UFFDIO_RWPROTECT");
	refused(ioctl(fd, UFFDIO_SET_MODE, &sm) ? -errno : 0, EINVAL, "UFFDIO_SET_MODE");
	refused(scan_pages(p, ps, PAGE_IS_ACCESSED, 0, &r, 1) < 0 ? -errno : 0, EINVAL,
		   "PAGEMAP_SCAN(ACCESSED)");
}

/* A4 */
RWP_TEST(api_rwp_async_without_rwp_refused)
{
	struct uffdio_api api;
	int fd;

	require_rwp();
	fd = uffd_open();
	refused(api_raw(fd, &api, UFFD_FEATURE_RWP_ASYNC), EINVAL, "API(RWP_ASYNC)");
	CHECK(api.features == 0 && api.ioctls == 0, "struct not zeroed on error");
	ok(api_raw(fd, &api, UFFD_FEATURE_RWP), "API(RWP) after the refusal");
}

/* A5 */
RWP_TEST(api_unknown_feature_bits_refused)
{
	struct uffdio_api api;
	int fd;

	require_rwp();
	fd = uffd_open();
	refused(api_raw(fd, &api, UFFD_FEATURE_RWP | (1ULL << 19)), EINVAL, "API(RWP|bit19)");
	refused(api_raw(fd, &api, 1ULL << 63), EINVAL, "API(bit63)");
}

/* A7 */
RWP_TEST(api_second_call_refused_first_kept)
{
	struct uffdio_api api;
	char *p;
	int fd;

	require_rwp();
	fd = uffd_open();
	ok(api_raw(fd, &api, UFFD_FEATURE_RWP), "first API");
	refused(api_raw(fd, &api, 0), EINVAL, "second API");
	p = map_anon(page_size());
	ok(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL),
		  "REGISTER RWP after the refused second API");
}

/* A9 */
RWP_TEST(ioctls_before_api_refused)
{
	char *p = map_anon(page_size());
	int fd = uffd_open();

	require_rwp();
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "REGISTER before API");
	refused(uffd_rwprotect(fd, p, page_size(), UFFDIO_RWPROTECT_MODE_RWP), EINVAL,
		   "RWPROTECT before API");
	refused(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), EINVAL, "SET_MODE before API");
}

/* ---- B. registration ---- */

/* B1 */
RWP_TEST(register_rwp_without_feature_refused)
{
	char *p = map_anon(page_size());
	int fd;

	require_rwp();
	fd = uffd_new(0);
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "REGISTER RWP without UFFD_FEATURE_RWP");
}

/* B3 */
RWP_TEST(register_unknown_mode_refused)
{
	char *p = map_anon(page_size());
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP | (1ULL << 4), NULL),
		   EINVAL, "REGISTER RWP|bit4");
	refused(uffd_register(fd, p, page_size(), 0, NULL), EINVAL, "REGISTER mode 0");
}

/* B25: a registration without MODE_RWP offers no UFFDIO_RWPROTECT, and an RWPROTECT of it is ENOENT */
RWP_TEST(register_without_rwp_offers_no_rwprotect)
{
	static const struct { __u64 mode; const char *name; } reg[] = {
		{ UFFDIO_REGISTER_MODE_MISSING, "MISSING" },
		{ UFFDIO_REGISTER_MODE_WP, "WP" },
		{ UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, "MISSING|WP" },
	};

	require_rwp();
	for (size_t i = 0; i < sizeof(reg) / sizeof(reg[0]); i++) {
		struct mem m = mem_map(MEM_ANON, NUNITS);
		int fd = uffd_new(UFFD_FEATURE_RWP);
		__u64 ioctls = 0;

		ok(uffd_register(fd, m.addr, m.len, reg[i].mode, &ioctls), reg[i].name);
		CHECK(!(ioctls & (1ULL << _UFFDIO_RWPROTECT)), "REG(%s) on an RWP ctx offers "
		      "RWPROTECT (ioctls 0x%llx)", reg[i].name, (unsigned long long)ioctls);
		refused(uffd_rwprotect(fd, m.addr, m.len, UFFDIO_RWPROTECT_MODE_RWP), ENOENT,
			"RWPROTECT of a range registered without MODE_RWP");
		CHECK(!page_uffd_bit(m.addr), "the refused RWPROTECT armed a page");
		close(fd);
		munmap(m.addr, m.len);
	}
}

/* B4, B6, B7: every supported memory type registers and offers RWPROTECT */
RWP_TEST_MEM(register_offers_rwprotect)
{
	struct mem m;
	__u64 ioctls = 0;
	int fd;

	require_rwp();
	m = mem_map(type, NUNITS);
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_RWP, &ioctls),
		  "REGISTER RWP");
	CHECK(ioctls & (1ULL << _UFFDIO_RWPROTECT), "ioctls 0x%llx lack RWPROTECT",
	      (unsigned long long)ioctls);
	CHECK(!(ioctls & (1ULL << _UFFDIO_WRITEPROTECT)), "ioctls 0x%llx offer WRITEPROTECT",
	      (unsigned long long)ioctls);
}

/* B8: a regular file's private mapping is not a memory type RWP supports */
RWP_TEST(register_regular_file_refused)
{
	int fd, ffd = open("/proc/self/exe", O_RDONLY);
	char *p;

	require_rwp();
	CHECK(ffd >= 0, "open /proc/self/exe");
	p = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
	CHECK(p != MAP_FAILED, "mmap of the program file");
	fd = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "REGISTER RWP on a regular file mapping");
}

/* B11 */
RWP_TEST(register_prot_none_refused_for_rwp_only)
{
	char *p = mmap(NULL, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd;

	require_rwp();
	CHECK(p != MAP_FAILED, "mmap PROT_NONE");
	fd = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "REGISTER RWP on PROT_NONE");
	ok(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_MISSING, NULL),
		  "REGISTER MISSING on PROT_NONE");
}

/* B14 */
RWP_TEST(register_range_validation)
{
	char *p = map_anon(2 * page_size());
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_register(fd, p + 1, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "unaligned start");
	refused(uffd_register(fd, p, 0, UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL, "len 0");
	refused(uffd_register(fd, p, page_size() + 1, UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "unaligned len");
}

/* B18: dropping RWP by re-registering is EBUSY, and the protection stays */
RWP_TEST_MEM(reregister_dropping_rwp_is_ebusy)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	refused(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_MISSING, NULL), EBUSY,
		   "re-REGISTER MISSING over RWP");
	CHECK(page_uffd_bit(m.addr), "protection lost after the refused re-registration");
}


/* B17: a range registered on one uffd cannot be registered on another */
RWP_TEST(register_on_second_uffd_is_ebusy)
{
	int fd1, fd2;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd1, 0, UFFDIO_REGISTER_MODE_RWP);

	fd2 = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_register(fd2, m.addr, m.len, UFFDIO_REGISTER_MODE_RWP, NULL), EBUSY,
		   "REGISTER on a second uffd");
	protect_all(fd1, &m);
	CHECK(page_uffd_bit(m.addr), "the first uffd lost its registration");
}

/* B19: a WP range cannot become RWP */
RWP_TEST(reregister_wp_as_rwp_is_ebusy)
{
	char *p = map_anon(page_size());
	int fd;

	require_rwp();
	p[0] = 1;
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_WP, NULL), "REGISTER WP");
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EBUSY,
		   "re-REGISTER RWP over WP");
}

/* B20: adding MISSING on top of RWP keeps the protection */
RWP_TEST_MEM(reregister_adding_missing_keeps_protection)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	ok(uffd_register(fd, m.addr, m.len,
				UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP, NULL),
		  "re-REGISTER MISSING|RWP");
	CHECK(page_uffd_bit(m.addr), "protection lost when adding MISSING");
}

/* B12, H5: a protected RWP VMA made PROT_NONE cannot be re-registered, but unregisters */
RWP_TEST(prot_none_rwp_vma_reregister_and_unregister)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	CHECK(mprotect(m.addr, m.len, PROT_NONE) == 0, "mprotect(PROT_NONE)");
	refused(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "re-REGISTER RWP of the PROT_NONE VMA");
	ok(uffd_unregister(fd, m.addr, m.len), "UNREGISTER of the PROT_NONE VMA");
	CHECK(mprotect(m.addr, m.len, PROT_READ | PROT_WRITE) == 0, "mprotect(RW)");
	CHECK(m.addr[page_size() + 2] == mem_unit_pattern(1), "contents after unregister");
	want_quiet(fd, "access after unregister");
}

/* ---- C. UFFDIO_RWPROTECT ---- */

/* C2 */
RWP_TEST(rwprotect_mode_validation)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	refused(uffd_rwprotect(fd, m.addr, m.len, 1ULL << 2), EINVAL, "mode bit 2");
	refused(uffd_rwprotect(fd, m.addr, m.len,
				  UFFDIO_RWPROTECT_MODE_RWP | UFFDIO_RWPROTECT_MODE_DONTWAKE),
		   EINVAL, "MODE_RWP|MODE_DONTWAKE");
	refused(uffd_rwprotect(fd, m.addr + 1, page_size(), UFFDIO_RWPROTECT_MODE_RWP), EINVAL,
		   "unaligned start");
	refused(uffd_rwprotect(fd, m.addr, 0, UFFDIO_RWPROTECT_MODE_RWP), EINVAL, "len 0");
}

/* C1, G9: protected pages stay present, with the uffd bit; resolve clears it */
RWP_TEST_MEM(rwprotect_sets_and_clears_uffd_bit)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	CHECK(!page_uffd_bit(m.addr), "uffd bit set before any protection");
	protect_all(fd, &m);
	CHECK(pagemap_entry(m.addr) >> PM_PRESENT_BIT & 1, "protected page not present");
	CHECK(page_uffd_bit(m.addr + m.len - page_size()), "uffd bit clear after protection");
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve");
	CHECK(!page_uffd_bit(m.addr), "uffd bit still set after resolve");
	CHECK(m.addr[m.unit + 3] == mem_unit_pattern(1), "contents changed");
}

/*
 * C21: WRITEPROTECT on a WP VMA still only write-protects: RWP's PAGE_NONE is
 * for MM_CP_UFFD_RWP alone, so reading the protected units takes no fault and
 * a write still raises a WP fault
 */
RWP_TEST_MEM(writeprotect_leaves_reads_fault_free)
{
	struct mem m;
	struct accessor acc;
	long faults;
	size_t bad = 0;
	int fd;

	require_rwp();
	m = mem_map(type, NUNITS);
	fd = uffd_new(type == MEM_ANON || type == MEM_ANON_THP ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	ok(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_WP, NULL), "REG(WP)");
	ok(uffd_writeprotect(fd, m.addr, m.len, UFFDIO_WRITEPROTECT_MODE_WP), "WRITEPROTECT");
	CHECK(page_uffd_bit(m.addr + m.len - page_size()), "no uffd bit after WRITEPROTECT");
	faults = thread_minor_faults();
	for (size_t off = 0; off < m.len; off += page_size())
		bad += ((volatile char *)m.addr)[off] != mem_unit_pattern(off / m.unit);
	faults = thread_minor_faults() - faults;
	CHECK(faults == 0, "reading %zu write-protected bytes took %ld faults, want 0 "
	      "(the pages are not readable: PROT_NONE?)", m.len, faults);
	CHECK(bad == 0, "%zu pages read back wrong", bad);
	accessor_start(&acc, m.addr + 1, 1, 'W');
	want_fault(fd, UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_WRITE, (unsigned long)m.addr);
	ok(uffd_writeprotect(fd, m.addr, m.len, 0), "WRITEPROTECT resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS) && m.addr[1] == 'W', "the writer did not resume");
}

/* C3: a range that also covers a VMA not registered for RWP changes nothing */
RWP_TEST(rwprotect_prescan_is_all_or_nothing)
{
	size_t ps = page_size();
	char *p = map_anon(4 * ps);
	int fd;

	require_rwp();
	memset(p, 'x', 4 * ps);
	fd = uffd_new(UFFD_FEATURE_RWP);
	/* Registering the first half splits the VMA: [RWP][plain]. */
	ok(uffd_register(fd, p, 2 * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER half");
	refused(uffd_rwprotect(fd, p, 4 * ps, UFFDIO_RWPROTECT_MODE_RWP), ENOENT,
		   "RWPROTECT over [RWP VMA][unregistered VMA]");
	CHECK(!page_uffd_bit(p) && !page_uffd_bit(p + ps), "the RWP half was protected anyway");
	ok(uffd_rwprotect(fd, p, 2 * ps, UFFDIO_RWPROTECT_MODE_RWP), "RWPROTECT half");
	refused(uffd_rwprotect(fd, p, 4 * ps, 0), ENOENT, "resolve over both VMAs");
	CHECK(page_uffd_bit(p) && page_uffd_bit(p + ps), "the RWP half was resolved anyway");
}

/* C4: only unmapped addresses */
RWP_TEST(rwprotect_hole_only_is_enoent)
{
	char *p = map_anon(page_size());
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	CHECK(munmap(p, page_size()) == 0, "munmap");
	refused(uffd_rwprotect(fd, p, page_size(), UFFDIO_RWPROTECT_MODE_RWP), ENOENT,
		   "RWPROTECT on a hole");
}

/*
 * C5: hugetlb alignment is checked against the whole request, also one that
 * starts in an anon VMA just below the hugetlb one; nothing is changed
 */
RWP_TEST(rwprotect_hugetlb_alignment)
{
	int fd;
	struct mem m = mem_rwp(MEM_HUGETLB, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	size_t below = 4 * page_size();
	char *anon = m.addr - below;

	refused(uffd_rwprotect(fd, m.addr + page_size(), HPAGE_SIZE,
				  UFFDIO_RWPROTECT_MODE_RWP), EINVAL, "start not huge-aligned");
	refused(uffd_rwprotect(fd, m.addr, page_size(), UFFDIO_RWPROTECT_MODE_RWP), EINVAL,
		   "len not a huge page");
	CHECK(!page_uffd_bit(m.addr), "the refused request protected a page");
	/* The hugetlb mapping sits on a 2 MiB boundary; put 4 anon pages right below it. */
	CHECK(mmap(anon, below, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == anon,
	      "map anon pages right below the hugetlb mapping");
	memset(anon, 'x', below);
	ok(uffd_register(fd, anon, below, UFFDIO_REGISTER_MODE_RWP, NULL), "REG the anon pages");
	refused(uffd_rwprotect(fd, anon, below + HPAGE_SIZE, UFFDIO_RWPROTECT_MODE_RWP), EINVAL,
		"a 4K-aligned request from the anon VMA into the hugetlb one");
	want_bits(anon, 4, PM_UFFD_BIT, 0, "the anon pages of the refused span");
	CHECK(!page_uffd_bit(m.addr), "the refused span protected the huge page");
	ok(uffd_rwprotect(fd, anon, below, UFFDIO_RWPROTECT_MODE_RWP), "control: RWP of the anon part");
	want_bits(anon, 4, PM_UFFD_BIT, 1, "the anon pages alone");
}

/* C6: protection is a property of present pages */
RWP_TEST(rwprotect_unpopulated_pages_untouched)
{
	size_t ps = page_size();
	char *p = map_anon(2 * ps);
	struct accessor acc;
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, 2 * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REGISTER");
	ok(uffd_rwprotect(fd, p, 2 * ps, UFFDIO_RWPROTECT_MODE_RWP), "RWPROTECT");
	accessor_start(&acc, p + 10, 0, 0);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "first touch of an unpopulated page blocked");
	want_quiet(fd, "first touch");
	CHECK(!page_uffd_bit(p), "a freshly populated page carries the uffd bit");
}

/* C7: protecting twice gives one fault */
RWP_TEST(rwprotect_twice_one_fault)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	protect_all(fd, &m);
	read_faults_until_resolved(fd, m.addr, page_size());
	want_quiet(fd, "after one resolve");
}

/* C8: resolving never-protected pages, and resolving twice, succeed */
RWP_TEST_MEM(resolve_is_idempotent)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve never-protected pages");
	protect_all(fd, &m);
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve");
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve again");
	CHECK(!page_uffd_bit(m.addr), "uffd bit set after resolving");
}

/* C11: protecting again does not wake a blocked thread */
RWP_TEST(protect_never_wakes)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	protect_all(fd, &m);
	block_reader(fd, &acc, m.addr);
	protect_all(fd, &m);
	CHECK(!accessor_wait(&acc, 500), "protecting woke the blocked thread");
	/* A wrongly woken thread faults again at once and blocks again: its second message shows it. */
	want_quiet(fd, "after protecting again");
	ok(uffd_rwprotect(fd, m.addr, page_size(), 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not resumed");
}

/* C10: DONTWAKE resolves without waking; UFFDIO_WAKE then resumes the thread */
RWP_TEST(resolve_dontwake_then_wake)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	protect_all(fd, &m);
	block_reader(fd, &acc, m.addr);
	ok(uffd_rwprotect(fd, m.addr, page_size(), UFFDIO_RWPROTECT_MODE_DONTWAKE),
		  "resolve with DONTWAKE");
	CHECK(!accessor_wait(&acc, 500), "DONTWAKE woke the thread");
	ok(uffd_wake(fd, m.addr, page_size()), "UFFDIO_WAKE");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "UFFDIO_WAKE did not resume the thread");
	CHECK(acc.value == mem_unit_pattern(0), "read 0x%x", acc.value);
}

/* D7: UFFDIO_WAKE without a resolve: the thread faults again, with a second identical message */
RWP_TEST(wake_without_resolve_faults_again)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	protect_all(fd, &m);
	block_reader(fd, &acc, m.addr + page_size());
	ok(uffd_wake(fd, m.addr + page_size(), page_size()), "UFFDIO_WAKE");
	expect_fault(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)m.addr + page_size());
	CHECK(page_uffd_bit(m.addr + page_size()), "the wake resolved the page");
	ok(uffd_rwprotect(fd, m.addr + page_size(), page_size(), 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the thread did not resume after the resolve");
	CHECK(acc.value == mem_unit_pattern(1), "read 0x%x", acc.value);
	want_quiet(fd, "after the resolve");
}

/* ---- D. sync faults ---- */

/* D1, D2, D5, D6 */
static void sync_fault_on(enum mem_type type, int write)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	char *target = m.addr + 2 * m.unit + (0x1234 & (m.unit - 1));
	unsigned long want = (unsigned long)target & ~(mem_is_huge(type) ? HPAGE_SIZE - 1 :
						       page_size() - 1);
	struct accessor acc;
	uint64_t pfn = pfn_of(target);

	CHECK(pfn != 0, "the target page has no PFN");
	protect_all(fd, &m);
	accessor_start(&acc, target, write, 'Z');
	expect_fault(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP | (write ? UFFD_PAGEFAULT_FLAG_WRITE : 0),
		     want);
	ok(uffd_rwprotect(fd, m.addr + 2 * m.unit, m.unit, 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the thread did not resume");
	CHECK(pfn_of(target) == pfn, "the %s landed in another frame (PFN 0x%llx, was 0x%llx)",
	      write ? "write" : "read", (unsigned long long)pfn_of(target),
	      (unsigned long long)pfn);
	CHECK(!page_uffd_bit(target), "the resolved unit kept the uffd bit");
	if (write)
		CHECK(*target == 'Z', "write lost");
	else
		CHECK(acc.value == mem_unit_pattern(2), "read 0x%x", acc.value);
	want_quiet(fd, "after resolve");
}

/* D1, D5, D6 */
RWP_TEST_MEM(sync_read_fault)
{
	sync_fault_on(type, 0);
}

/* D2, D5, D6 */
RWP_TEST_MEM(sync_write_fault)
{
	sync_fault_on(type, 1);
}

/* D3, D4 */
RWP_TEST(sync_fault_exact_address_and_thread_id)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_EXACT_ADDRESS | UFFD_FEATURE_THREAD_ID, UFFDIO_REGISTER_MODE_RWP);
	struct uffd_msg msg;
	struct accessor acc;

	protect_all(fd, &m);
	accessor_start(&acc, m.addr + 0x123, 0, 0);
	CHECK(uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1, "no message");
	CHECK(msg.arg.pagefault.address == (unsigned long)m.addr + 0x123,
	      "address 0x%llx is not the exact one", (unsigned long long)msg.arg.pagefault.address);
	CHECK((pid_t)msg.arg.pagefault.feat.ptid == __atomic_load_n(&acc.tid, __ATOMIC_ACQUIRE),
	      "ptid %u is not the faulting thread's (%d)", msg.arg.pagefault.feat.ptid,
	      (int)acc.tid);
	ok(uffd_rwprotect(fd, m.addr, page_size(), 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not resumed");
}

/* D8: several threads on one page; one resolve wakes them all */
RWP_TEST(sync_fault_several_threads_one_resolve)
{
	int fd, i;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc[4];
	struct uffd_msg msg;

	protect_all(fd, &m);
	for (i = 0; i < 4; i++)
		accessor_start(&acc[i], m.addr + 8 * i, 0, 0);
	for (i = 0; i < 4; i++) {
		CHECK(uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1, "message %d missing", i);
		CHECK(msg.arg.pagefault.address == (unsigned long)m.addr, "address");
	}
	ok(uffd_rwprotect(fd, m.addr, page_size(), 0), "one resolve");
	for (i = 0; i < 4; i++)
		CHECK(accessor_wait(&acc[i], RWP_WAIT_MS), "thread %d not woken", i);
}

/* D13: a pending fault makes a non-blocking uffd readable */
RWP_TEST(poll_reports_pending_fault)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct pollfd pfd = { .events = POLLIN };
	struct accessor acc;

	pfd.fd = fd;
	protect_all(fd, &m);
	CHECK(poll(&pfd, 1, 0) == 0, "readable before any fault (revents 0x%x)", pfd.revents);
	accessor_start(&acc, m.addr, 0, 0);
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && (pfd.revents & POLLIN),
	      "not readable with a fault pending (revents 0x%x)", pfd.revents);
	read_faults_until_resolved(fd, m.addr, page_size());
}

static sigjmp_buf sigbus_env;
static siginfo_t sigbus_info;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sigbus_info = *si;
	siglongjmp(sigbus_env, 1);
}

/*
 * D12: with UFFD_FEATURE_SIGBUS a user access to a protected page is a SIGBUS
 * at its address (BUS_ADRERR), with no message and the page still protected;
 * a kernel access (write() from it) is EFAULT
 */
RWP_TEST(sync_fault_sigbus_feature)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	int fd, pfd[2];
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_SIGBUS, UFFDIO_REGISTER_MODE_RWP);
	char *target = m.addr + page_size() + 0x123;
	ssize_t w;

	protect_all(fd, &m);
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction");
	if (!sigsetjmp(sigbus_env, 1)) {
		(void)*(volatile char *)target;
		FAIL("the read of a protected page with UFFD_FEATURE_SIGBUS returned");
	}
	signal(SIGBUS, SIG_DFL);
	CHECK(sigbus_info.si_code == BUS_ADRERR, "si_code %d, want BUS_ADRERR (%d)",
	      sigbus_info.si_code, BUS_ADRERR);
	CHECK(sigbus_info.si_addr == target, "si_addr %p, want %p", sigbus_info.si_addr,
	      (void *)target);
	want_quiet(fd, "a SIGBUS access");
	CHECK(page_uffd_bit(target), "the page lost its protection to the SIGBUS access");
	CHECK(pipe(pfd) == 0, "pipe");
	w = write(pfd[1], target, 16);
	CHECK(w == -1 && errno == EFAULT, "write() from the protected page returned %zd (%s), "
	      "want EFAULT", w, w < 0 ? strerror(errno) : "no error");
	want_quiet(fd, "a kernel access");
	CHECK(page_uffd_bit(target), "the kernel access resolved the page");
}

/* ---- E. async ---- */

/* E1, E3, E4 */
RWP_TEST_MEM(async_resolves_without_message)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	CHECK(m.addr[m.unit + 5] == mem_unit_pattern(1), "async read");
	m.addr[m.unit + 6] = 'Q';
	CHECK(m.addr[m.unit + 6] == 'Q', "async write lost");
	want_quiet(fd, "async mode");
	CHECK(!page_uffd_bit(m.addr + m.unit), "the touched unit is still protected");
	CHECK(page_uffd_bit(m.addr), "an untouched unit lost its protection");
}

/* E2: the unit of async resolution is one page, for anon and for file (shmem) mappings */
RWP_TEST(async_resolves_one_page_only)
{
	static const enum mem_type types[] = { MEM_ANON, MEM_SHMEM, MEM_SHMEM_PRIVATE };
	const size_t n = 16, hit = 7;

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		int fd;
		struct mem m = mem_rwp(types[t], n, &fd, UFFD_FEATURE_RWP_ASYNC,
				       UFFDIO_REGISTER_MODE_RWP);

		protect_all(fd, &m);
		CHECK(m.addr[hit * page_size() + 3] == mem_unit_pattern(hit), "%s: async read",
		      mem_names[types[t]]);
		want_quiet(fd, "an async access");
		for (size_t i = 0; i < n; i++)
			CHECK(page_uffd_bit(m.addr + i * page_size()) == (i != hit),
			      "%s: page %zu has uffd bit %d after an access to page %zu only",
			      mem_names[types[t]], i, page_uffd_bit(m.addr + i * page_size()), hit);
		munmap(m.addr, m.len);
		close(fd);
	}
}

/* ---- F. UFFDIO_SET_MODE ---- */

/* F1 */
RWP_TEST(set_mode_validation)
{
	int fd, plain;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, UFFD_FEATURE_RWP_ASYNC), EINVAL,
		   "enable and disable the same bit");
	refused(uffd_set_mode(fd, UFFD_FEATURE_RWP, 0), EINVAL, "enable a non-toggleable bit");
	refused(uffd_set_mode(fd, UFFD_FEATURE_WP_ASYNC, 0), EINVAL, "enable WP_ASYNC");
	plain = uffd_new(0);
	refused(uffd_set_mode(plain, UFFD_FEATURE_RWP_ASYNC, 0), EINVAL,
		   "enable RWP_ASYNC on a context without RWP");
}

/* SET_MODE, then fdinfo must show the features (the API line's second field). */
static void set_mode_shows(int fd, __u64 enable, __u64 disable, const char *features)
{
	char line[128], want[64];

	ok(uffd_set_mode(fd, enable, disable), enable ? "enable async" : "disable async");
	fdinfo_api(fd, line, sizeof(line));
	snprintf(want, sizeof(want), "aa:%s:", features);
	CHECK(!strncmp(line, want, strlen(want)), "after SET_MODE(%llu, %llu) fdinfo says %s, "
	      "want %s...", (unsigned long long)enable, (unsigned long long)disable, line, want);
}

/* F4: each SET_MODE is idempotent, and fdinfo shows the mode */
RWP_TEST(set_mode_idempotent)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	set_mode_shows(fd, UFFD_FEATURE_RWP_ASYNC, 0, "80060000");
	set_mode_shows(fd, UFFD_FEATURE_RWP_ASYNC, 0, "80060000");
	protect_all(fd, &m);
	CHECK(m.addr[1] == mem_unit_pattern(0), "async read");
	want_quiet(fd, "async after SET_MODE");
	set_mode_shows(fd, 0, UFFD_FEATURE_RWP_ASYNC, "80020000");
	set_mode_shows(fd, 0, UFFD_FEATURE_RWP_ASYNC, "80020000");
	block_reader(fd, &acc, m.addr + page_size());
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not resumed");
}

/* F3: an empty request changes nothing */
RWP_TEST(set_mode_empty_request)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	ok(uffd_set_mode(fd, 0, 0), "SET_MODE(0, 0)");
	protect_all(fd, &m);
	read_faults_until_resolved(fd, m.addr, m.len);
}

/* F5, F6: switching to async releases a blocked fault; back to sync blocks again */
RWP_TEST(set_mode_async_releases_blocked_fault)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	struct accessor unread;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	protect_all(fd, &m);
	block_reader(fd, &acc, m.addr + page_size());
	/* A second waiter whose message stays unread: poll shows it queued. */
	accessor_start(&unread, m.addr + 3 * page_size(), 0, 0);
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && (pfd.revents & POLLIN),
	      "the second reader's fault was not queued (revents 0x%x)", pfd.revents);
	ok(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), "enable async");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "enabling async did not release the fault");
	CHECK(acc.value == mem_unit_pattern(1), "read 0x%x", acc.value);
	CHECK(accessor_wait(&unread, RWP_WAIT_MS),
	      "enabling async did not release the waiter whose message was unread");
	CHECK(unread.value == mem_unit_pattern(3), "read 0x%x", unread.value);
	want_quiet(fd, "the unread message of a released waiter");
	CHECK(!page_uffd_bit(m.addr + page_size()) && !page_uffd_bit(m.addr + 3 * page_size()),
	      "a released waiter's page is still protected");
	ok(uffd_rwprotect(fd, m.addr + page_size(), page_size(), 0),
	   "resolve the already-read fault after the release");
	ok(uffd_set_mode(fd, 0, UFFD_FEATURE_RWP_ASYNC), "back to sync");
	block_reader(fd, &acc, m.addr + 2 * page_size());
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not resumed");
}

/* ---- G. PAGEMAP_SCAN ---- */

/* G2: the accessed set is exactly what was touched since protection */
RWP_TEST_MEM(scan_accessed_finds_touched_units)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);
	struct page_region vec[8];
	long n;

	protect_all(fd, &m);
	(void)*(volatile char *)(m.addr + 2 * m.unit);
	n = scan_pages(m.addr, m.len, PAGE_IS_ACCESSED, 0, vec, 8);
	CHECK(n == 1, "scan found %ld regions, want 1", n);
	CHECK(vec[0].start == (unsigned long)m.addr + 2 * m.unit &&
	      vec[0].end == (unsigned long)m.addr + 3 * m.unit,
	      "accessed region [0x%llx, 0x%llx), want unit 2", (unsigned long long)vec[0].start,
	      (unsigned long long)vec[0].end);
}

/* G1: PAGE_IS_ACCESSED is a scan category; the next bit is not */
RWP_TEST(scan_accessed_is_a_valid_category)
{
	char *p = map_anon(page_size());
	struct page_region vec[2];
	long n;

	require_rwp();
	p[0] = 1;
	n = scan_pages(p, page_size(), PAGE_IS_ACCESSED, 0, vec, 2);
	CHECK(n >= 0, "PAGEMAP_SCAN with PAGE_IS_ACCESSED refused");
	n = scan_pages(p, page_size(), PAGE_IS_ACCESSED << 1, 0, vec, 2);
	CHECK(n == -1 && errno == EINVAL, "PAGEMAP_SCAN with category 0x%x returned %ld, want EINVAL",
	      PAGE_IS_ACCESSED << 1, n);
}

/* G3: pages outside RWP VMAs are never reported accessed */
RWP_TEST(scan_accessed_only_in_rwp_vmas)
{
	char *p = map_anon(4 * page_size());
	struct page_region vec[4];
	long n;
	int fd;

	require_rwp();
	memset(p, 1, 4 * page_size());
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, 2 * page_size(), UFFDIO_REGISTER_MODE_MISSING, NULL),
		  "REGISTER MISSING");
	n = scan_pages(p, 4 * page_size(), PAGE_IS_ACCESSED, 0, vec, 4);
	CHECK(n == 0, "%ld accessed regions outside RWP VMAs (first [0x%llx, 0x%llx))", n,
	      n > 0 ? (unsigned long long)vec[0].start : 0ULL,
	      n > 0 ? (unsigned long long)vec[0].end : 0ULL);
}

/* ---- H. teardown ---- */

/* H1 */
RWP_TEST_MEM(unregister_restores_access)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	protect_all(fd, &m);
	ok(uffd_unregister(fd, m.addr, m.len), "UNREGISTER");
	CHECK(!page_uffd_bit(m.addr), "uffd bit left after unregister");
	accessor_start(&acc, m.addr + m.unit, 0, 0);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "access blocked after unregister");
	CHECK(acc.value == mem_unit_pattern(1), "read 0x%x", acc.value);
	want_quiet(fd, "after unregister");
}

/* H6: closing the uffd resolves everything and releases blocked threads */
RWP_TEST_MEM(close_restores_access_and_wakes)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;
	struct uffd_msg msg;

	protect_all(fd, &m);
	accessor_start(&acc, m.addr, 0, 0);
	CHECK(uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1, "no fault message");
	close(fd);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "blocked thread not released by close");
	CHECK(acc.value == mem_unit_pattern(0), "read 0x%x", acc.value);
	CHECK(!page_uffd_bit(m.addr + m.unit), "uffd bit survived the uffd");
}

/* H2: unregistering part of a range leaves the rest protected */
RWP_TEST(partial_unregister_keeps_the_rest)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	size_t ps = page_size();

	protect_all(fd, &m);
	ok(uffd_unregister(fd, m.addr + ps, ps), "UNREGISTER page 1");
	CHECK(!page_uffd_bit(m.addr + ps), "page 1 still protected");
	CHECK(page_uffd_bit(m.addr) && page_uffd_bit(m.addr + 2 * ps), "neighbours unprotected");
	read_faults_until_resolved(fd, m.addr + 2 * ps, ps);
}

/* H4: unregister validation, and a range of another uffd */
RWP_TEST(unregister_errors)
{
	int fd, other;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	other = uffd_new(UFFD_FEATURE_RWP);
	refused(uffd_unregister(other, m.addr, m.len), EINVAL, "UNREGISTER via another uffd");
	refused(uffd_unregister(fd, m.addr + 1, page_size()), EINVAL, "unaligned start");
	refused(uffd_unregister(fd, m.addr, 0), EINVAL, "len 0");
	protect_all(fd, &m);
	CHECK(page_uffd_bit(m.addr), "the failed unregisters changed the range");
}

/* H3: unregistering releases threads blocked on an RWP fault */
RWP_TEST(unregister_wakes_blocked_thread)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;
	int woke;

	protect_all(fd, &m);
	block_reader(fd, &acc, m.addr);
	ok(uffd_unregister(fd, m.addr, m.len), "UNREGISTER");
	woke = accessor_wait(&acc, RWP_WAIT_MS);
	if (!woke) {
		uffd_wake(fd, m.addr, m.len);
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not even UFFDIO_WAKE released the thread");
	}
	CHECK(acc.value == mem_unit_pattern(0), "the released reader read 0x%x", acc.value);
	FINDING("H3: UFFDIO_UNREGISTER of an RWP-only range resolves the PTEs but wakes "
		"no waiter (mm/userfaultfd.c wakes only MISSING ranges)",
		woke, "the thread stayed blocked after UNREGISTER until UFFDIO_WAKE");
}

/* I6: mprotect round trips keep the protection of protected pages only */
RWP_TEST_MEM(mprotect_round_trip_keeps_protection)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	ok(uffd_rwprotect(fd, m.addr + m.unit, m.unit, 0), "resolve unit 1");
	CHECK(mprotect(m.addr, m.len, PROT_READ) == 0, "mprotect(PROT_READ)");
	CHECK(mprotect(m.addr, m.len, PROT_READ | PROT_WRITE) == 0, "mprotect(RW)");
	CHECK(page_uffd_bit(m.addr), "unit 0 lost its protection across mprotect");
	CHECK(!page_uffd_bit(m.addr + m.unit), "unit 1 became protected across mprotect");
	m.addr[m.unit + 1] = 'W';
	read_faults_until_resolved(fd, m.addr, m.unit);
}

/* I10: MADV_DONTNEED drops the protection of anon pages with the pages */
RWP_TEST(madv_dontneed_drops_protection)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	protect_all(fd, &m);
	CHECK(madvise(m.addr, page_size(), MADV_DONTNEED) == 0, "MADV_DONTNEED");
	CHECK(!page_uffd_bit(m.addr), "uffd bit on a zapped page");
	CHECK(m.addr[0] == 0, "a dropped anon page reads 0x%x, want a zero page", m.addr[0]);
	want_quiet(fd, "access after MADV_DONTNEED");
	CHECK(page_uffd_bit(m.addr + page_size()), "the next page lost its protection");
}

static sigjmp_buf segv_jump;

static void on_segv(int sig)
{
	siglongjmp(segv_jump, sig);
}

/* I7: an RWP VMA made PROT_NONE faults as SIGSEGV, not to the handler; RW re-arms RWP */
RWP_TEST(prot_none_over_rwp_is_sigsegv_then_rwp_again)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct sigaction sa = { .sa_handler = on_segv };

	protect_all(fd, &m);
	CHECK(mprotect(m.addr, m.len, PROT_NONE) == 0, "mprotect(PROT_NONE)");
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction");
	if (sigsetjmp(segv_jump, 1) == 0) {
		(void)*(volatile char *)m.addr;
		FAIL("a read of the PROT_NONE RWP VMA succeeded");
	}
	want_quiet(fd, "access to PROT_NONE");
	CHECK(mprotect(m.addr, m.len, PROT_READ | PROT_WRITE) == 0, "mprotect(RW)");
	read_faults_until_resolved(fd, m.addr, page_size());
}

/* ---- I. fork ---- */

/* I1: without EVENT_FORK the child's copy is not registered and not protected */
RWP_TEST(fork_without_event_child_unprotected)
{
	int fd, status;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	pid_t pid;

	protect_all(fd, &m);
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

RWP_MAIN
