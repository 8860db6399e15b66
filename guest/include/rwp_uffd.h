/* SPDX-License-Identifier: GPL-2.0 */
/*
 * userfaultfd helpers of the guest C programs: the 7.3 UAPI where the
 * headers lack it, uffd set-up and ioctls, assertions on them, a thread that
 * touches memory so the test can act as the handler, /proc and /sys access.
 */
#ifndef RWP_UFFD_H
#define RWP_UFFD_H

#include "rwp_ktap.h"
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/*
 * Kernels before 7.3 ship headers without RWP. The values below are the 7.3
 * UAPI; defining them lets the same program run there and skip, instead of
 * failing to compile.
 */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY		1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1ULL << 15)
#endif
#ifndef UFFD_FEATURE_RWP
#define UFFD_FEATURE_RWP		(1ULL << 17)
#endif
#ifndef UFFD_FEATURE_RWP_ASYNC
#define UFFD_FEATURE_RWP_ASYNC		(1ULL << 18)
#endif
#ifndef UFFDIO_REGISTER_MODE_RWP
#define UFFDIO_REGISTER_MODE_RWP	((__u64)1 << 3)
#endif
#ifndef UFFD_PAGEFAULT_FLAG_RWP
#define UFFD_PAGEFAULT_FLAG_RWP		(1 << 3)
#endif
#ifndef UFFDIO_RWPROTECT
#define _UFFDIO_RWPROTECT		(0x09)
#define _UFFDIO_SET_MODE		(0x0A)
struct uffdio_rwprotect {
	struct uffdio_range range;
#define UFFDIO_RWPROTECT_MODE_RWP	((__u64)1 << 0)
#define UFFDIO_RWPROTECT_MODE_DONTWAKE	((__u64)1 << 1)
	__u64 mode;
};
struct uffdio_set_mode {
	__u64 enable;
	__u64 disable;
};
#define UFFDIO_RWPROTECT	_IOWR(UFFDIO, _UFFDIO_RWPROTECT, struct uffdio_rwprotect)
#define UFFDIO_SET_MODE		_IOW(UFFDIO, _UFFDIO_SET_MODE, struct uffdio_set_mode)
#endif

/* The build host's headers may predate UFFDIO_MOVE; the values are the 7.3 UAPI. */
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1ULL << 16)
#endif
#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
/* Headers before 6.6 lack UFFDIO_POISON; the values are the 7.3 UAPI. */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1ULL << 14)
#endif
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#define RWP_NO_FEATURE_REASON "kernel does not advertise UFFD_FEATURE_RWP"

/* ---- memory ---- */

static inline size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static inline char *map_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap of %zu bytes", len);
	return p;
}

/* ---- userfaultfd ---- */

static inline int uffd_open(void)
{
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	CHECK(fd >= 0, "userfaultfd()");
	return fd;
}

/* UFFDIO_API handshake; returns 0 or -errno, features and ioctls out. */
static inline int uffd_api(int fd, __u64 features, __u64 *features_out, __u64 *ioctls_out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	if (features_out)
		*features_out = api.features;
	if (ioctls_out)
		*ioctls_out = api.ioctls;
	return 0;
}

static inline __u64 uffd_kernel_features(void)
{
	__u64 features = 0;
	int fd = uffd_open();

	CHECK(uffd_api(fd, 0, &features, NULL) == 0, "UFFDIO_API with no features");
	close(fd);
	return features;
}

static inline void require_rwp(void)
{
	if (!(uffd_kernel_features() & UFFD_FEATURE_RWP))
		SKIP(RWP_NO_FEATURE_REASON);
}

/* A uffd with the API done and the given features, or the test fails. */
static inline int uffd_new(__u64 features)
{
	int fd = uffd_open();
	int err = uffd_api(fd, features, NULL, NULL);

	errno = -err;
	CHECK(err == 0, "UFFDIO_API features=0x%llx", (unsigned long long)features);
	return fd;
}

static inline int uffd_register(int fd, void *addr, size_t len, __u64 mode, __u64 *ioctls)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = mode,
	};

	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -errno;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

static inline int uffd_rwprotect(int fd, void *addr, size_t len, __u64 mode)
{
	struct uffdio_rwprotect rwp = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = mode,
	};

	return ioctl(fd, UFFDIO_RWPROTECT, &rwp) ? -errno : 0;
}

static inline int uffd_writeprotect(int fd, void *addr, size_t len, __u64 mode)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = mode,
	};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

