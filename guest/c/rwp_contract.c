// SPDX-License-Identifier: GPL-2.0
/*
 * The RWP contract (docs/contract.md) areas A-H, in the order of that file:
 * negotiation (A), registration (B), RWPROTECT (C), sync faults and who is
 * woken (D), async resolution (E), SET_MODE (F), PAGEMAP_SCAN, pagemap and
 * smaps (G) and teardown (H), one test per behaviour and, where it applies,
 * per memory type. Each test names its contract ids in the comment right
 * above it.
 */
#include "rwp_mem.h"
#include <linux/capability.h>
#include <sys/shm.h>
#include <sys/uio.h>

/* The raw UFFDIO_API, keeping the struct the kernel wrote back. */
static int api_raw(int fd, struct uffdio_api *api, __u64 features)
{
	api->api = UFFD_API;
	api->features = features;
	api->ioctls = 0;
	return ioctl(fd, UFFDIO_API, api) ? -errno : 0;
}

#define SHMEM_THP "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static int zeropage(int fd, void *addr, size_t len)
{
	struct uffdio_zeropage zp = { .range = { .start = (unsigned long)addr, .len = len } };

	return ioctl_err(fd, UFFDIO_ZEROPAGE, &zp);
}

static int copy_page_in(int fd, void *dst, void *src, size_t len)
{
	struct uffdio_copy c = { .dst = (unsigned long)dst, .src = (unsigned long)src, .len = len };

	return ioctl_err(fd, UFFDIO_COPY, &c);
}

/* Does the VmFlags line of the VMA holding addr list flag? */
static int has_vmflag(void *addr, const char *flag)
{
	char buf[512], flags[520], want[8];

	CHECK(proc_field("/proc/self/smaps", addr, "VmFlags", buf, sizeof(buf)),
	      "no VMA with VmFlags at %p", addr);
	snprintf(flags, sizeof(flags), " %s ", buf);
	snprintf(want, sizeof(want), " %s ", flag);
	return strstr(flags, want) != NULL;
}

/* The VMA [lo, hi) that holds addr, from /proc/self/maps; 0 if none. */
static int vma_bounds(void *addr, unsigned long *lo, unsigned long *hi)
{
	unsigned long a = (unsigned long)addr;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	CHECK(f != NULL, "open maps");
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%lx-%lx ", lo, hi) == 2 && *lo <= a && a < *hi;
	fclose(f);
	return found;
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

/* A2, A3: fdinfo shows the negotiated features with the INITIALIZED bit */
RWP_TEST(api_features_in_fdinfo)
{
	char line[128];
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	fdinfo_api(fd, line, sizeof(line));
	CHECK(!strcmp(line, "aa:80020000:80000000000007ff"), "RWP alone: API line '%s'", line);
	close(fd);
	fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_RWP_ASYNC);
	fdinfo_api(fd, line, sizeof(line));
	CHECK(!strcmp(line, "aa:80060000:80000000000007ff"), "RWP|RWP_ASYNC: API line '%s'", line);
}

/* A6: a wrong API number is EINVAL and the struct comes back zeroed; the fd stays usable */
RWP_TEST(api_wrong_number_refused)
{
	struct uffdio_api api = { .api = 0xAB, .features = UFFD_FEATURE_RWP, .ioctls = 7 };
	int fd = uffd_open();

	require_rwp();
	refused(ioctl_err(fd, UFFDIO_API, &api), EINVAL, "UFFDIO_API api=0xAB");
	CHECK(api.api == 0 && api.features == 0 && api.ioctls == 0,
	      "struct not zeroed: api 0x%llx features 0x%llx ioctls 0x%llx",
	      (unsigned long long)api.api, (unsigned long long)api.features,
	      (unsigned long long)api.ioctls);
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "UFFDIO_API after the refused one");
}

/* A10, A11: unknown or mis-sized commands are EINVAL, not ENOTTY; a bad pointer is EFAULT */
RWP_TEST(api_unknown_ioctl_and_bad_pointer)
{
	int fd;
	struct uffdio_range r = { 0 };
	char big[64] = { 0 };

	require_rwp();
	fd = uffd_open();
	refused(ioctl_err(fd, UFFDIO_API, (void *)1), EFAULT, "UFFDIO_API with pointer 1");
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "UFFDIO_API");
	refused(ioctl_err(fd, _IOWR(UFFDIO, 0x0B, struct uffdio_range), &r), EINVAL,
		"unknown command 0x0B");
	refused(ioctl_err(fd, _IOWR(UFFDIO, _UFFDIO_RWPROTECT, char[40]), big), EINVAL,
		"RWPROTECT encoded with size 40");
}

/* API with these features on fd; 0 or -errno, and whether the struct came back all zero. */
static int api_zeroed(int fd, __u64 features, int *zeroed)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int r = ioctl_err(fd, UFFDIO_API, &api);

	*zeroed = !api.api && !api.features && !api.ioctls;
	return r;
}

static void no_op(void *arg)
{
	(void)arg;
}

static void api_fork_without_ptrace(void *arg)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct cap[2];
	const __u32 bit = 1U << (CAP_SYS_PTRACE % 32);
	int fd, zeroed, r;

	(void)arg;
	CHECK(syscall(SYS_capget, &hdr, cap) == 0, "capget");
	cap[CAP_SYS_PTRACE / 32].effective &= ~bit;
	cap[CAP_SYS_PTRACE / 32].permitted &= ~bit;
	cap[CAP_SYS_PTRACE / 32].inheritable &= ~bit;
	CHECK(syscall(SYS_capset, &hdr, cap) == 0, "capset without CAP_SYS_PTRACE");
	CHECK(syscall(SYS_capget, &hdr, cap) == 0 && !(cap[CAP_SYS_PTRACE / 32].effective & bit),
	      "CAP_SYS_PTRACE is still effective after capset");
	/* USER_MODE_ONLY needs no privilege, so the fd exists without touching the sysctl. */
	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	CHECK(fd >= 0, "userfaultfd(UFFD_USER_MODE_ONLY) without CAP_SYS_PTRACE");
	r = api_zeroed(fd, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_RWP, &zeroed);
	refused(r, EPERM, "API(EVENT_FORK|RWP) without CAP_SYS_PTRACE");
	CHECK(zeroed, "the refused API(EVENT_FORK|RWP) left the struct non-zero");
	/* RWP_ASYNC without RWP alone is EINVAL; with EVENT_FORK the EPERM must win. */
	r = api_zeroed(fd, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_RWP_ASYNC, &zeroed);
	refused(r, EPERM, "API(EVENT_FORK|RWP_ASYNC) without CAP_SYS_PTRACE (EPERM must come first)");
	CHECK(zeroed, "the refused API(EVENT_FORK|RWP_ASYNC) left the struct non-zero");
	r = api_zeroed(fd, UFFD_FEATURE_RWP_ASYNC, &zeroed);
	refused(r, EINVAL, "API(RWP_ASYNC) alone on the same fd");
	/* Both refusals must have left the ctx uninitialized. */
	ok(uffd_api(fd, UFFD_FEATURE_RWP, NULL, NULL), "API(RWP) after the refusals");
	close(fd);
}

/* A8: without CAP_SYS_PTRACE, EVENT_FORK is EPERM before the RWP_ASYNC-needs-RWP EINVAL */
RWP_TEST(api_event_fork_needs_ptrace_first)
{
	int fd, zeroed;

	require_rwp();
	/* With the capability the same requests succeed or fail otherwise: the drop is what matters. */
	fd = uffd_open();
	refused(api_zeroed(fd, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_RWP_ASYNC, &zeroed), EINVAL,
		"privileged API(EVENT_FORK|RWP_ASYNC)");
	close(fd);
	fd = uffd_open();
	ok(uffd_api(fd, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_RWP, NULL, NULL),
	   "privileged API(EVENT_FORK|RWP)");
	close(fd);
	/* A child drops the capability so this process keeps it for the tests after. */
	run_then_restore(api_fork_without_ptrace, NULL, no_op, NULL);
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

	arm(fd, m.addr, m.len);
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
	arm(fd1, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
	CHECK(mprotect(m.addr, m.len, PROT_NONE) == 0, "mprotect(PROT_NONE)");
	refused(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		   "re-REGISTER RWP of the PROT_NONE VMA");
	ok(uffd_unregister(fd, m.addr, m.len), "UNREGISTER of the PROT_NONE VMA");
	CHECK(mprotect(m.addr, m.len, PROT_READ | PROT_WRITE) == 0, "mprotect(RW)");
	CHECK(m.addr[page_size() + 2] == mem_unit_pattern(1), "contents after unregister");
	want_quiet(fd, "access after unregister");
}

/* B5: MISSING|RWP on anon and MINOR|RWP on shmem are accepted; MINOR|RWP on anon is not */
RWP_TEST(register_missing_or_minor_with_rwp)
{
	__u64 ioctls = 0;
	int fd;
	char *a, *s;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_MINOR_SHMEM);
	a = map_anon(NUNITS * page_size());
	ok(uffd_register(fd, a, NUNITS * page_size(),
			 UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP, &ioctls),
	   "REG(anon, MISSING|RWP)");
	CHECK(ioctls == 0x33C, "anon MISSING|RWP ioctls 0x%llx, want 0x33C",
	      (unsigned long long)ioctls);
	CHECK(has_vmflag(a, "um") && has_vmflag(a, "ur"), "VmFlags lack 'um ur'");

	s = mem_map(MEM_SHMEM, NUNITS).addr;
	ok(uffd_register(fd, s, NUNITS * page_size(),
			 UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_RWP, &ioctls),
	   "REG(shmem, MINOR|RWP)");
	CHECK(ioctls == 0x3BC, "shmem MINOR|RWP ioctls 0x%llx, want 0x3BC",
	      (unsigned long long)ioctls);
	CHECK(has_vmflag(s, "ui") && has_vmflag(s, "ur"), "VmFlags lack 'ur ui'");

	a = map_anon(NUNITS * page_size());
	refused(uffd_register(fd, a, NUNITS * page_size(),
			      UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_RWP, NULL),
		EINVAL, "REG(anon, MINOR|RWP)");
	CHECK(!has_vmflag(a, "ur"), "the refused registration changed the VMA");
}

