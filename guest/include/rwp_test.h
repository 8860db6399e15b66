/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the guest C programs: KTAP output, one forked child per
 * test with a deadline, and userfaultfd set-up.
 *
 * Each test runs in its own child so that a crash, a stuck fault or leaked
 * uffd state cannot spill into the next test; the parent prints the result.
 */
#ifndef RWP_TEST_H
#define RWP_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Kernels before 7.3 ship headers without RWP. The values below are the 7.3
 * UAPI; defining them lets the same program run there and skip, instead of
 * failing to compile.
 */
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
#define RWP_NO_FEATURE_REASON "kernel does not advertise UFFD_FEATURE_RWP"
/* Long enough for a TCG guest under load; a stuck fault fails, it never hangs. */
/* The default deadline of a test; the host passes its own (protocol.py). */
#define RWP_DEADLINE_S 20
#define RWP_WAIT_MS 5000

#define RWP_EXIT_PASS 0
#define RWP_EXIT_FAIL 1
#define RWP_EXIT_SKIP 4

struct rwp_test {
	const char *name;
	void (*fn)(int arg);
	int arg;
	int line;
};

#define RWP_MAX_TESTS 512
static struct rwp_test rwp_tests[RWP_MAX_TESTS];
static int rwp_ntests;
/*
 * Shared with the test child so it can hand the parent its skip reason, or
 * the finding that makes its failure expected (at offset RWP_XFAIL_AT).
 */
static char *rwp_reason;
#define RWP_XFAIL_AT 2048

static inline void rwp_register(const char *name, void (*fn)(int), int arg, int line)
{
	if (rwp_ntests < RWP_MAX_TESTS)
		rwp_tests[rwp_ntests++] = (struct rwp_test){ name, fn, arg, line };
}

/* Declares a test; tests run in the order they appear in the file. */
#define RWP_TEST(fn)							\
	static void fn(int rwp_unused);					\
	__attribute__((constructor)) static void rwp_reg_##fn(void)	\
	{ rwp_register(#fn, fn, 0, __LINE__); }				\
	static void fn(int rwp_unused __attribute__((unused)))

static inline void rwp_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

__attribute__((noreturn)) static inline void rwp_fail_at(const char *file, int line,
							 const char *fmt, ...)
{
	va_list ap;

	printf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	_exit(RWP_EXIT_FAIL);
}

__attribute__((noreturn)) static inline void rwp_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rwp_reason, 256, fmt, ap);
	va_end(ap);
	fflush(stdout);
	_exit(RWP_EXIT_SKIP);
}

/*
 * The kernel is known to break the contract here (a finding): a failure is
 * reported as XFAIL with this reason, and a pass fails, so that a fix is
 * noticed and the contract updated.
 */
#define RWP_EXPECT_FAIL(finding) snprintf(rwp_reason + RWP_XFAIL_AT, 1024, "%s", finding)

#define FAIL(...) rwp_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define SKIP(...) rwp_skip(__VA_ARGS__)
/* CHECK(cond, fmt, ...): fail the test with the message and errno if !cond. */
#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			int e_ = errno;					\
			printf("# check failed: %s (errno %d %s)\n",	\
			       #cond, e_, strerror(e_));		\
			FAIL(__VA_ARGS__);				\
		}							\
	} while (0)

static int rwp_by_line(const void *a, const void *b)
{
	const struct rwp_test *x = a, *y = b;

	return x->line != y->line ? x->line - y->line : x->arg - y->arg;
}

/* The running test's deadline: RWP_DEADLINES "name=s,..." or RWP_DEADLINE_S. */
static int rwp_deadline_s = RWP_DEADLINE_S;

static int rwp_deadline_of(const char *name)
{
	const char *all = getenv("RWP_DEADLINES"), *dflt = getenv("RWP_DEADLINE_S");
	size_t len = strlen(name);
	int v;

	for (const char *p = all; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (!strncmp(p, name, len) && p[len] == '=' && (v = atoi(p + len + 1)) > 0)
			return v;
	}
	if (dflt && (v = atoi(dflt)) > 0)
		return v;
	return RWP_DEADLINE_S;
}

static void rwp_on_alarm(int sig)
{
	static const char msg[] = "# deadline expired: the test did not finish\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(RWP_EXIT_FAIL);
}

/*
 * Batch mode (the host sets RWP_MARKS to a token): each test is bracketed in
 * the kernel log and reports its taint before and after and its own run time,
 * so that the host can judge every test of a whole program run as one
 * command, as precisely as when it runs them one by one.
 */
static const char *rwp_marks;

static void rwp_kmsg(const char *what, const char *name)
{
	char line[256];
	int fd, n;

	if (!rwp_marks)
		return;
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "rwp-harness: %s %s/%s\n", what, rwp_marks, name);
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

static long rwp_taint(void)
{
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static long long rwp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The child's own alarm cannot end a task stuck in the kernel: this can. */
#define RWP_PARENT_GRACE_S 10
static volatile sig_atomic_t rwp_parent_alarm;

static void rwp_on_parent_alarm(int sig)
{
	(void)sig;
	rwp_parent_alarm = 1;
}

static void rwp_sysrq(char c)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		(void)!write(fd, &c, 1);
		close(fd);
	}
}