static inline int uffd_set_mode(int fd, __u64 enable, __u64 disable)
{
	struct uffdio_set_mode m = { .enable = enable, .disable = disable };

	return ioctl(fd, UFFDIO_SET_MODE, &m) ? -errno : 0;
}

static inline int uffd_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { .start = (unsigned long)addr, .len = len };

	return ioctl(fd, UFFDIO_UNREGISTER, &r) ? -errno : 0;
}

static inline int uffd_wake(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { .start = (unsigned long)addr, .len = len };

	return ioctl(fd, UFFDIO_WAKE, &r) ? -errno : 0;
}

/* UFFDIO_MOVE; 0 or -errno, the bytes moved in *moved. */
static inline int uffd_move(int fd, void *dst, void *src, size_t len, __s64 *moved)
{
	struct uffdio_move mv = {
		.dst = (unsigned long)dst, .src = (unsigned long)src, .len = len,
	};
	int err = ioctl(fd, UFFDIO_MOVE, &mv) ? -errno : 0;

	*moved = mv.move;
	return err;
}

/* Wait up to timeout_ms for one message: 1 read, 0 timed out, -errno. */
static inline int uffd_read_msg(int fd, struct uffd_msg *msg, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n = poll(&pfd, 1, timeout_ms);

	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (read(fd, msg, sizeof(*msg)) != sizeof(*msg))
		return -errno;
	return 1;
}

/* ---- assertions on uffd calls and messages ---- */