/* B9: the vdso and a MAP_DROPPABLE mapping cannot be registered */
RWP_TEST(register_special_mappings_refused)
{
	unsigned long lo = 0, hi = 0;
	char line[512];
	FILE *f;
	char *d;
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL, "open maps");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]"))
			sscanf(line, "%lx-%lx", &lo, &hi);
	fclose(f);
	CHECK(lo && hi > lo, "no [vdso] in /proc/self/maps");
	refused(uffd_register(fd, (void *)lo, hi - lo, UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		"REG over [vdso]");
	d = mmap(NULL, NUNITS * page_size(), PROT_READ | PROT_WRITE,
		 0x08 /* MAP_DROPPABLE */ | MAP_ANONYMOUS, -1, 0);
	CHECK(d != MAP_FAILED, "mmap MAP_DROPPABLE");
	refused(uffd_register(fd, d, NUNITS * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL,
		"REG over MAP_DROPPABLE");
}

/* B23: once the process that made the uffd has exited, REGISTER is ENOMEM */
RWP_TEST(register_after_creator_exits)
{
	int sv[2], fd, status;
	char *p;
	pid_t pid;

	require_rwp();
	p = map_anon(NUNITS * page_size());
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		send_fd(sv[1], uffd_new(UFFD_FEATURE_RWP));
		_exit(RWP_EXIT_PASS);
	}
	fd = recv_fd(sv[0]);
	CHECK(wait_pid_ms(pid, &status, RWP_WAIT_MS) && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "creator status 0x%x", status);
	refused(uffd_register(fd, p, NUNITS * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), ENOMEM,
		"REG through a uffd whose mm has exited");
	CHECK(!has_vmflag(p, "ur"), "the caller's VMA was registered");
}

/* B13: a shared mapping without VM_MAYWRITE is EPERM; a private one of the same fd is accepted */
RWP_TEST(register_needs_maywrite)
{
	char path[64], *p;
	int fd, mfd, ro;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	mfd = memfd_create("b13", MFD_CLOEXEC);
	CHECK(mfd >= 0 && ftruncate(mfd, NUNITS * page_size()) == 0, "memfd");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(ro >= 0, "reopen the memfd read-only");
	p = mmap(NULL, NUNITS * page_size(), PROT_READ, MAP_SHARED, ro, 0);
	CHECK(p != MAP_FAILED, "mmap read-only shared");
	refused(uffd_register(fd, p, NUNITS * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), EPERM,
		"REG of a MAP_SHARED mapping of an O_RDONLY fd");
	p = mmap(NULL, NUNITS * page_size(), PROT_READ, MAP_PRIVATE, ro, 0);
	CHECK(p != MAP_FAILED, "mmap read-only private");
	ok(uffd_register(fd, p, NUNITS * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL),
	   "REG of a MAP_PRIVATE mapping of the same fd");
}

/* B15, B16: holes in the range are skipped; a partial range splits the VMA */
RWP_TEST(register_skips_holes_and_splits)
{
	size_t ps = page_size();
	char *p;
	unsigned long lo, hi;
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	p = map_anon(8 * ps);
	CHECK(munmap(p + 3 * ps, 2 * ps) == 0, "munmap the gap");
	ok(uffd_register(fd, p, 8 * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REG across the hole");
	CHECK(has_vmflag(p, "ur") && has_vmflag(p + 5 * ps, "ur"), "one side is not registered");
	CHECK(!vma_bounds(p + 3 * ps, &lo, &hi), "the gap got mapped: %lx-%lx", lo, hi);

	p = map_anon(8 * ps);
	ok(uffd_register(fd, p + 2 * ps, 3 * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REG the middle");
	/* The outer ends may have merged with neighbouring anon VMAs: check only the cuts. */
	CHECK(vma_bounds(p, &lo, &hi) && lo <= (unsigned long)p && hi == (unsigned long)p + 2 * ps,
	      "head VMA %lx-%lx", lo, hi);
	CHECK(vma_bounds(p + 2 * ps, &lo, &hi) && lo == (unsigned long)p + 2 * ps &&
	      hi == (unsigned long)p + 5 * ps, "middle VMA %lx-%lx", lo, hi);
	CHECK(vma_bounds(p + 5 * ps, &lo, &hi) && lo == (unsigned long)p + 5 * ps &&
	      hi >= (unsigned long)p + 8 * ps, "tail VMA %lx-%lx", lo, hi);
	CHECK(!has_vmflag(p, "ur") && has_vmflag(p + 2 * ps, "ur") && !has_vmflag(p + 5 * ps, "ur"),
	      "only the middle VMA may be 'ur'");
}

/*
 * B21: re-registering with a subset of the current modes that keeps RWP changes
 * nothing (long-standing uffd behaviour): MISSING stays, and the ioctls are
 * those of MISSING|RWP, which are RWP's; dropping MISSING takes an UNREGISTER
 */
RWP_TEST(reregister_subset_keeps_missing)
{
	__u64 ioctls = 0, both = 0;
	struct accessor acc;
	size_t ps = page_size();
	int fd;
	char *p = map_anon(NUNITS * ps);

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, NUNITS * ps, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP,
			 &both), "REG(MISSING|RWP)");
	ok(uffd_register(fd, p, NUNITS * ps, UFFDIO_REGISTER_MODE_RWP, &ioctls),
	   "REG(RWP) over MISSING|RWP");
	CHECK(ioctls == 0x33C && both == 0x33C, "ioctls 0x%llx after REG(RWP), 0x%llx after "
	      "REG(MISSING|RWP), want 0x33C both", (unsigned long long)ioctls,
	      (unsigned long long)both);
	CHECK(has_vmflag(p, "um") && has_vmflag(p, "ur"), "VmFlags lost um or ur");
	CHECK(madvise(p + ps, ps, MADV_DONTNEED) == 0, "DONTNEED page 1");
	accessor_start(&acc, p + ps, 0, 0);
	want_fault(fd, 0, (unsigned long)p + ps);
	ok(zeropage(fd, p + ps, ps), "ZEROPAGE to release the reader");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader of the unpopulated page did not finish");
	refused(uffd_register(fd, p, NUNITS * ps, UFFDIO_REGISTER_MODE_MISSING, NULL), EBUSY,
		"REG(MISSING) dropping RWP");
	ok(uffd_unregister(fd, p, NUNITS * ps), "UNREGISTER");
	ok(uffd_register(fd, p, NUNITS * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REG(RWP) afresh");
	CHECK(!has_vmflag(p, "um") && has_vmflag(p, "ur"), "after UNREGISTER and REG(RWP) VmFlags "
	      "are not ur alone");
	CHECK(madvise(p + 2 * ps, ps, MADV_DONTNEED) == 0, "DONTNEED page 2");
	CHECK(p[2 * ps] == 0, "the dropped page 2 reads 0x%x", p[2 * ps]);
	want_quiet(fd, "first touch of an unpopulated page without MISSING");
}

/* B22: registering arms nothing: no faults, bit 57 clear, every present page ACCESSED */
RWP_TEST(register_does_not_arm)
{
	struct page_region r[4];
	int fd;
	char *p = mem_rwp(MEM_ANON, 8, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;
	long n;

	want_bits(p, 8, PM_UFFD_BIT, 0, "after REG");
	want_bits(p, 8, PM_PRESENT_BIT, 1, "after REG");
	n = scan_pages(p, 8 * page_size(), PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(n == 1 && r[0].start == (unsigned long)p && r[0].end == (unsigned long)p + 8 * page_size(),
	      "scan: %ld regions, first %llx-%llx", n, (unsigned long long)r[0].start,
	      (unsigned long long)r[0].end);
	for (int i = 0; i < 8; i++)
		CHECK(p[i * page_size() + 1] == mem_unit_pattern(i), "page %d data", i);
	want_quiet(fd, "accesses after REG");
}

/* Does a read of page 0 of a fresh mapping of the file map any of its n - 1 neighbours? */
static int control_faults_around(int mfd, size_t n)
{
	uint64_t e[16];
	char *p = mmap(NULL, n * page_size(), PROT_READ, MAP_SHARED, mfd, 0);
	int around = 0;

	CHECK(p != MAP_FAILED && n <= 16, "control mmap");
	CHECK(p[0] == 'x', "read page 0 of the control");
	pagemap_range(p, n, e);
	for (size_t i = 1; i < n; i++)
		around |= (int)(e[i] >> PM_PRESENT_BIT & 1);
	munmap(p, n * page_size());
	return around;
}

/* B24: a read in an RWP shmem VMA maps only the faulting page (no fault-around) */
RWP_TEST(no_fault_around_in_rwp_shmem)
{
	size_t ps = page_size(), n = 16;
	char *w, *p;
	int fd, mfd;
	uint64_t e[16];

	require_rwp();
	mfd = memfd_create("b24", MFD_CLOEXEC);
	CHECK(mfd >= 0 && ftruncate(mfd, (off_t)(n * ps)) == 0, "memfd");
	w = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CHECK(w != MAP_FAILED, "mmap");
	memset(w, 'x', n * ps);
	/*
	 * The control: without RWP the same read maps its neighbours too. Fault-
	 * around skips a folio that is locked at that moment (reclaim, compaction
	 * on a loaded guest), so a fresh mapping is tried until one shows it.
	 */
	CHECK(WAIT_UNTIL(control_faults_around(mfd, n), RWP_WAIT_MS),
	      "precondition: no fault-around without RWP either in %d ms of fresh mappings",
	      RWP_WAIT_MS);
	p = mmap(NULL, n * ps, PROT_READ, MAP_SHARED, mfd, 0);
	CHECK(p != MAP_FAILED, "second mmap");
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, n * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	CHECK(p[0] == 'x', "read page 0");
	pagemap_range(p, n, e);
	CHECK(e[0] >> PM_PRESENT_BIT & 1, "page 0 not present after the read");
	for (size_t i = 1; i < n; i++)
		CHECK(!(e[i] >> PM_PRESENT_BIT & 1), "page %zu was faulted around (0x%llx)", i,
		      (unsigned long long)e[i]);
}

/* A SysV segment of len bytes attached here; removed at once so nothing outlives the test. */
static char *sysv_attach(size_t len, int flags)
{
	int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600 | flags);
	char *p;

	if (id < 0 && errno == ENOSYS)
		SKIP("the kernel has no SysV IPC (CONFIG_SYSVIPC)");
	CHECK(id >= 0, "shmget(%zu, flags 0x%x)%s", len, flags,
	      (flags & SHM_HUGETLB) ? ": is vm.nr_hugepages set?" : "");
	p = shmat(id, NULL, 0);
	CHECK(p != (void *)-1, "shmat");
	CHECK(shmctl(id, IPC_RMID, NULL) == 0, "shmctl(IPC_RMID)");
	memset(p, 'a', len);
	return p;
}

/* The same ctx takes memfd memory of type t: a refusal below is about the SysV VMA. */
static void register_control(int fd, enum mem_type t)
{
	struct mem ctl = mem_map(t, 1);

	ok(uffd_register(fd, ctl.addr, ctl.len, UFFDIO_REGISTER_MODE_RWP, NULL),
	   t == MEM_HUGETLB ? "control REG(RWP) on memfd hugetlb" : "control REG(RWP) on memfd shmem");
	ok(uffd_unregister(fd, ctl.addr, ctl.len), "control UNREGISTER");
	munmap(ctl.addr, ctl.len);
	close(ctl.fd);
}

/*
 * B10: plain SysV SHM has never been registrable (its VMAs carry shm_vm_ops,
 * not shmem's): RWP, MISSING and MINOR are refused
 */
RWP_TEST(register_sysv_shm_refused)
{
	size_t len = 4 * page_size();
	int fd;
	char *p;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_MISSING_SHMEM |
		      (uffd_kernel_features() & UFFD_FEATURE_MINOR_SHMEM));
	register_control(fd, MEM_SHMEM);
	p = sysv_attach(len, 0);
	refused(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_RWP, NULL), EINVAL, "REG(RWP) on SysV SHM");
	refused(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_MISSING, NULL), EINVAL,
		"REG(MISSING) on SysV SHM");
	if (uffd_kernel_features() & UFFD_FEATURE_MINOR_SHMEM)
		refused(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_MINOR, NULL), EINVAL,
			"REG(MINOR) on SysV SHM");
	CHECK(!has_vmflag(p, "um") && !has_vmflag(p, "ur"), "a refused REG left VmFlags um or ur");
	CHECK(shmdt(p) == 0, "shmdt");
}

/*
 * B10: SHM_HUGETLB segments are hugetlbfs VMAs, registrable for MISSING before
 * the vm_uffd_ops conversion, which the rst still promises
 */
RWP_TEST(register_sysv_shm_hugetlb)
{
	int fd, missing, rwp;
	char *p;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP | UFFD_FEATURE_MISSING_HUGETLBFS);
	register_control(fd, MEM_HUGETLB);
	p = sysv_attach(HPAGE_SIZE, SHM_HUGETLB);
	rwp = uffd_register(fd, p, HPAGE_SIZE, UFFDIO_REGISTER_MODE_RWP, NULL);
	missing = uffd_register(fd, p, HPAGE_SIZE, UFFDIO_REGISTER_MODE_MISSING, NULL);
	rwp_diag("SHM_HUGETLB: REG(RWP) %s, REG(MISSING) %s", rwp ? strerror(-rwp) : "0",
		 missing ? strerror(-missing) : "0");
	/* Anything but the known EINVAL is a new behaviour, not the finding. */
	CHECK(missing == 0 || missing == -EINVAL, "REG(MISSING): %s", strerror(-missing));
	FINDING("B10: shm_vm_ops (ipc/shm.c:683-693) has no .uffd_ops, so vma_uffd_ops() is NULL "
		"and vma_can_userfault() refuses a SHM_HUGETLB VMA that is_vm_hugetlb_page() "
		"accepted before the vm_uffd_ops conversion (uffd.c:83-88, 2221-2223); rst "
		"105-107 and 319-320 promise hugetlbfs",
		missing == 0, "REG(MISSING) on a SHM_HUGETLB segment was refused");
	CHECK(shmdt(p) == 0, "shmdt");
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
	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
	arm(fd, m.addr, m.len);
	read_blocks_until_resolved(fd, m.addr, (unsigned long)m.addr, page_size(), ANY_BYTE);
	want_quiet(fd, "after one resolve");
}

