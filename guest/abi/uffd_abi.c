// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the userfaultfd ABI as the target kernel's headers define it, one
 * "name value" per line, to compare with what uffd_abi.py prints of
 * guest/py/uffd.py on the same architecture. Built against the
 * headers_install output; never run as a test.
 */
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <asm/unistd.h>
#include <linux/userfaultfd.h>

#define P(name) printf("%s %llu\n", #name, (unsigned long long)(name))
#define SZ(type) printf("sizeof_%s %zu\n", #type, sizeof(struct type))
#define OFF(type, member, label) \
	printf("offsetof_%s_%s %zu\n", #type, label, offsetof(struct type, member))

int main(void)
{
	P(UFFD_API);
	P(UFFDIO_API);
	P(UFFDIO_REGISTER);
	P(UFFDIO_UNREGISTER);
	P(UFFDIO_RWPROTECT);
	P(UFFDIO_SET_MODE);
	P(UFFDIO_WAKE);
	P(UFFDIO_ZEROPAGE);
	P(UFFDIO_MOVE);
	P(UFFD_FEATURE_EVENT_FORK);
	P(UFFD_FEATURE_MISSING_SHMEM);
	P(UFFD_FEATURE_MOVE);
	P(UFFD_FEATURE_RWP);
	P(UFFD_FEATURE_RWP_ASYNC);
	P(UFFD_FEATURE_EXACT_ADDRESS);
	P(UFFD_FEATURE_THREAD_ID);
	P(UFFDIO_REGISTER_MODE_MISSING);
	P(UFFDIO_REGISTER_MODE_WP);
	P(UFFDIO_REGISTER_MODE_MINOR);
	P(UFFDIO_REGISTER_MODE_RWP);
	P(UFFDIO_RWPROTECT_MODE_RWP);
	P(UFFDIO_RWPROTECT_MODE_DONTWAKE);
	P(UFFD_EVENT_PAGEFAULT);
	P(UFFD_PAGEFAULT_FLAG_WRITE);
	P(UFFD_PAGEFAULT_FLAG_WP);
	P(UFFD_PAGEFAULT_FLAG_MINOR);
	P(UFFD_PAGEFAULT_FLAG_RWP);
	P(_UFFDIO_RWPROTECT);
	P(__NR_userfaultfd);
	P(__NR_move_pages);
	SZ(uffdio_api);
	SZ(uffdio_register);
	SZ(uffdio_range);
	SZ(uffdio_rwprotect);
	SZ(uffdio_set_mode);
	SZ(uffd_msg);
	SZ(uffdio_zeropage);
	SZ(uffdio_move);
	OFF(uffdio_zeropage, zeropage, "zeropage");
	OFF(uffdio_move, move, "move");
	OFF(uffd_msg, arg.pagefault.flags, "flags");
	OFF(uffd_msg, arg.pagefault.address, "address");
	OFF(uffd_msg, arg.pagefault.feat.ptid, "ptid");
	OFF(uffdio_register, ioctls, "ioctls");
	OFF(uffdio_rwprotect, mode, "mode");
	return 0;
}
