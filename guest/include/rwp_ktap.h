/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KTAP test runner of the guest C programs (guest/py/ktest.py is its
 * Python twin): RWP_TEST declares a test, each test runs in its own forked
 * child with a deadline, and the parent prints its KTAP line. In batch mode
 * (RWP_MARKS) it writes the per-test markers of harness/parse/protocol.py.
 *
 * A child per test keeps a crash, a stuck fault or leaked uffd state out of
 * the next test.
 */
#ifndef RWP_KTAP_H
#define RWP_KTAP_H

#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Long enough for a TCG guest under load; a stuck fault fails, it never hangs. */
/* The default deadline of a test; the host passes its own (protocol.py). */
#define RWP_DEADLINE_S 20
#define RWP_WAIT_MS 5000

/* A check names its file without the build's directory. */
#ifdef __FILE_NAME__
#define RWP_FILE __FILE_NAME__
#else
#define RWP_FILE __FILE__
#endif

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
 * the finding whose check failed (at offset RWP_XFAIL_AT).
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

/*
 * The return addresses of the failing check's stack: the host turns them into
 * the calling test's line when the check is in a helper (harness/run/callsite.py).
 */
static inline void rwp_print_callers(void)
{
	void *bt[32];
	int n = backtrace(bt, 32);

	fputs("# @@RWPAT", stdout);
	for (int i = 1; i < n; i++)
		printf(" %p", bt[i]);
	fputc('\n', stdout);
}

/* A failed check's diagnostic: its file and line, the message, the callers. */
static inline void rwp_say_at(const char *file, int line, const char *fmt, va_list ap)
{
	printf("# %s:%d: ", file, line);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	rwp_print_callers();
	fflush(stdout);
}

__attribute__((noreturn)) static inline void rwp_fail_at(const char *file, int line,
							 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rwp_say_at(file, line, fmt, ap);
	va_end(ap);
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
 * The one check at which the kernel is known to break the contract (a
 * finding, docs/contract.md). The check failing is the expected failure: the
 * test stops there and reports XFAIL with the finding and this line. Any other
 * failure of the test, before or after it, a crash or a deadline included, is
 * FAIL. The check holding is noted, and a test that then passes fails with
 * "the finding looks fixed", so that a fix is noticed and the contract updated.
 */
#define FINDING(finding, cond, ...)						\
	do {									\
		if (cond)							\
			rwp_finding_held(RWP_FILE, __LINE__, finding);		\
		else								\
			rwp_finding_hit(RWP_FILE, __LINE__, finding, __VA_ARGS__); \
	} while (0)

#define RWP_EXIT_XFAIL 5
/* Set in the test child when a finding's check held (it ends the child). */
static char rwp_held[1024];

static inline void rwp_finding_held(const char *file, int line, const char *finding)
{
	snprintf(rwp_held, sizeof(rwp_held), "%s:%d: %s", file, line, finding);
}

__attribute__((noreturn)) static inline void rwp_finding_hit(const char *file, int line,
							     const char *finding,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rwp_say_at(file, line, fmt, ap);
	va_end(ap);
	snprintf(rwp_reason + RWP_XFAIL_AT, 1024, "%s (%s:%d)", finding, file, line);
	fflush(stdout);
	_exit(RWP_EXIT_XFAIL);
}

/*
 * The end of a test child (or of a process a test forked to run its body)
 * that returned: a pass, unless a finding's check held on the way.
 */
__attribute__((noreturn)) static inline void rwp_passed(void)
{
	if (rwp_held[0]) {
		printf("# the expected failure did not happen, the finding looks fixed: %s\n",
		       rwp_held);
		fflush(stdout);
		_exit(RWP_EXIT_FAIL);
	}
	fflush(stdout);
	_exit(RWP_EXIT_PASS);
}

#define FAIL(...) rwp_fail_at(RWP_FILE, __LINE__, __VA_ARGS__)
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

/*
 * Polls cond every millisecond until it holds or ms of wall-clock time have
 * passed; its value is whether it held. Wall-clock, not a count of naps: a
 * slow or loaded guest stretches every nap.
 */
#define WAIT_UNTIL(cond, ms)							\
	({									\
		long long end_ = rwp_now_ns() + (long long)(ms) * 1000000LL;	\
		struct timespec nap_ = { 0, 1000000 };				\
		int held_;							\
		while (!(held_ = !!(cond)) && rwp_now_ns() < end_)		\
			nanosleep(&nap_, NULL);					\
		held_ || !!(cond);						\
	})

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
		rwp_passed();
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
	if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_PASS) {
		printf("ok %d %s\n", idx, t->name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_SKIP) {
		printf("ok %d %s # SKIP %s\n", idx, t->name, rwp_reason);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == RWP_EXIT_XFAIL && rwp_reason[RWP_XFAIL_AT]) {
		printf("not ok %d %s # XFAIL %s\n", idx, t->name, rwp_reason + RWP_XFAIL_AT);
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

#endif /* RWP_KTAP_H */