/* C8: resolving never-protected pages, and resolving twice, succeed */
RWP_TEST_MEM(resolve_is_idempotent)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve never-protected pages");
	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
	reader_blocked(fd, &acc, m.addr, (unsigned long)m.addr);
	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
	reader_blocked(fd, &acc, m.addr, (unsigned long)m.addr);
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

	arm(fd, m.addr, m.len);
	reader_blocked(fd, &acc, m.addr + page_size(), (unsigned long)(m.addr + page_size()));
	ok(uffd_wake(fd, m.addr + page_size(), page_size()), "UFFDIO_WAKE");
	want_blocked(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)m.addr + page_size());
	CHECK(page_uffd_bit(m.addr + page_size()), "the wake resolved the page");
	ok(uffd_rwprotect(fd, m.addr + page_size(), page_size(), 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the thread did not resume after the resolve");
	CHECK(acc.value == mem_unit_pattern(1), "read 0x%x", acc.value);
	want_quiet(fd, "after the resolve");
}

/* C9: a resolved exclusive anon page is writable at once; PROT_READ stays read-only */
RWP_TEST(resolve_restores_vma_permissions)
{
	long faults;
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;
	volatile char *v = p;

	arm(fd, p, NUNITS * page_size());
	disarm(fd, p, NUNITS * page_size());
	faults = thread_minor_faults();
	v[0] = 'W';
	faults = thread_minor_faults() - faults;
	CHECK(faults == 0, "the write after UNRWP took %ld faults, want 0", faults);
	CHECK(p[0] == 'W', "write lost");
	want_quiet(fd, "write after UNRWP");

	CHECK(mprotect(p + page_size(), page_size(), PROT_READ) == 0, "mprotect READ");
	arm(fd, p + page_size(), page_size());
	disarm(fd, p + page_size(), page_size());
	CHECK(v[page_size()] == 'b', "read of the resolved PROT_READ page");
	CHECK(access_signal(p + page_size(), 1, NULL) == SIGSEGV,
	      "a write to the resolved PROT_READ page succeeded");
	want_quiet(fd, "accesses to the resolved PROT_READ page");
}

/* C13: the shared zero page is protected too and reads 0 after the resolve */
RWP_TEST(zero_page_is_protected)
{
	struct page_region r[2];
	struct accessor acc;
	char *p;
	int fd;
	long n;

	require_rwp();
	p = map_anon(NUNITS * page_size());
	CHECK(madvise(p, NUNITS * page_size(), MADV_NOHUGEPAGE) == 0, "NOHUGEPAGE");
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, NUNITS * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	CHECK(((volatile char *)p)[0] == 0, "zero page reads non-zero");
	n = scan_pages(p, page_size(), PAGE_IS_PFNZERO | PAGE_IS_PRESENT | PAGE_IS_ACCESSED, 0, r, 2);
	CHECK(n == 1 && r[0].categories == (PAGE_IS_PFNZERO | PAGE_IS_PRESENT | PAGE_IS_ACCESSED),
	      "before RWP: %ld regions, categories 0x%llx", n, (unsigned long long)r[0].categories);
	arm(fd, p, page_size());
	CHECK(page_uffd_bit(p), "bit 57 clear on the protected zero page");
	{
		struct pm_scan_arg arg = {
			.size = sizeof(arg), .start = (unsigned long)p,
			.end = (unsigned long)p + page_size(), .vec = (unsigned long)r, .vec_len = 2,
			.category_anyof_mask = PAGE_IS_PFNZERO | PAGE_IS_PRESENT | PAGE_IS_ACCESSED,
			.return_mask = PAGE_IS_PFNZERO | PAGE_IS_PRESENT | PAGE_IS_ACCESSED,
		};
		int pfd = open("/proc/self/pagemap", O_RDONLY);

		n = ioctl(pfd, PAGEMAP_SCAN, &arg);
		close(pfd);
		CHECK(n == 1 && r[0].categories == (PAGE_IS_PFNZERO | PAGE_IS_PRESENT),
		      "after RWP: %ld regions, categories 0x%llx", n,
		      (unsigned long long)r[0].categories);
	}
	accessor_start(&acc, p, 0, 1);
	want_blocked(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	disarm(fd, p, page_size());
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume");
	CHECK(acc.value == 0, "read 0x%x from the zero page", acc.value);
}

/* C15, G6: an aligned 2M RWP keeps an anon THP huge; resolving 4K splits it and keeps the rest */
RWP_TEST(thp_protect_whole_then_split_anon_thp)
{
	struct page_region r[4];
	int fd;
	struct mem m = mem_rwp(MEM_ANON_THP, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	size_t nr = HPAGE_SIZE / page_size();
	long n;

	arm(fd, m.addr, HPAGE_SIZE);
	n = scan_pages(m.addr, HPAGE_SIZE, PAGE_IS_HUGE | PAGE_IS_PRESENT, 0, r, 4);
	CHECK(n == 1 && r[0].end - r[0].start == HPAGE_SIZE,
	      "protected THP: %ld HUGE|PRESENT regions", n);
	CHECK(scan_pages(m.addr, HPAGE_SIZE, PAGE_IS_ACCESSED, 0, r, 4) == 0,
	      "a protected THP page scans as ACCESSED");
	CHECK(vma_has_anon_thp(m.addr), "protecting the whole PMD split it");
	want_bits(m.addr, nr, PM_UFFD_BIT, 1, "protected THP");

	disarm(fd, m.addr + 5 * page_size(), page_size());
	n = scan_pages(m.addr, HPAGE_SIZE, PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(n == 1 && r[0].start == (unsigned long)m.addr + 5 * page_size() &&
	      r[0].end == r[0].start + page_size(), "after a 4K resolve: %ld ACCESSED regions", n);
	CHECK(!page_uffd_bit(m.addr + 5 * page_size()), "the resolved page kept bit 57");
	want_bits(m.addr, 5, PM_UFFD_BIT, 1, "pages before the resolved one");
	want_bits(m.addr + 6 * page_size(), nr - 6, PM_UFFD_BIT, 1, "pages after the resolved one");
	CHECK(m.addr[5 * page_size()] == 'a', "data of the resolved page");
	want_quiet(fd, "read of the resolved page");
}

/* G6: a protected hugetlb page is HUGE|PRESENT, not ACCESSED, bit 57 on every 4K entry */
RWP_TEST(hugetlb_scan_reporting)
{
	struct page_region r[4];
	int fd;
	struct mem m = mem_rwp(MEM_HUGETLB, 1, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	long n;

	arm(fd, m.addr, HPAGE_SIZE);
	n = scan_pages(m.addr, HPAGE_SIZE, PAGE_IS_HUGE | PAGE_IS_PRESENT, 0, r, 4);
	CHECK(n == 1 && r[0].end - r[0].start == HPAGE_SIZE, "%ld HUGE|PRESENT regions", n);
	CHECK(scan_pages(m.addr, HPAGE_SIZE, PAGE_IS_ACCESSED, 0, r, 4) == 0,
	      "the protected huge page scans as ACCESSED");
	want_bits(m.addr, HPAGE_SIZE / page_size(), PM_UFFD_BIT, 1, "protected huge page");
	disarm(fd, m.addr, HPAGE_SIZE);
	CHECK(m.addr[7] == 'a', "data");
	n = scan_pages(m.addr, HPAGE_SIZE, PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(n == 1 && r[0].end - r[0].start == HPAGE_SIZE, "resolved: %ld ACCESSED regions", n);
}

/* The C16 test proper; its caller set shmem_enabled to advise if it was never. */
static void shmem_thp_body(void *arg)
{
	size_t len = HPAGE_SIZE;
	struct accessor acc;
	struct uffd_msg msg;
	char *p;
	int fd, mfd, got;
	uint64_t e;

	(void)arg;
	mfd = memfd_create("c16", MFD_CLOEXEC);
	CHECK(mfd >= 0 && ftruncate(mfd, (off_t)len) == 0, "memfd");
	p = mmap(map_aligned(len, len, PROT_NONE), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0);
	CHECK(p != MAP_FAILED, "mmap memfd at an aligned address");
	CHECK(madvise(p, len, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE");
	memset(p, 'T', len);
	if (kb_field("/proc/self/smaps", p, "ShmemPmdMapped") < 2048) {
		compact_memory();
		CHECK(madvise(p, len, MADV_REMOVE) == 0, "MADV_REMOVE to retry the THP");
		memset(p, 'T', len);
	}
	if (kb_field("/proc/self/smaps", p, "ShmemPmdMapped") < 2048)
		HUGE_PAGE_MISSING("the memfd did not get a PMD-mapped THP (ShmemPmdMapped %lld kB)",
				  kb_field("/proc/self/smaps", p, "ShmemPmdMapped"));
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, len, UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	arm(fd, p, len);
	e = pagemap_entry(p + 4096);
	accessor_start(&acc, p + 4096, 0, 0);
	got = uffd_read_msg(fd, &msg, RWP_WAIT_MS);
	if (got == 1)
		disarm(fd, p, len);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not finish");
	CHECK(acc.value == 'T', "read 0x%x", acc.value);
	rwp_diag("after RWP: pagemap 0x%llx (present %d, uffd %d); the read %s",
		 (unsigned long long)e, (int)(e >> PM_PRESENT_BIT & 1), (int)(e >> PM_UFFD_BIT & 1),
		 got == 1 ? "faulted" : "was silent");
	FINDING("C16: change_pmd_range() splits (zaps) a file PMD for RWP "
		"(mprotect.c:446-455, huge_memory.c:3210-3239) and installs nothing, so "
		"the next access refaults through shmem_fault without an RWP fault",
		got == 1 && msg.arg.pagefault.flags == UFFD_PAGEFAULT_FLAG_RWP,
		"a read of the protected shmem THP raised no RWP fault");
}

/* C16: RWPROTECT of a PMD-mapped shmem THP must leave it protected */
RWP_TEST(shmem_thp_protect_keeps_protection)
{
	struct setting thp[] = { { .path = SHMEM_THP, .choice = 1 }, { 0 } };
	int err;

	require_rwp();
	err = setting_read(&thp[0]);
	if (err == -ENOENT)
		SKIP("no %s (no shmem THP)", SHMEM_THP);
	CHECK(!err, "cannot read the choice in %s (%d)", SHMEM_THP, err);
	if (!strcmp(thp[0].value, "never") || !strcmp(thp[0].value, "deny"))
		ok(write_text(SHMEM_THP, "advise"), "set shmem_enabled=advise");
	run_then_restore(shmem_thp_body, NULL, settings_restore, thp);
}

/* C17: a uffd can protect and resolve a range registered on another uffd; the wake misses */
RWP_TEST(rwprotect_via_other_uffd)
{
	struct accessor acc;
	int fd1, fd2, r;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd2, 0, UFFDIO_REGISTER_MODE_RWP).addr;

	fd1 = uffd_new(UFFD_FEATURE_RWP);
	r = uffd_rwprotect(fd1, p, NUNITS * page_size(), UFFDIO_RWPROTECT_MODE_RWP);
	if (r == 0) {
		CHECK(page_uffd_bit(p), "fd1's RWP returned 0 but did not protect");
		accessor_start(&acc, p, 0, 0);
		want_blocked(fd2, &acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
		want_quiet(fd1, "fd1 after fd2's fault");
		ok(uffd_rwprotect(fd1, p, page_size(), 0), "UNRWP via fd1");
		CHECK(!page_uffd_bit(p), "fd1's UNRWP did not resolve");
		CHECK(!accessor_wait(&acc, 300), "fd1's UNRWP woke fd2's waiter");
		ok(uffd_wake(fd2, p, page_size()), "UFFDIO_WAKE on fd2");
		CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume after WAKE");
		CHECK(acc.value == 'a', "read 0x%x", acc.value);
	}
	FINDING("C17: mrwprotect_range() checks only userfaultfd_rwp(vma) "
		"(uffd.c:1198-1199), never that the VMA's ctx is the caller's; the wake "
		"then goes to the caller's ctx (uffd.c:4313-4317)",
		r != 0, "RWPROTECT via fd1 on fd2's range returned 0");
}

/* C18: a monitor process holding the uffd protects and resolves the target's pages */
RWP_TEST(rwprotect_from_other_process)
{
	int sv[2], go[2], fd, status;
	char *p, c;
	pid_t pid;

	require_rwp();
	p = map_anon(NUNITS * page_size());
	memset(p, 'M', NUNITS * page_size());
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && pipe(go) == 0, "socketpair/pipe");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int mfd = recv_fd(sv[1]);

		/* The monitor: it shares nothing with the target but the fd and the addresses. */
		ok(uffd_rwprotect(mfd, p, NUNITS * page_size(), UFFDIO_RWPROTECT_MODE_RWP), "RWP");
		c = 1;
		CHECK(write(go[1], &c, 1) == 1, "signal protect");
		CHECK(read(sv[1], &c, 1) == 1, "wait for the target");
		ok(uffd_rwprotect(mfd, p, page_size(), 0), "UNRWP page 0");
		CHECK(write(go[1], &c, 1) == 1, "signal resolve");
		_exit(RWP_EXIT_PASS);
	}
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, NUNITS * page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	send_fd(sv[0], fd);
	{
		struct pollfd pfd = { .fd = go[0], .events = POLLIN };

		CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(go[0], &c, 1) == 1,
		      "the monitor did not protect");
	}
	want_bits(p, NUNITS, PM_UFFD_BIT, 1, "after the monitor's RWP");
	CHECK(write(sv[0], &c, 1) == 1, "signal the monitor");
	{
		struct pollfd pfd = { .fd = go[0], .events = POLLIN };

		CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(go[0], &c, 1) == 1,
		      "the monitor did not resolve");
	}
	CHECK(!page_uffd_bit(p), "page 0 still protected after the monitor's UNRWP");
	want_bits(p + page_size(), NUNITS - 1, PM_UFFD_BIT, 1, "pages 1-3");
	CHECK(wait_pid_ms(pid, &status, RWP_WAIT_MS), "the monitor did not exit");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the monitor failed (0x%x)", status);
	CHECK(p[0] == 'M', "data");
	want_quiet(fd, "read of the resolved page");
}

/* C19: RWPROTECT works while the VMA is PROT_NONE; protection shows once it is accessible again */
RWP_TEST(rwprotect_while_prot_none)
{
	struct accessor acc;
	size_t ps = page_size();
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;

	CHECK(mprotect(p, NUNITS * ps, PROT_NONE) == 0, "mprotect NONE");
	arm(fd, p, NUNITS * ps);
	disarm(fd, p + ps, ps);
	CHECK(page_uffd_bit(p), "page 0 not protected");
	CHECK(!page_uffd_bit(p + ps), "page 1 still has bit 57 after UNRWP under PROT_NONE");
	CHECK(mprotect(p, NUNITS * ps, PROT_READ | PROT_WRITE) == 0, "mprotect RW");
	CHECK(page_uffd_bit(p), "page 0 lost protection over the mprotect round trip");
	CHECK(p[ps + 1] == 'b', "page 1 data");
	want_quiet(fd, "read of the page resolved under PROT_NONE");
	accessor_start(&acc, p, 0, 0);
	want_blocked(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	disarm(fd, p, ps);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS) && acc.value == 'a', "reader of page 0");
}

/* C20: WRITEPROTECT on an RWP VMA and RWPROTECT on a WP VMA are both ENOENT */
RWP_TEST(wp_and_rwp_ioctls_exclusive)
{
	size_t len = NUNITS * page_size();
	char *a, *b;
	int fd;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	a = map_anon(len);
	b = map_anon(len);
	ok(uffd_register(fd, a, len, UFFDIO_REGISTER_MODE_RWP, NULL), "REG(RWP)");
	ok(uffd_register(fd, b, len, UFFDIO_REGISTER_MODE_WP, NULL), "REG(WP)");
	refused(uffd_writeprotect(fd, a, len, UFFDIO_WRITEPROTECT_MODE_WP), ENOENT,
		"WRITEPROTECT on the RWP VMA");
	refused(uffd_rwprotect(fd, b, len, UFFDIO_RWPROTECT_MODE_RWP), ENOENT,
		"RWPROTECT on the WP VMA");
	CHECK(!page_uffd_bit(a) && !page_uffd_bit(b), "a refused ioctl set bit 57");
}

/* C14: a page swapped out unprotected is armed by RWPROTECT on its swap entry */
RWP_TEST(rwprotect_arms_swap_entry)
{
	size_t ps = page_size();
	struct page_region r[2];
	struct pm_scan_arg arg;
	struct accessor acc;
	int fd, pfd;
	long k;
	char *p;

	require_rwp();
	require_swap(NULL, 0, NULL);
	p = mem_rwp(MEM_ANON, 2, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;
	/* Without a real swap entry the test would only re-test C1 on a present page. */
	swap_out(p, 1);
	want_bits(p, 1, PM_PRESENT_BIT, 0, "page 0 after MADV_PAGEOUT (still present)");
	want_bits(p, 1, PM_UFFD_BIT, 0, "unprotected swap entry");
	arm(fd, p, ps);
	want_bits(p, 1, PM_SWAP_BIT, 1, "after RWP the page must still be swapped");
	want_bits(p, 1, PM_UFFD_BIT, 1, "RWP on the swap entry");
	/* anyof, not category_mask: a scan requiring both would find nothing either way. */
	arg = (struct pm_scan_arg){ .size = sizeof(arg), .start = (unsigned long)p,
				    .end = (unsigned long)p + ps, .vec = (unsigned long)r, .vec_len = 2,
				    .category_anyof_mask = PAGE_IS_SWAPPED | PAGE_IS_ACCESSED,
				    .return_mask = PAGE_IS_SWAPPED | PAGE_IS_ACCESSED };
	pfd = open("/proc/self/pagemap", O_RDONLY);
	CHECK(pfd >= 0, "open pagemap");
	k = ioctl(pfd, PAGEMAP_SCAN, &arg);
	close(pfd);
	CHECK(k == 1 && r[0].categories == PAGE_IS_SWAPPED,
	      "armed swap entry scans as %ld regions, categories 0x%llx; want SWAPPED only", k,
	      k > 0 ? (unsigned long long)r[0].categories : 0ULL);
	want_quiet(fd, "arming a swap entry");
	accessor_start(&acc, p + 0x123, 0, 0);
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	CHECK(!accessor_wait(&acc, 100), "the read of the armed swap entry did not block");
	/* The swap-in happened first, and kept the protection on the now present PTE. */
	want_bits(p, 1, PM_PRESENT_BIT, 1, "blocked reader: page swapped in");
	want_bits(p, 1, PM_UFFD_BIT, 1, "blocked reader: swapped-in page still protected");
	disarm(fd, p, ps);
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume after the resolve");
	CHECK(acc.value == mem_unit_pattern(0), "read 0x%x after swap-in, want 0x%x", acc.value,
	      mem_unit_pattern(0));
	want_bits(p, 1, PM_UFFD_BIT, 0, "after the resolve");
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
	arm(fd, m.addr, m.len);
	accessor_start(&acc, target, write, 'Z');
	want_blocked(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP | (write ? UFFD_PAGEFAULT_FLAG_WRITE : 0),
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

	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
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
	arm(fd, m.addr, m.len);
	CHECK(poll(&pfd, 1, 0) == 0, "readable before any fault (revents 0x%x)", pfd.revents);
	accessor_start(&acc, m.addr, 0, 0);
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && (pfd.revents & POLLIN),
	      "not readable with a fault pending (revents 0x%x)", pfd.revents);
	read_blocks_until_resolved(fd, m.addr, (unsigned long)m.addr, page_size(), ANY_BYTE);
}

/*
 * D12: with UFFD_FEATURE_SIGBUS a user access to a protected page is a SIGBUS
 * at its address (BUS_ADRERR), with no message and the page still protected;
 * a kernel access (write() from it) is EFAULT
 */
RWP_TEST(sync_fault_sigbus_feature)
{
	siginfo_t si;
	int fd, pfd[2];
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_SIGBUS, UFFDIO_REGISTER_MODE_RWP);
	char *target = m.addr + page_size() + 0x123;
	ssize_t w;

	arm(fd, m.addr, m.len);
	CHECK(access_signal(target, 0, &si) == SIGBUS,
	      "the read of a protected page with UFFD_FEATURE_SIGBUS was not a SIGBUS");
	CHECK(si.si_code == BUS_ADRERR, "si_code %d, want BUS_ADRERR (%d)", si.si_code, BUS_ADRERR);
	CHECK(si.si_addr == target, "si_addr %p, want %p", si.si_addr, (void *)target);
	want_quiet(fd, "a SIGBUS access");
	CHECK(page_uffd_bit(target), "the page lost its protection to the SIGBUS access");
	CHECK(pipe(pfd) == 0, "pipe");
	w = write(pfd[1], target, 16);
	CHECK(w == -1 && errno == EFAULT, "write() from the protected page returned %zd (%s), "
	      "want EFAULT", w, w < 0 ? strerror(errno) : "no error");
	want_quiet(fd, "a kernel access");
	CHECK(page_uffd_bit(target), "the kernel access resolved the page");
}

/*
 * UNRWP of [P0, P2) wakes the RWP waiter on P0 and the MISSING waiter on P1,
 * not the RWP waiter on P2; P1's waiter faults again.
 */
/* C12, D9: a resolve wakes the waiters inside its range, whatever their fault, and no other */
RWP_TEST(resolve_wakes_waiters_in_range_only)
{
	struct accessor t1, t2, t3;
	size_t ps = page_size();
	int fd;
	char *p = mem_rwp(MEM_ANON, 3, &fd, 0, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP).addr;

	CHECK(madvise(p + ps, ps, MADV_DONTNEED) == 0, "DONTNEED P1");
	arm(fd, p, 3 * ps);
	accessor_start(&t1, p, 0, 0);
	want_blocked(fd, &t1, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	accessor_start(&t3, p + ps, 0, 0);
	want_blocked(fd, &t3, 0, (unsigned long)(p + ps));
	accessor_start(&t2, p + 2 * ps, 0, 0);
	want_blocked(fd, &t2, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)(p + 2 * ps));

	disarm(fd, p, 2 * ps);
	CHECK(accessor_wait(&t1, RWP_WAIT_MS) && t1.value == 'a', "T1 (P0) did not resume");
	want_fault(fd, 0, (unsigned long)p + ps);
	CHECK(!t3.done, "T3 finished without P1 being filled");
	CHECK(!accessor_wait(&t2, 300), "T2 (P2, outside the range) was woken");
	want_quiet(fd, "after the resolve of [P0, P2)");

	ok(zeropage(fd, p + ps, ps), "ZEROPAGE P1");
	CHECK(accessor_wait(&t3, RWP_WAIT_MS) && t3.value == 0, "T3 did not resume after ZEROPAGE");
	CHECK(!t2.done, "T2 finished while P2 is protected");
	disarm(fd, p + 2 * ps, ps);
	CHECK(accessor_wait(&t2, RWP_WAIT_MS) && t2.value == 'c', "T2 did not resume");
}

/* D10: a fault message not yet read is withdrawn when its thread is woken */
RWP_TEST(pending_message_withdrawn_on_wake)
{
	struct pollfd pfd;
	struct accessor acc;
	char buf[sizeof(struct uffd_msg)];
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;

	arm(fd, p, NUNITS * page_size());
	accessor_start(&acc, p, 0, 0);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && (pfd.revents & POLLIN), "no pending fault");
	disarm(fd, p, page_size());
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume");
	errno = 0;
	CHECK(read(fd, buf, sizeof(buf)) == -1 && errno == EAGAIN,
	      "the woken thread's message was still readable");
}

/* D16: closing the uffd with a fault message still unread releases the thread normally */
RWP_TEST(close_with_pending_fault_releases_thread)
{
	struct pollfd pfd;
	struct accessor acc;
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;

	arm(fd, p, NUNITS * page_size());
	accessor_start(&acc, p + page_size(), 0, 0);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1, "no pending fault");
	CHECK(!acc.done, "the access finished while protected");
	CHECK(close(fd) == 0, "close");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the thread stayed blocked after close");
	CHECK(acc.value == 'b', "read 0x%x", acc.value);
	want_bits(p, NUNITS, PM_UFFD_BIT, 0, "after the release");
}

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

/* D11: a signal interrupts a blocked RWP fault, which faults again; SIGKILL ends the task */
RWP_TEST(blocked_fault_interruptible)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct accessor acc;
	int fd, status, go[2];
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;
	pid_t pid;

	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	arm(fd, p, NUNITS * page_size());
	accessor_start(&acc, p, 0, 0);
	want_blocked(fd, &acc, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	CHECK(pthread_kill(acc.thread, SIGUSR1) == 0, "pthread_kill");
	want_fault(fd, UFFD_PAGEFAULT_FLAG_RWP, (unsigned long)p);
	CHECK(usr1_count == 1, "the handler ran %d times", (int)usr1_count);
	CHECK(!acc.done, "the access completed after the signal");
	disarm(fd, p, page_size());
	CHECK(accessor_wait(&acc, RWP_WAIT_MS) && acc.value == 'a', "the reader did not resume");

	CHECK(pipe(go) == 0, "pipe");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int cfd;
		char *c = mem_rwp(MEM_ANON, 1, &cfd, 0, UFFDIO_REGISTER_MODE_RWP).addr;

		arm(cfd, c, page_size());
		(void)!write(go[1], "x", 1);
		/* Nobody resolves this: only SIGKILL ends the child. */
		(void)*(volatile char *)c;
		_exit(RWP_EXIT_FAIL);
	}
	{
		struct pollfd pfd = { .fd = go[0], .events = POLLIN };
		char c;

		CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(go[0], &c, 1) == 1, "child not ready");
	}
	sleep_ms(200);
	CHECK(!wait_pid_ms(pid, &status, 0), "the child's access did not block (0x%x)", status);
	kill(pid, SIGKILL);
	CHECK(wait_pid_ms(pid, &status, RWP_WAIT_MS), "SIGKILL did not end the blocked child");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status 0x%x", status);
}

