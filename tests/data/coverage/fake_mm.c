/* A stand-in for an mm/ file: RWP code the way the kernel writes it. */
#include <stdbool.h>
#include <stdio.h>

#define VM_UFFD_RWP 0x1
#define VM_UFFD_WP 0x2

struct vma { unsigned long vm_flags; };

static bool userfaultfd_rwp(struct vma *v)
{
	return v->vm_flags & VM_UFFD_RWP;
}

/* krwp is slab's, not RWP: a comment naming userfaultfd_rwp is not code. */
static int krwp_count(int n)
{
	return n + 1;
}

static int do_fault(struct vma *v, bool write)
{
	int ret = 0;

	if (userfaultfd_rwp(v) && write) {
		ret = 2;
		printf("rwp write\n");
	} else if (v->vm_flags & VM_UFFD_WP) {
		ret = 3;
	}
	if (userfaultfd_rwp(v))
		ret += 10;
	return ret + krwp_count(0);
}

int main(int argc, char **argv)
{
	struct vma v = { .vm_flags = VM_UFFD_RWP };

	(void)argv;
	return do_fault(&v, argc > 5) == 11 ? 0 : 1;
}
