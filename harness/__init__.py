"""rwp-harness: build a kernel, boot it with virtme-ng and test userfaultfd RWP in it."""