/* D14, I13: first touch of an unpopulated page in MISSING|RWP is a MISSING fault, COPY leaves it open */
RWP_TEST(missing_first_touch_in_missing_rwp)
{
	struct accessor acc;
	size_t ps = page_size();
	char *src;
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP).addr;

	CHECK(madvise(p + ps, 2 * ps, MADV_DONTNEED) == 0, "DONTNEED pages 1-2");
	arm(fd, p, NUNITS * ps);
	accessor_start(&acc, p + ps + 9, 0, 0);
	want_blocked(fd, &acc, 0, (unsigned long)(p + ps));
	src = map_anon(ps);
	memset(src, 'K', ps);
	ok(copy_page_in(fd, p + ps, src, ps), "UFFDIO_COPY");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS) && acc.value == 'K', "reader after COPY");
	accessor_start(&acc, p + 2 * ps, 1, 'w');
	want_blocked(fd, &acc, UFFD_PAGEFAULT_FLAG_WRITE, (unsigned long)(p + 2 * ps));
	ok(copy_page_in(fd, p + 2 * ps, src, ps), "UFFDIO_COPY");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "writer after COPY");
	CHECK(p[2 * ps] == 'w' && p[2 * ps + 1] == 'K', "written data");
	p[ps] = 'x';
	want_quiet(fd, "accesses to the copied pages");
}

