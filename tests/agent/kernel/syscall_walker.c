/* Test helper for tests/agent/kernel/test_syscall_walk.py: makes the system calls it is told to,
 * one per input line, and prints each one's result.
 *
 *   input:  <nr> <arg0> ... <arg5>      an arg is a decimal integer, "s:<text>" (pointer to
 *                                       that NUL-terminated text), "p:<n>" (pointer to a u64
 *                                       holding n) or "b:<n>" (pointer to n zeroed bytes)
 *   output: <nr> <result>               the kernel's return value (-errno on failure)
 *
 * The process-lifecycle calls that would otherwise take the helper with them are made for
 * real with a child that exits at once (fork, vfork, clone, clone3: the result printed is
 * the child side's, 0, the one the probe reports); rt_sigreturn is made by returning from
 * a signal handler, pause is woken by a timer signal.  "go" lines are ignored; EOF ends. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_signal(int sig) { (void)sig; }

static long raw(long nr, long *a)
{
	long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	return r == -1 ? -errno : r;
}

static long reap(pid_t pid)
{
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, __WALL);
	return 0; /* the child's side */
}

static long special(long nr, long *a, int *handled)
{
	*handled = 1;
	if (nr == SYS_fork)
		return reap(syscall(SYS_fork));
	if (nr == SYS_vfork) {
		pid_t pid = vfork();
		if (pid == 0)
			_exit(0);
		return reap(pid);
	}
	if (nr == SYS_clone)
		return reap(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
#ifdef SYS_clone3
	if (nr == SYS_clone3) {
		uint64_t args[11] = {0};
		args[4] = SIGCHLD; /* exit_signal */
		return reap(syscall(SYS_clone3, args, sizeof(args)));
	}
#endif
	if (nr == SYS_rt_sigreturn) {
		raise(SIGUSR1); /* the handler's return is the rt_sigreturn; it restores raise's 0 */
		return 0;
	}
#ifdef SYS_pause
	if (nr == SYS_pause) {
		struct itimerval it = {{0, 0}, {0, 20000}};
		setitimer(ITIMER_REAL, &it, NULL);
		return raw(nr, a);
	}
#endif
	*handled = 0;
	return 0;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[8192];
	while (fgets(line, sizeof(line), stdin)) {
		char *save = NULL, *tok = strtok_r(line, " \n", &save);
		if (!tok || !strcmp(tok, "go"))
			continue;
		long nr = strtol(tok, NULL, 10);
		long a[6] = {0};
		for (int i = 0; i < 6 && (tok = strtok_r(NULL, " \n", &save)); i++) {
			if (!strncmp(tok, "s:", 2)) {
				a[i] = (long)strdup(tok + 2);
			} else if (!strncmp(tok, "p:", 2)) {
				uint64_t *v = malloc(sizeof(*v));
				*v = strtoull(tok + 2, NULL, 0);
				a[i] = (long)v;
			} else if (!strncmp(tok, "b:", 2)) {
				a[i] = (long)calloc(1, strtoul(tok + 2, NULL, 0));
			} else {
				a[i] = strtol(tok, NULL, 0);
			}
		}
		int handled;
		long r = special(nr, a, &handled);
		if (!handled)
			r = raw(nr, a);
		printf("%ld %ld\n", nr, r);
	}
	return 0;
}
