/* Syscall workloads for the agent benchmark: each hammers one kind of call for
 * a fixed time and prints how many operations it completed.
 * usage: workload openclose|tmpflood|stat|forkexec|connect SECONDS
 *        workload openrate SECONDS RATE   (open+close paced at RATE opens/s)
 *        workload mixed SECONDS RATE      (paced at RATE rounds/s; a round is an open+close and a
 *                                          stat, every 8th also a loopback connect, every 128th a
 *                                          fork+exec of /bin/true)
 * tmpflood: open+close of a file of its own in /tmp (a file no rule cares about) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rst_close(int fd) {
    /* close with RST: no TIME_WAIT pile-up across runs */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void connect_once(int lfd, struct sockaddr_in *addr) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)addr, sizeof(*addr)) == 0) {
        int s = accept(lfd, NULL, NULL);
        if (s >= 0)
            rst_close(s);
    }
    rst_close(c);
}

static void fork_exec_true(void) {
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"/bin/true", NULL};
        execv("/bin/true", args);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODE SECONDS [RATE]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    double start = now();
    double end = start + atof(argv[2]);
    double rate = argc > 3 ? atof(argv[3]) : 0;
    unsigned long long n = 0;
    int lfd = -1;
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int mixed = strcmp(mode, "mixed") == 0;
    if (strcmp(mode, "connect") == 0 || mixed) {
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 128) ||
            getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
            perror("listener");
            return 1;
        }
    }
    char tmpfile[64];
    snprintf(tmpfile, sizeof(tmpfile), "/tmp/falcopy-flood-%d", (int)getpid());
    for (;;) {
        if ((n & 63) == 0 && now() >= end)
            break;
        /* paced: ahead of schedule by a chunk of 64 ops -> sleep until it is due */
        if ((n & 63) == 0 && rate > 0) {
            double due = start + n / rate;
            double t = now();
            if (due > t) {
                struct timespec ts = {(time_t)(due - t), (long)(((due - t) - (time_t)(due - t)) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        if (mixed) {
            int fd = open("/etc/hostname", O_RDONLY);
            if (fd >= 0)
                close(fd);
            struct stat st;
            stat("/etc/hostname", &st);
            if ((n & 7) == 0)
                connect_once(lfd, &addr);
            if ((n & 127) == 0)
                fork_exec_true();
        } else if (strcmp(mode, "openrate") == 0) {
            int fd = open("/etc/hostname", O_RDONLY);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(mode, "openclose") == 0) {
            int fd = open("/etc/hostname", O_RDONLY);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(mode, "tmpflood") == 0) {
            int fd = open(tmpfile, O_RDONLY | O_CREAT, 0600);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(mode, "stat") == 0) {
            struct stat st;
            stat("/etc/hostname", &st);
        } else if (strcmp(mode, "forkexec") == 0) {
            fork_exec_true();
        } else if (strcmp(mode, "connect") == 0) {
            connect_once(lfd, &addr);
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
        n++;
    }
    unlink(tmpfile);
    printf("%llu\n", n);
    return 0;
}