/* D15: a write to a protected page of a PROT_READ RWP VMA is SIGSEGV with no message */
RWP_TEST_MEM(write_to_prot_read_rwp_vma)
{
	int fd;
	struct mem m;

	require_rwp();
	m = mem_map(type, NUNITS);
	fd = uffd_new(UFFD_FEATURE_RWP);
	CHECK(mprotect(m.addr, m.len, PROT_READ) == 0, "mprotect READ");
	ok(uffd_register(fd, m.addr, m.len, UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	arm(fd, m.addr, m.len);
	CHECK(access_signal(m.addr + m.unit, 1, NULL) == SIGSEGV, "the write to a PROT_READ VMA succeeded");
	want_quiet(fd, "write to a PROT_READ RWP VMA");
	CHECK(page_uffd_bit(m.addr + m.unit), "the failed write resolved the unit");
}

/* ---- E. async ---- */

/* E1, E3, E4 */
RWP_TEST_MEM(async_resolves_without_message)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);

	arm(fd, m.addr, m.len);
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

		arm(fd, m.addr, m.len);
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

/*
 * The parent arms [p, p + len) of an async ctx while a forked child shares the
 * pages, writes 'P' at target and returns what the child reads there after
 * the write, with the target's pagemap entries before and after.
 */
static char async_cow_write(int fd, char *p, size_t len, char *target, uint64_t *before,
			    uint64_t *after)
{
	int status, go[2], back[2];
	pid_t pid;
	char c = 0;

	CHECK(pipe(go) == 0 && pipe(back) == 0, "pipe");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct pollfd pfd = { .fd = go[0], .events = POLLIN };

		if (poll(&pfd, 1, RWP_WAIT_MS) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		c = *target;
		(void)!write(back[1], &c, 1);
		_exit(0);
	}
	*before = pagemap_entry(target);
	arm(fd, p, len);
	want_bits(p, len / page_size(), PM_UFFD_BIT, 1, "the protected shared pages");
	*target = 'P';
	*after = pagemap_entry(target);
	CHECK(write(go[1], "g", 1) == 1, "wake the child");
	{
		struct pollfd pfd = { .fd = back[0], .events = POLLIN };

		CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(back[0], &c, 1) == 1, "child's answer");
	}
	CHECK(wait_pid_ms(pid, &status, RWP_WAIT_MS), "the child did not exit");
	CHECK(*target == 'P', "the parent's write is lost");
	CHECK((*before & PFN_MASK) && (*before & PFN_MASK) != (*after & PFN_MASK),
	      "no COW: PFN 0x%llx before, 0x%llx after", (unsigned long long)(*before & PFN_MASK),
	      (unsigned long long)(*after & PFN_MASK));
	return c;
}

