// SPDX-License-Identifier: GPL-2.0
/*
 * First RWP behaviours: feature advertisement, registration, protection of a
 * populated range, sync read and write faults, async resolution, and the
 * refusal of WP|RWP.
 */
#include "rwp_mem.h"

/* NUNITS of anon memory with known contents (mem_unit_pattern), registered for RWP. */
static struct mem basic_range(int *uffd, __u64 features)
{
	return mem_rwp(MEM_ANON, NUNITS, uffd, features, UFFDIO_REGISTER_MODE_RWP);
}

/* A1 */
RWP_TEST(api_advertises_rwp)
{
	__u64 features = uffd_kernel_features();

	if (!(features & UFFD_FEATURE_RWP))
		SKIP(RWP_NO_FEATURE_REASON);
	CHECK(features & UFFD_FEATURE_RWP_ASYNC,
	      "features 0x%llx has RWP but not RWP_ASYNC", (unsigned long long)features);
}

/* B4 */
RWP_TEST(register_rwp)
{
	__u64 ioctls = 0;
	char *addr;
	int fd, err;

	require_rwp();
	addr = map_anon(page_size());
	fd = uffd_new(UFFD_FEATURE_RWP);
	err = uffd_register(fd, addr, page_size(), UFFDIO_REGISTER_MODE_RWP, &ioctls);
	errno = -err;
	CHECK(err == 0, "UFFDIO_REGISTER MODE_RWP");
	CHECK(ioctls & (1ULL << _UFFDIO_RWPROTECT),
	      "returned ioctls 0x%llx lack UFFDIO_RWPROTECT", (unsigned long long)ioctls);
}

/* C1 */
RWP_TEST(rwprotect_populated_keeps_contents)
{
	int uffd;
	struct mem r = basic_range(&uffd, 0);
	uint64_t pfn[NUNITS];
	size_t i;

	for (i = 0; i < NUNITS; i++)
		CHECK((pfn[i] = pfn_of(r.addr + i * page_size())) != 0, "page %zu has no PFN", i);
	arm(uffd, r.addr, r.len);
	want_bits(r.addr, NUNITS, PM_PRESENT_BIT, 1, "protected pages stay present");
	want_bits(r.addr, NUNITS, PM_UFFD_BIT, 1, "protected pages carry the uffd bit");
	for (i = 0; i < NUNITS; i++)
		CHECK(pfn_of(r.addr + i * page_size()) == pfn[i], "page %zu moved to another frame "
		      "when protected", i);
	ok(uffd_rwprotect(uffd, r.addr, r.len, 0), "UFFDIO_RWPROTECT resolve");
	want_bits(r.addr, NUNITS, PM_UFFD_BIT, 0, "resolved pages");
	for (i = 0; i < NUNITS; i++) {
		CHECK(r.addr[i * page_size() + 7] == mem_unit_pattern(i),
		      "page %zu holds 0x%x after protect and resolve", i,
		      r.addr[i * page_size() + 7]);
		CHECK(pfn_of(r.addr + i * page_size()) == pfn[i], "page %zu moved to another frame "
		      "across protect and resolve", i);
	}
}

/* Touch page 2 from a thread; it must block until the handler resolves. */
static void sync_fault(int write)
{
	int uffd;
	struct mem r = basic_range(&uffd, 0);
	char *target = r.addr + 2 * page_size();
	struct accessor acc;
	struct uffd_msg msg;
	int n;
	__u64 want_flags = UFFD_PAGEFAULT_FLAG_RWP | (write ? UFFD_PAGEFAULT_FLAG_WRITE : 0);

	arm(uffd, r.addr, r.len);
	accessor_start(&acc, target + 100, write, 'Z');
	n = uffd_read_msg(uffd, &msg, RWP_WAIT_MS);
	CHECK(n == 1, "no fault message within %d ms (read returned %d)", RWP_WAIT_MS, n);
	CHECK(msg.event == UFFD_EVENT_PAGEFAULT, "event %u is not PAGEFAULT", msg.event);
	CHECK(msg.arg.pagefault.flags == want_flags, "flags 0x%llx, want 0x%llx",
	      (unsigned long long)msg.arg.pagefault.flags, (unsigned long long)want_flags);
	CHECK(msg.arg.pagefault.address == (unsigned long)target,
	      "address 0x%llx, want page 0x%lx", (unsigned long long)msg.arg.pagefault.address,
	      (unsigned long)target);
	CHECK(!acc.done, "the access completed while the page was protected");
	ok(uffd_rwprotect(uffd, target, page_size(), 0), "UFFDIO_RWPROTECT resolve of the page");
	CHECK(accessor_wait(&acc, RWP_WAIT_MS), "the thread did not resume after resolve");
	if (write)
		CHECK(target[100] == 'Z', "write lost: page holds 0x%x", target[100]);
	else
		CHECK(acc.value == mem_unit_pattern(2), "read 0x%x, want 0x%x", acc.value,
		      mem_unit_pattern(2));
	CHECK(uffd_read_msg(uffd, &msg, 0) == 0, "a second message was queued");
}

/* D1 */
RWP_TEST(sync_read_fault)
{
	sync_fault(0);
}

/* D2 */
RWP_TEST(sync_write_fault)
{
	sync_fault(1);
}

/* E1 */
RWP_TEST(async_resolves_without_message)
{
	int uffd;
	struct mem r = basic_range(&uffd, UFFD_FEATURE_RWP_ASYNC);
	struct uffd_msg msg;
	char *p1 = r.addr + page_size();

	arm(uffd, r.addr, r.len);
	CHECK(p1[5] == mem_unit_pattern(1), "async read returned 0x%x", p1[5]);
	p1[6] = 'Q';
	CHECK(p1[6] == 'Q', "async write lost");
	CHECK(uffd_read_msg(uffd, &msg, 0) == 0, "async mode queued a message (event %u)",
	      msg.event);
}

/* B2 */
RWP_TEST(register_wp_and_rwp_refused)
{
	char *addr;
	int fd, err;

	require_rwp();
	addr = map_anon(page_size());
	fd = uffd_new(UFFD_FEATURE_RWP);
	err = uffd_register(fd, addr, page_size(),
			    UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_RWP, NULL);
	CHECK(err == -EINVAL, "MODE_WP|MODE_RWP returned %d (%s), want -EINVAL", err,
	      strerror(-err));
}

RWP_MAIN