/* refused(call, err, what): call (0 or -errno) must return -err. */
#define refused(call, err, what)						\
	do {									\
		int r_ = (call);						\
		if (r_ != -(err))						\
			FAIL("%s returned %d (%s), want %s", what, r_,		\
			     r_ ? strerror(-r_) : "success", #err);		\
	} while (0)

/* An ioctl as 0 or -errno, for ok() and refused(). */
static inline int ioctl_err(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

/* ok(call, what): call returns 0 or -errno; anything but 0 fails the test. */
#define ok(call, what)								\
	do {									\
		int r_ = (call);						\
		if (r_)								\
			FAIL("%s: %s", what, strerror(-r_));			\
	} while (0)

static inline void arm(int fd, void *addr, size_t len)
{
	ok(uffd_rwprotect(fd, addr, len, UFFDIO_RWPROTECT_MODE_RWP), "RWPROTECT(RWP)");
}

static inline void disarm(int fd, void *addr, size_t len)
{
	ok(uffd_rwprotect(fd, addr, len, 0), "RWPROTECT(resolve)");
}

/* The next message, which must be a page fault with these flags at addr. */
static inline struct uffd_msg want_fault(int fd, __u64 flags, unsigned long addr)
{
	struct uffd_msg msg;
	int n = uffd_read_msg(fd, &msg, RWP_WAIT_MS);

	if (n != 1)
		FAIL("no fault message within %d ms (%d)", RWP_WAIT_MS, n);
	if (msg.event != UFFD_EVENT_PAGEFAULT)
		FAIL("event 0x%x, want a page fault", msg.event);
	if (msg.arg.pagefault.flags != flags || msg.arg.pagefault.address != addr)
		FAIL("fault flags 0x%llx at 0x%llx, want 0x%llx at 0x%lx",
		     (unsigned long long)msg.arg.pagefault.flags,
		     (unsigned long long)msg.arg.pagefault.address, (unsigned long long)flags, addr);
	return msg;
}

/* No message may be waiting now. */
static inline void want_quiet(int fd, const char *when)
{
	struct uffd_msg msg;

	if (uffd_read_msg(fd, &msg, 0) != 0)
		FAIL("%s: unexpected message (event 0x%x, flags 0x%llx at 0x%llx)", when, msg.event,
		     (unsigned long long)msg.arg.pagefault.flags,
		     (unsigned long long)msg.arg.pagefault.address);
}

/* ---- threads ---- */

static inline void thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	errno = pthread_create(t, NULL, fn, arg);
	CHECK(errno == 0, "pthread_create");
}

/* ---- a thread that touches one byte, so the test can act as the handler ---- */

struct accessor {
	pthread_t thread;
	volatile char *addr;
	int write;
	char value;			/* written, or read back */
	volatile pid_t tid;		/* the thread's id, set before it touches addr */
	volatile int done;
};

static void *accessor_fn(void *arg)
{
	struct accessor *a = arg;

	__atomic_store_n(&a->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	if (a->write)
		*a->addr = a->value;
	else
		a->value = *a->addr;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static inline void accessor_start(struct accessor *a, void *addr, int write, char value)
{
	a->addr = addr;
	a->write = write;
	a->value = value;
	a->tid = 0;
	a->done = 0;
	thread_start(&a->thread, accessor_fn, a);
}

/* Wait up to timeout_ms for the access to complete; returns whether it did. */
static inline int accessor_wait(struct accessor *a, int timeout_ms)
{
	if (!WAIT_UNTIL(__atomic_load_n(&a->done, __ATOMIC_ACQUIRE), timeout_ms))
		return 0;
	pthread_join(a->thread, NULL);
	return 1;
}

/* ---- an access blocked on an RWP fault ---- */

/* The next message is a fault with flags at addr, and access a is still blocked. */
static inline void want_blocked(int fd, struct accessor *a, __u64 flags, unsigned long addr)
{
	want_fault(fd, flags, addr);
	CHECK(!__atomic_load_n(&a->done, __ATOMIC_ACQUIRE), "the access finished while protected");
}

/* Starts a reader of p and sees it block with an RWP fault at fault_addr. */
static inline void reader_blocked(int fd, struct accessor *a, void *p, unsigned long fault_addr)
{
	accessor_start(a, p, 0, 0);
	want_blocked(fd, a, UFFD_PAGEFAULT_FLAG_RWP, fault_addr);
}

/*
 * An access of p from another thread (a read, or a write of value) blocks with
 * an RWP fault at fault_addr; resolving the len-aligned block holding
 * fault_addr (len: a page, or a THP or hugetlb unit) lets it finish.
 */
static inline struct accessor access_blocks_until_resolved(int fd, void *p, int write, char value,
							     unsigned long fault_addr, size_t len)
{
	struct accessor a;

	CHECK(len && !(len & (len - 1)), "resolve length %zu is not a power of two", len);
	accessor_start(&a, p, write, value);
	want_blocked(fd, &a, UFFD_PAGEFAULT_FLAG_RWP | (write ? UFFD_PAGEFAULT_FLAG_WRITE : 0),
		     fault_addr);
	/* A thread woken without a resolve would finish in this time: it must not. */
	CHECK(!accessor_wait(&a, 100), "the %s of %p finished before the resolve",
	      write ? "write" : "read", p);
	disarm(fd, (void *)(fault_addr & ~(len - 1)), len);
	CHECK(accessor_wait(&a, RWP_WAIT_MS), "the %s of %p did not resume after the resolve",
	      write ? "write" : "read", p);
	return a;
}

/* The same for a read, which must return want (or ANY_BYTE). */
#define ANY_BYTE 0x100
static inline void read_blocks_until_resolved(int fd, void *p, unsigned long fault_addr,
					      size_t len, int want)
{
	struct accessor a = access_blocks_until_resolved(fd, p, 0, 0, fault_addr, len);

	CHECK(want == ANY_BYTE || a.value == (char)want, "read 0x%x at %p after the resolve, want 0x%x",
	      a.value & 0xff, p, want & 0xff);
}

/* ---- /proc and /sys ---- */

/* The API line of the fd's fdinfo ("aa:features:ioctls"). */
static inline void fdinfo_api(int fd, char *buf, size_t len)
{
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	CHECK(f != NULL, "open %s", path);
	buf[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "API:\t", 5))
			snprintf(buf, len, "%s", line + 5);
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	CHECK(buf[0], "fdinfo of fd %d has no API line", fd);
}

/* The first line of a small file, without its newline; 0 or -errno. */
static inline int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static inline int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -errno : 0;
}

/*
 * A system-wide knob (a sysctl, a sysfs or debugfs file) a test changes:
 * setting_read() keeps its value, settings_restore() writes every kept value
 * back. A choice file lists its choices as "a [b] c": its value is the
 * bracketed one.
 */
struct setting {
	const char *path;
	int choice;
	char value[256];
	int saved;
};

/* 0, or -errno if the file cannot be read (-EINVAL: a choice file without a choice). */
static inline int setting_read(struct setting *s)
{
	char *lb, *rb;
	int err = read_text(s->path, s->value, sizeof(s->value));

	if (err)
		return err;
	if (s->choice) {
		lb = strchr(s->value, '[');
		rb = lb ? strchr(lb, ']') : NULL;
		if (!rb)
			return -EINVAL;
		*rb = '\0';
		memmove(s->value, lb + 1, strlen(lb + 1) + 1);
	}
	s->saved = 1;
	return 0;
}

/* The restore of run_then_restore() for an array of settings ended by a NULL path. */
static inline void settings_restore(void *arg)
{
	for (struct setting *s = arg; s->path; s++)
		if (s->saved && write_text(s->path, s->value))
			printf("# could not restore %s to %s\n", s->path, s->value);
}

/* ---- processes ---- */

/* Waits up to ms for pid; returns 1 with *status, or 0 if it is still running. */
static inline int wait_pid_ms(pid_t pid, int *status, int ms)
{
	pid_t r = 0;

	WAIT_UNTIL((r = waitpid(pid, status, WNOHANG)) != 0, ms);
	CHECK(r == 0 || r == pid, "waitpid %d", pid);
	return r == pid;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Passes fd to the process at the other end of a unix socket (SCM_RIGHTS). */
static inline void send_fd(int sock, int fd)
{
	char data = 'F', cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &data, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	CHECK(sendmsg(sock, &msg, 0) == 1, "sendmsg SCM_RIGHTS");
}

/* The fd the other end passed, waiting RWP_WAIT_MS at most. */
static inline int recv_fd(int sock)
{
	char data, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &data, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fd;

	CHECK(poll(&pfd, 1, RWP_WAIT_MS) == 1, "no fd from the other process within %d ms",
	      RWP_WAIT_MS);
	CHECK(recvmsg(sock, &msg, 0) == 1, "recvmsg");
	c = CMSG_FIRSTHDR(&msg);
	CHECK(c && c->cmsg_type == SCM_RIGHTS, "no SCM_RIGHTS in the message");
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * fork() from a thread: with UFFD_FEATURE_EVENT_FORK it blocks until the FORK
 * message is read, so the test reads it meanwhile, then forker_join()s. The
 * child runs child(arg), which ends it with _exit().
 */
struct forker {
	pthread_t thread;
	void (*child)(void *);
	void *arg;
	volatile pid_t pid;
};

static void *rwp_forker_fn(void *p)
{
	struct forker *f = p;
	pid_t pid = fork();

	if (pid == 0) {
		f->child(f->arg);
		_exit(0);
	}
	f->pid = pid;
	return NULL;
}

static inline void forker_start(struct forker *f)
{
	fflush(stdout);
	thread_start(&f->thread, rwp_forker_fn, f);
}

static inline pid_t forker_join(struct forker *f)
{
	pthread_join(f->thread, NULL);
	CHECK(f->pid > 0, "fork failed");
	return f->pid;
}

/*
 * Runs fn in a child and then always runs restore, even if fn failed or
 * hung: a test that changes a system-wide setting must not leave it changed
 * for the tests after it. The child's result becomes the test's result.
 */
static inline void run_then_restore(void (*fn)(void *), void *arg, void (*restore)(void *), void *rarg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		restore(rarg);
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		alarm(rwp_deadline_s > 10 ? rwp_deadline_s - 5 : rwp_deadline_s);
		fn(arg);
		rwp_passed();
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	restore(rarg);
	/* A skip, or a finding's expected failure (its reason is in shared memory), ends the test so. */
	if (WIFEXITED(status) && (WEXITSTATUS(status) == RWP_EXIT_SKIP ||
				  WEXITSTATUS(status) == RWP_EXIT_XFAIL))
		_exit(WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		FAIL("the test's child died by signal %d (%s)", WTERMSIG(status),
		     WTERMSIG(status) == SIGALRM ? "deadline" : strsignal(WTERMSIG(status)));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_PASS,
	      "the test's child failed (status 0x%x)", status);
}

/*
 * The first active swap device and its priority; the test skips without one,
 * because everything it would check depends on pages reaching swap.
 */
static inline void require_swap(char *dev, size_t len, int *prio)
{
	char line[256], name[200], type[32];
	long size, used;
	int p;
	FILE *f = fopen("/proc/swaps", "r");

	CHECK(f != NULL, "open /proc/swaps");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%199s %31s %ld %ld %d", name, type, &size, &used, &p) == 5) {
			fclose(f);
			if (dev)
				snprintf(dev, len, "%s", name);
			if (prio)
				*prio = p;
			return;
		}
	}
	fclose(f);
	SKIP("no active swap device (/proc/swaps is empty)");
}

#endif /* RWP_UFFD_H */