/*
 * E9: an async write to a protected anon THP shared with a child: the fault
 * resolves the whole PMD (E3), the parent gets a private copy of the page it
 * wrote and the child keeps the old data
 */
RWP_TEST(async_write_cows_shared_anon_thp)
{
	int fd;
	size_t ps = page_size();
	struct mem m = mem_rwp(MEM_ANON_THP, 1, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);
	char *target = m.addr + 5 * ps, c;
	uint64_t before, after;

	c = async_cow_write(fd, m.addr, HPAGE_SIZE, target, &before, &after);
	CHECK(c == mem_unit_pattern(0), "the child sees 0x%x, want the old 0x%x", c, mem_unit_pattern(0));
	CHECK(target[1] == mem_unit_pattern(0), "the rest of the parent's copy: 0x%x", target[1]);
	want_bits(m.addr, HPAGE_SIZE / ps, PM_UFFD_BIT, 0,
		  "the THP after one async write (whole PMD resolved)");
	want_quiet(fd, "async COW of a THP");
}

/* E5: anon pages shared with a child are COWed on an async write; the child keeps the old data */
RWP_TEST(async_write_cows_shared_anon)
{
	int fd;
	size_t ps = page_size();
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP).addr;
	uint64_t before, after;
	char c = async_cow_write(fd, p, NUNITS * ps, p + ps, &before, &after);

	CHECK(c == 'b', "the child sees 0x%x, want the old 'b'", c);
	CHECK(!(after >> PM_UFFD_BIT & 1), "the COWed page kept bit 57");
	CHECK(page_uffd_bit(p + 2 * ps), "an untouched page lost protection");
	want_quiet(fd, "async COW");
}

/* E5: an async write to a protected clean shmem_private page COWs; the file is unchanged */
RWP_TEST(async_write_cows_shmem_private)
{
	int fd;
	struct mem m = mem_rwp(MEM_SHMEM_PRIVATE, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);
	char *w, c;

	/* Drop the private copies mem_fill made, so unit 1 maps the file page again. */
	w = mmap(NULL, m.len, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
	CHECK(w != MAP_FAILED, "shared mmap");
	memset(w + m.unit, 'F', m.unit);
	CHECK(madvise(m.addr, m.len, MADV_DONTNEED) == 0, "DONTNEED");
	CHECK(m.addr[m.unit] == 'F', "unit 1 does not show the file");
	arm(fd, m.addr, m.len);
	m.addr[m.unit] = 'P';
	CHECK(m.addr[m.unit] == 'P', "write lost");
	CHECK(!page_uffd_bit(m.addr + m.unit), "the COWed page kept bit 57");
	CHECK(pread(m.fd, &c, 1, (off_t)m.unit) == 1 && c == 'F', "the file changed to 0x%x", c);
	CHECK(w[m.unit] == 'F', "the shared mapping sees the private write");
	want_quiet(fd, "async COW");
}

/* E6: in async mode a protected access resolves even with UFFD_FEATURE_SIGBUS */
RWP_TEST(async_overrides_sigbus)
{
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC | UFFD_FEATURE_SIGBUS, UFFDIO_REGISTER_MODE_RWP).addr;

	arm(fd, p, NUNITS * page_size());
	/* A SIGBUS here kills the test child: the framework reports the signal. */
	CHECK(((volatile char *)p)[page_size()] == 'b', "data");
	CHECK(!page_uffd_bit(p + page_size()), "the page is still protected");
	CHECK(page_uffd_bit(p), "page 0 lost protection");
	want_quiet(fd, "async with SIGBUS");
}

/* E8: an async write to an exclusive anon page takes one fault and leaves it writable */
RWP_TEST(async_write_one_fault)
{
	struct page_region r[2];
	long faults;
	int fd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP).addr;
	volatile char *v = p;

	arm(fd, p, NUNITS * page_size());
	faults = thread_minor_faults();
	v[0] = 'E';
	faults = thread_minor_faults() - faults;
	CHECK(faults == 1, "the async write took %ld faults, want 1", faults);
	CHECK(p[0] == 'E' && p[1] == 'a', "data");
	CHECK(scan_pages(p, page_size(), PAGE_IS_ACCESSED, 0, r, 2) == 1, "page 0 not ACCESSED");
	CHECK(!page_uffd_bit(p), "bit 57");
}

static long do_vmsplice(int pfd, void *addr, size_t len)
{
	struct iovec iov = { addr, len };

	return vmsplice(pfd, &iov, 1, 0);
}

/*
 * E7: kernel accesses (pipe read into and write from the page, vmsplice,
 * process_vm_readv from another process, /proc/self/mem) resolve protected
 * pages in async mode without blocking, for a normal or a user-mode-only uffd.
 */
static void async_kernel_accesses(int flags)
{
	size_t ps = page_size(), n = 6;
	struct page_region r[8];
	char *p, buf[64];
	int fd, pip[2], mem, status;
	pid_t pid, self = getpid();

	require_rwp();
	p = map_anon(n * ps);
	for (size_t i = 0; i < n; i++)
		memset(p + i * ps, mem_unit_pattern(i), ps);
	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);
	CHECK(fd >= 0, "userfaultfd(0x%x)", flags);
	ok(uffd_api(fd, UFFD_FEATURE_RWP | UFFD_FEATURE_RWP_ASYNC, NULL, NULL), "API");
	ok(uffd_register(fd, p, n * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	arm(fd, p, n * ps);
	CHECK(pipe2(pip, O_NONBLOCK) == 0, "pipe");

	/* page 0: the kernel reads it for write(2) into the pipe */
	CHECK(write(pip[1], p, 16) == 16, "write(pipe, page 0)");
	CHECK(read(pip[0], buf, 16) == 16 && buf[3] == 'a', "pipe carried 0x%x", buf[3]);
	/* page 1: the kernel writes it for read(2) from the pipe */
	CHECK(write(pip[1], "PIPEDATA", 8) == 8, "fill the pipe");
	CHECK(read(pip[0], p + ps, 8) == 8, "read(pipe, page 1)");
	CHECK(!memcmp(p + ps, "PIPEDATA", 8) && p[ps + 8] == 'b', "page 1 after the pipe read");
	/* page 2: vmsplice pins it with GUP */
	CHECK(do_vmsplice(pip[1], p + 2 * ps, 16) == 16, "vmsplice page 2");
	CHECK(read(pip[0], buf, 16) == 16 && buf[0] == 'c', "vmspliced 0x%x", buf[0]);
	/* page 3: /proc/self/mem */
	mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	CHECK(mem >= 0, "open /proc/self/mem");
	CHECK(pread(mem, buf, 16, (off_t)(unsigned long)(p + 3 * ps)) == 16 && buf[0] == 'd',
	      "/proc/self/mem read 0x%x", buf[0]);
	close(mem);
	/* page 4: process_vm_readv from a child */
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct iovec l = { buf, 16 }, rr = { p + 4 * ps, 16 };

		if (process_vm_readv(self, &l, 1, &rr, 1, 0) != 16)
			_exit(2);
		_exit(buf[0] == 'e' ? 0 : 3);
	}
	CHECK(wait_pid_ms(pid, &status, RWP_WAIT_MS), "process_vm_readv did not return");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process_vm_readv child 0x%x", status);

	want_quiet(fd, "kernel accesses in async mode");
	for (int i = 0; i < 5; i++)
		CHECK(!page_uffd_bit(p + i * ps), "page %d still protected after a kernel access", i);
	CHECK(page_uffd_bit(p + 5 * ps), "the untouched page 5 lost protection");
	CHECK(scan_pages(p, n * ps, PAGE_IS_ACCESSED, 0, r, 8) == 1 &&
	      r[0].start == (unsigned long)p && r[0].end == (unsigned long)p + 5 * ps,
	      "ACCESSED is not exactly pages 0-4");
}