/*
 * Waits for the test's child; if it outlives its deadline, dumps blocked and
 * all task stacks, says so and ends the program: the tests after it would run
 * in a kernel that may hold its locks.
 */
static int rwp_wait_child(pid_t pid, const char *name, int *status)
{
	struct sigaction sa = { .sa_handler = rwp_on_parent_alarm };

	rwp_parent_alarm = 0;
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART: waitpid returns EINTR */
	alarm(rwp_deadline_s + RWP_PARENT_GRACE_S);
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
		if (rwp_parent_alarm) {
			printf("@@RWPTIMEOUT %d %s\n", rwp_deadline_s + RWP_PARENT_GRACE_S, name);
			fflush(stdout);
			rwp_sysrq('w');
			rwp_sysrq('t');
			kill(pid, SIGKILL);
			_exit(3);
		}
	}
	alarm(0);
	return 0;
}

static int rwp_result(const struct rwp_test *t, int idx, int status);

static int rwp_run_one(const struct rwp_test *t, int idx)
{
	long taint0 = rwp_taint();
	long long t0 = rwp_now_ns();
	int status;
	pid_t pid;

	rwp_reason[0] = '\0';
	rwp_reason[RWP_XFAIL_AT] = '\0';
	rwp_deadline_s = rwp_deadline_of(t->name);
	rwp_kmsg("test-begin", t->name);
	if (rwp_marks)
		printf("@@RWPSTART %s\n", t->name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		signal(SIGALRM, rwp_on_alarm);
		alarm(rwp_deadline_s);
		t->fn(t->arg);
		fflush(stdout);
		_exit(RWP_EXIT_PASS);
	}
	if (pid < 0 || rwp_wait_child(pid, t->name, &status) < 0) {
		printf("not ok %d %s # fork/wait failed: %s\n", idx, t->name, strerror(errno));
		return 1;
	}
	rwp_kmsg("test-end", t->name);
	if (rwp_marks)
		printf("@@RWPSUB %s %ld %ld %lld\n", t->name, taint0, rwp_taint(), rwp_now_ns() - t0);
	return rwp_result(t, idx, status);
}

static int rwp_result(const struct rwp_test *t, int idx, int status)
{
	if (rwp_reason[RWP_XFAIL_AT] && !(WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_SKIP)) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_PASS) {
			printf("# expected failure did not happen: %s\n", rwp_reason + RWP_XFAIL_AT);
			printf("not ok %d %s\n", idx, t->name);
			return 1;
		}
		printf("not ok %d %s # XFAIL %s\n", idx, t->name, rwp_reason + RWP_XFAIL_AT);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_PASS) {
		printf("ok %d %s\n", idx, t->name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_SKIP) {
		printf("ok %d %s # SKIP %s\n", idx, t->name, rwp_reason);
		return 0;
	}
	if (WIFSIGNALED(status))
		printf("# killed by signal %d (%s)\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
	printf("not ok %d %s\n", idx, t->name);
	return 1;
}

/* Usage: prog [--list] [name...]: run all tests, or only those named. */
static int rwp_main(int argc, char **argv)
{
	int i, j, failed = 0, selected = 0, idx = 0;
	char want[RWP_MAX_TESTS];

	setvbuf(stdout, NULL, _IOLBF, 0);
	rwp_marks = getenv("RWP_MARKS");
	qsort(rwp_tests, rwp_ntests, sizeof(rwp_tests[0]), rwp_by_line);
	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (i = 0; i < rwp_ntests; i++)
			printf("%s\n", rwp_tests[i].name);
		return 0;
	}
	rwp_reason = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rwp_reason == MAP_FAILED)
		return 2;
	for (i = 0; i < rwp_ntests; i++) {
		want[i] = argc <= 1;
		for (j = 1; j < argc; j++)
			want[i] |= !strcmp(argv[j], rwp_tests[i].name);
		selected += want[i];
	}
	printf("KTAP version 1\n1..%d\n", selected);
	for (i = 0; i < rwp_ntests; i++)
		if (want[i])
			failed += rwp_run_one(&rwp_tests[i], ++idx);
	return failed ? 1 : 0;
}

#define RWP_MAIN int main(int argc, char **argv) { return rwp_main(argc, argv); }

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

/* ---- a thread that touches one byte, so the test can act as the handler ---- */

struct accessor {
	pthread_t thread;
	volatile char *addr;
	int write;
	char value;			/* written, or read back */
	volatile int done;
};

static void *accessor_fn(void *arg)
{
	struct accessor *a = arg;

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
	a->done = 0;
	errno = pthread_create(&a->thread, NULL, accessor_fn, a);
	CHECK(errno == 0, "pthread_create");
}

/* Wait up to timeout_ms for the access to complete; returns whether it did. */
static inline int accessor_wait(struct accessor *a, int timeout_ms)
{
	struct timespec ts = { 0, 1000 * 1000 };
	int i;

	for (i = 0; i < timeout_ms; i++) {
		if (__atomic_load_n(&a->done, __ATOMIC_ACQUIRE)) {
			pthread_join(a->thread, NULL);
			return 1;
		}
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* ---- /proc and /sys ---- */

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
		fflush(stdout);
		_exit(RWP_EXIT_PASS);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	restore(rarg);
	if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_SKIP)
		_exit(RWP_EXIT_SKIP);
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

#endif /* RWP_TEST_H */