/* E7: kernel accesses resolve protected pages in async mode */
RWP_TEST(async_kernel_accesses_resolve)
{
	async_kernel_accesses(0);
}

/* E7: the same with a UFFD_USER_MODE_ONLY uffd */
RWP_TEST(async_kernel_accesses_user_mode_only)
{
	async_kernel_accesses(UFFD_USER_MODE_ONLY);
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
	arm(fd, m.addr, m.len);
	CHECK(m.addr[1] == mem_unit_pattern(0), "async read");
	want_quiet(fd, "async after SET_MODE");
	set_mode_shows(fd, 0, UFFD_FEATURE_RWP_ASYNC, "80020000");
	set_mode_shows(fd, 0, UFFD_FEATURE_RWP_ASYNC, "80020000");
	reader_blocked(fd, &acc, m.addr + page_size(), (unsigned long)(m.addr + page_size()));
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not resumed");
}

/* F3: an empty request changes nothing */
RWP_TEST(set_mode_empty_request)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	ok(uffd_set_mode(fd, 0, 0), "SET_MODE(0, 0)");
	arm(fd, m.addr, m.len);
	read_blocks_until_resolved(fd, m.addr, (unsigned long)m.addr, page_size(), ANY_BYTE);
}

/* F5, F6: switching to async releases a blocked fault; back to sync blocks again */
RWP_TEST(set_mode_async_releases_blocked_fault)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	struct accessor unread;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	arm(fd, m.addr, m.len);
	reader_blocked(fd, &acc, m.addr + page_size(), (unsigned long)(m.addr + page_size()));
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
	reader_blocked(fd, &acc, m.addr + 2 * page_size(), (unsigned long)(m.addr + 2 * page_size()));
	ok(uffd_rwprotect(fd, m.addr, m.len, 0), "resolve");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "not resumed");
}

/* F2: disabling RWP_ASYNC on a ctx without RWP is accepted and changes nothing */
RWP_TEST(set_mode_disable_without_rwp)
{
	char before[128], after[128];
	int fd;

	require_rwp();
	fd = uffd_new(0);
	fdinfo_api(fd, before, sizeof(before));
	ok(uffd_set_mode(fd, 0, UFFD_FEATURE_RWP_ASYNC), "SET_MODE(disable=RWP_ASYNC)");
	fdinfo_api(fd, after, sizeof(after));
	CHECK(!strcmp(before, after), "fdinfo changed: '%s' -> '%s'", before, after);
	CHECK(!strncmp(after, "aa:80000000:", 12), "features '%s'", after);
}

/* F7: enabling async also wakes a MISSING waiter, which faults again with a second message */
RWP_TEST(set_mode_async_wakes_missing_waiter)
{
	struct accessor acc;
	struct uffd_msg msg;
	size_t ps = page_size();
	int fd, n;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP).addr;

	CHECK(madvise(p + ps, ps, MADV_DONTNEED) == 0, "DONTNEED page 1");
	accessor_start(&acc, p + ps, 0, 0);
	want_blocked(fd, &acc, 0, (unsigned long)(p + ps));
	ok(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), "SET_MODE(enable=RWP_ASYNC)");
	n = uffd_read_msg(fd, &msg, RWP_WAIT_MS);
	CHECK(!acc.done, "the MISSING waiter finished without a fill");
	ok(zeropage(fd, p + ps, ps), "ZEROPAGE");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the reader did not resume after ZEROPAGE");
	if (n == 1)
		rwp_diag("second message: event 0x%x flags 0x%llx at 0x%llx", msg.event,
			 (unsigned long long)msg.arg.pagefault.flags,
			 (unsigned long long)msg.arg.pagefault.address);
	FINDING("F7: SET_MODE wakes every waiter with range.len = 0 (uffd.c:4410-4419), "
		"so a MISSING waiter refaults and queues a duplicate MISSING message",
		n == 0, "SET_MODE(async) produced a duplicate message for the MISSING waiter");
}

/* The forked child waits for its go (a byte on the pipe whose read end is arg). */
static void wait_for_go(void *arg)
{
	struct pollfd pfd = { .fd = *(int *)arg, .events = POLLIN };
	char c;

	_exit(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(pfd.fd, &c, 1) == 1 ? 0 : 2);
}

/* F8: a fork ctx inherits RWP_ASYNC; later SET_MODE on one ctx leaves the other alone */
RWP_TEST(set_mode_inherited_by_fork_ctx)
{
	struct forker f = { .child = wait_for_go };
	struct uffd_msg msg;
	char line[128];
	int fd, cfd, status, go[2];

	mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_EVENT_FORK, UFFDIO_REGISTER_MODE_RWP);
	ok(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), "SET_MODE async");
	CHECK(pipe(go) == 0, "pipe");
	f.arg = &go[0];
	forker_start(&f);
	CHECK(uffd_read_msg(fd, &msg, RWP_WAIT_MS) == 1 && msg.event == UFFD_EVENT_FORK,
	      "no FORK message");
	forker_join(&f);
	cfd = (int)msg.arg.fork.ufd;
	fdinfo_api(cfd, line, sizeof(line));
	CHECK(!strncmp(line, "aa:80060002:", 12), "child ctx API line '%s'", line);
	ok(uffd_set_mode(fd, 0, UFFD_FEATURE_RWP_ASYNC), "SET_MODE sync on the parent ctx");
	fdinfo_api(cfd, line, sizeof(line));
	CHECK(!strncmp(line, "aa:80060002:", 12), "child ctx changed with the parent: '%s'", line);
	fdinfo_api(fd, line, sizeof(line));
	CHECK(!strncmp(line, "aa:80020002:", 12), "parent ctx API line '%s'", line);
	CHECK(write(go[1], "g", 1) == 1, "release the child");
	CHECK(wait_pid_ms(f.pid, &status, RWP_WAIT_MS) && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "child status 0x%x", status);
}

/* ---- G. PAGEMAP_SCAN ---- */

/* G2: the accessed set is exactly what was touched since protection */
RWP_TEST_MEM(scan_accessed_finds_touched_units)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, UFFD_FEATURE_RWP_ASYNC, UFFDIO_REGISTER_MODE_RWP);
	struct page_region vec[8];
	long n;

	arm(fd, m.addr, m.len);
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

/* G4: an inverted ACCESSED scan reports the protected pages and every unpopulated one */
RWP_TEST(scan_inverted_includes_unpopulated)
{
	size_t ps = page_size(), n = 1024;
	struct page_region r[8];
	char *p;
	int fd;
	long k;

	require_rwp();
	p = map_anon(n * ps);
	CHECK(madvise(p, n * ps, MADV_NOHUGEPAGE) == 0, "NOHUGEPAGE");
	for (int i = 0; i < 8; i++)
		p[i * ps] = 'x';
	fd = uffd_new(UFFD_FEATURE_RWP);
	ok(uffd_register(fd, p, n * ps, UFFDIO_REGISTER_MODE_RWP, NULL), "REG");
	arm(fd, p, 4 * ps);
	k = scan_pages(p, n * ps, PAGE_IS_ACCESSED, 0, r, 8);
	CHECK(k == 1 && r[0].start == (unsigned long)p + 4 * ps &&
	      r[0].end == (unsigned long)p + 8 * ps, "(a) ACCESSED: %ld regions", k);
	{
		struct pm_scan_arg arg = {
			.size = sizeof(arg), .start = (unsigned long)p,
			.end = (unsigned long)p + n * ps, .vec = (unsigned long)r, .vec_len = 8,
			.category_mask = PAGE_IS_PRESENT | PAGE_IS_ACCESSED,
			.category_inverted = PAGE_IS_ACCESSED, .return_mask = PAGE_IS_ACCESSED,
		};
		int pfd = open("/proc/self/pagemap", O_RDONLY);

		k = ioctl(pfd, PAGEMAP_SCAN, &arg);
		close(pfd);
		CHECK(k == 1 && r[0].start == (unsigned long)p && r[0].end == (unsigned long)p + 4 * ps,
		      "(c) PRESENT and not ACCESSED: %ld regions", k);
	}
	k = scan_pages(p, n * ps, PAGE_IS_ACCESSED, 1, r, 8);
	rwp_diag("(b) inverted ACCESSED: %ld regions, first %llx-%llx, second %llx-%llx (base %p)",
		 k, (unsigned long long)r[0].start, (unsigned long long)r[0].end,
		 k > 1 ? (unsigned long long)r[1].start : 0ULL,
		 k > 1 ? (unsigned long long)r[1].end : 0ULL, (void *)p);
	CHECK(k >= 1 && r[0].start == (unsigned long)p && r[0].end >= (unsigned long)p + 4 * ps,
	      "(b) does not start with the 4 protected pages");
	FINDING("G4: pte_none entries and pte holes have no ACCESSED bit "
		"(task_mmu.c:2442-2454, 3083-3104), so the inverted scan reports every "
		"unpopulated page; rst 445-446 says it reports only the still-protected PTEs "
		"and rst 449 that pte_none pages never appear",
		k == 1 && r[0].end == (unsigned long)p + 4 * ps,
		"(b) the inverted scan reports unpopulated pages too");
}

/* G5: swapped pages: a protected one scans SWAPPED only, an accessed one SWAPPED|ACCESSED */
RWP_TEST(scan_swapped_pages)
{
	size_t ps = page_size();
	struct page_region r[4];
	struct pm_scan_arg arg;
	int fd, pfd;
	char *p;
	long k;

	require_rwp();
	require_swap(NULL, 0, NULL);
	p = mem_rwp(MEM_ANON, 2, &fd, 0, UFFDIO_REGISTER_MODE_RWP).addr;
	arm(fd, p, ps);
	swap_out(p, 2);
	CHECK(pm_bit(p, PM_UFFD_BIT) && !pm_bit(p + ps, PM_UFFD_BIT),
	      "bit 57: protected %d, accessed %d", pm_bit(p, PM_UFFD_BIT), pm_bit(p + ps, PM_UFFD_BIT));
	arg = (struct pm_scan_arg){ .size = sizeof(arg), .start = (unsigned long)p,
				    .end = (unsigned long)p + 2 * ps, .vec = (unsigned long)r,
				    .vec_len = 4,
				    .category_anyof_mask = PAGE_IS_SWAPPED | PAGE_IS_ACCESSED,
				    .return_mask = PAGE_IS_SWAPPED | PAGE_IS_ACCESSED };
	pfd = open("/proc/self/pagemap", O_RDONLY);
	k = ioctl(pfd, PAGEMAP_SCAN, &arg);
	close(pfd);
	CHECK(k == 2, "%ld regions, want 2", k);
	CHECK(r[0].start == (unsigned long)p && r[0].categories == PAGE_IS_SWAPPED,
	      "protected page: categories 0x%llx", (unsigned long long)r[0].categories);
	CHECK(r[1].start == (unsigned long)p + ps &&
	      r[1].categories == (PAGE_IS_SWAPPED | PAGE_IS_ACCESSED),
	      "accessed page: categories 0x%llx", (unsigned long long)r[1].categories);
	want_quiet(fd, "scan");
}

/* G7, G8: WP categories never show in RWP VMAs; CHECK_WPASYNC is EPERM, WP_MATCHING skips them */
RWP_TEST(scan_wp_categories_on_rwp)
{
	struct page_region r[4];
	struct pm_scan_arg arg;
	int fd, pfd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, UFFD_FEATURE_WP_ASYNC, UFFDIO_REGISTER_MODE_RWP).addr;
	long k;

	arm(fd, p, 2 * page_size());
	pfd = open("/proc/self/pagemap", O_RDONLY);
	CHECK(pfd >= 0, "open pagemap");
	arg = (struct pm_scan_arg){ .size = sizeof(arg), .start = (unsigned long)p,
				    .end = (unsigned long)p + NUNITS * page_size(),
				    .vec = (unsigned long)r, .vec_len = 4,
				    .category_anyof_mask = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN,
				    .return_mask = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN };
	k = ioctl(pfd, PAGEMAP_SCAN, &arg);
	CHECK(k == 0, "WPALLOWED|WRITTEN in an RWP VMA: %ld regions (0x%llx)", k,
	      (unsigned long long)r[0].categories);
	arg.flags = PM_SCAN_CHECK_WPASYNC;
	arg.category_anyof_mask = 0;
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	errno = 0;
	CHECK(ioctl(pfd, PAGEMAP_SCAN, &arg) == -1 && errno == EPERM, "CHECK_WPASYNC not EPERM");
	arg.flags = PM_SCAN_WP_MATCHING;
	arg.category_mask = PAGE_IS_WRITTEN;
	arg.return_mask = PAGE_IS_WRITTEN;
	k = ioctl(pfd, PAGEMAP_SCAN, &arg);
	CHECK(k == 0, "WP_MATCHING on an RWP VMA returned %ld", k);
	close(pfd);
	want_bits(p, 2, PM_UFFD_BIT, 1, "protected pages after WP_MATCHING");
	want_bits(p + 2 * page_size(), 2, PM_UFFD_BIT, 0, "unprotected pages after WP_MATCHING");
	CHECK(p[3 * page_size()] == 'd', "data");
	want_quiet(fd, "unprotected read after WP_MATCHING");
}

/*
 * G10: ACCESSED means "not RWP-protected": pages installed by COPY or ZEROPAGE
 * report it, like the pages present at REG (B22), until an RWPROTECT arms them
 */
RWP_TEST(scan_filled_pages_are_accessed)
{
	size_t ps = page_size();
	struct page_region r[4];
	struct pm_scan_arg arg;
	char *src;
	int fd, pfd;
	char *p = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP).addr;
	long k;

	CHECK(madvise(p, NUNITS * ps, MADV_DONTNEED) == 0, "DONTNEED");
	src = map_anon(ps);
	memset(src, 'S', ps);
	ok(copy_page_in(fd, p, src, ps), "COPY page 0");
	ok(zeropage(fd, p + ps, ps), "ZEROPAGE page 1");
	want_quiet(fd, "filling");
	want_bits(p, 2, PM_UFFD_BIT, 0, "filled pages");
	want_bits(p, 2, PM_PRESENT_BIT, 1, "filled pages");
	k = scan_pages(p, 2 * ps, PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(k == 1 && r[0].start == (unsigned long)p && r[0].end == (unsigned long)p + 2 * ps,
	      "filled pages: %ld ACCESSED regions, want both pages", k);
	arg = (struct pm_scan_arg){ .size = sizeof(arg), .start = (unsigned long)p,
				    .end = (unsigned long)p + 2 * ps, .vec = (unsigned long)r,
				    .vec_len = 4, .category_mask = PAGE_IS_PRESENT | PAGE_IS_ACCESSED,
				    .category_inverted = PAGE_IS_ACCESSED,
				    .return_mask = PAGE_IS_ACCESSED };
	pfd = open("/proc/self/pagemap", O_RDONLY);
	CHECK(pfd >= 0, "open pagemap");
	k = ioctl(pfd, PAGEMAP_SCAN, &arg);
	close(pfd);
	CHECK(k == 0, "PRESENT and not ACCESSED: %ld regions among the filled pages", k);
	arm(fd, p, 2 * ps);
	want_bits(p, 2, PM_UFFD_BIT, 1, "filled pages after RWPROTECT (the zero page too)");
	k = scan_pages(p, 2 * ps, PAGE_IS_ACCESSED, 0, r, 4);
	CHECK(k == 0, "after RWPROTECT: %ld ACCESSED regions", k);
	disarm(fd, p, 2 * ps);
	CHECK(p[3] == 'S' && p[ps + 3] == 0, "filled pages read 0x%x 0x%x", p[3], p[ps + 3]);
}

/* G11: VmFlags show ur, um ur, and neither after unregister */
RWP_TEST(smaps_vmflags)
{
	size_t len = NUNITS * page_size();
	int fd;
	char *a, *b;

	require_rwp();
	fd = uffd_new(UFFD_FEATURE_RWP);
	a = map_anon(len);
	b = map_anon(len);
	ok(uffd_register(fd, a, len, UFFDIO_REGISTER_MODE_RWP, NULL), "REG(RWP)");
	ok(uffd_register(fd, b, len, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_RWP, NULL),
	   "REG(MISSING|RWP)");
	CHECK(has_vmflag(a, "ur") && !has_vmflag(a, "um") && !has_vmflag(a, "uw"), "RWP VMA flags");
	CHECK(has_vmflag(b, "ur") && has_vmflag(b, "um"), "MISSING|RWP VMA flags");
	ok(uffd_unregister(fd, a, len), "UNREGISTER");
	ok(uffd_unregister(fd, b, len), "UNREGISTER");
	CHECK(!has_vmflag(a, "ur") && !has_vmflag(b, "ur") && !has_vmflag(b, "um"),
	      "flags left after UNREGISTER");
}

/* ---- H. teardown ---- */

/* H1 */
RWP_TEST_MEM(unregister_restores_access)
{
	int fd;
	struct mem m = mem_rwp(type, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;

	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
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

	arm(fd, m.addr, m.len);
	ok(uffd_unregister(fd, m.addr + ps, ps), "UNREGISTER page 1");
	CHECK(!page_uffd_bit(m.addr + ps), "page 1 still protected");
	CHECK(page_uffd_bit(m.addr) && page_uffd_bit(m.addr + 2 * ps), "neighbours unprotected");
	read_blocks_until_resolved(fd, m.addr + 2 * ps, (unsigned long)(m.addr + 2 * ps), ps, ANY_BYTE);
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
	arm(fd, m.addr, m.len);
	CHECK(page_uffd_bit(m.addr), "the failed unregisters changed the range");
}

/* H3: unregistering releases threads blocked on an RWP fault */
RWP_TEST(unregister_wakes_blocked_thread)
{
	int fd;
	struct mem m = mem_rwp(MEM_ANON, NUNITS, &fd, 0, UFFDIO_REGISTER_MODE_RWP);
	struct accessor acc;
	int woke;

	arm(fd, m.addr, m.len);
	reader_blocked(fd, &acc, m.addr, (unsigned long)m.addr);
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

/* H7: once the registering process is gone, the monitor's calls give ESRCH/ENOMEM, read EAGAIN */
RWP_TEST(calls_after_registering_process_exits)
{
	int sv[2], fd, status;
	char *p, buf[sizeof(struct uffd_msg)];
	pid_t pid;

	require_rwp();
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int cfd;
		char *c = mem_rwp(MEM_ANON, NUNITS, &cfd, 0, UFFDIO_REGISTER_MODE_RWP).addr;

		arm(cfd, c, NUNITS * page_size());
		CHECK(write(sv[1], &c, sizeof(c)) == sizeof(c), "send the address");
		send_fd(sv[1], cfd);
		_exit(RWP_EXIT_PASS);
	}
	{
		struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

		CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1 && read(sv[0], &p, sizeof(p)) == sizeof(p),
		      "address from the target");
	}
	fd = recv_fd(sv[0]);
	CHECK(wait_pid_ms(pid, &status, RWP_WAIT_MS), "the target did not exit");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "target status 0x%x", status);
	refused(uffd_rwprotect(fd, p, page_size(), 3), EINVAL, "RWPROTECT mode 3 (argument first)");
	refused(uffd_rwprotect(fd, p, page_size(), UFFDIO_RWPROTECT_MODE_RWP), ESRCH, "RWPROTECT");
	refused(uffd_set_mode(fd, UFFD_FEATURE_RWP_ASYNC, 0), ESRCH, "SET_MODE");
	refused(uffd_register(fd, p, page_size(), UFFDIO_REGISTER_MODE_RWP, NULL), ENOMEM,
		"REGISTER");
	refused(uffd_unregister(fd, p, page_size()), ENOMEM, "UNREGISTER");
	errno = 0;
	CHECK(read(fd, buf, sizeof(buf)) == -1 && errno == EAGAIN, "read");
}

/* H8: UNREGISTER of a protected hugetlb VMA restores access and clears bit 57 */
RWP_TEST(unregister_hugetlb)
{
	int fd;
	struct mem m = mem_rwp(MEM_HUGETLB_PRIVATE, 2, &fd, 0, UFFDIO_REGISTER_MODE_RWP);

	arm(fd, m.addr, m.len);
	want_bits(m.addr, 1, PM_UFFD_BIT, 1, "protected");
	ok(uffd_unregister(fd, m.addr, m.len), "UNREGISTER");
	want_bits(m.addr, m.len / page_size(), PM_UFFD_BIT, 0, "after UNREGISTER");
	CHECK(m.addr[HPAGE_SIZE + 3] == 'b' && m.addr[0] == 'a', "data");
	want_quiet(fd, "access after UNREGISTER");
}

RWP_MAIN
