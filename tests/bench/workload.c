/* Syscall workloads for the agent benchmark: each hammers one kind of call for
 * a fixed time and prints how many operations it completed.
 * usage: workload openclose|tmpflood|stat|forkexec|connect|mixed SECONDS
 *        workload openrate SECONDS RATE   (open+close paced at RATE opens/s)
 * tmpflood: open+close of a file of its own in /tmp (a file no rule cares about);
 * mixed: per 64 ops, 60 open+close, 2 stat, 1 connect, 1 fork+exec */
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
    if (strcmp(mode, "connect") == 0) {
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
        if (strcmp(mode, "mixed") == 0) {
            /* one op of the mix, chosen by position in the 64-op round */
            unsigned k = n & 63;
            const char *one = k < 60 ? "openclose" : k < 62 ? "stat" : k == 62 ? "connect" : "forkexec";
            if (strcmp(one, "connect") == 0 && lfd < 0) {
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
            if (strcmp(one, "openclose") == 0) {
                int fd = open(tmpfile, O_RDONLY | O_CREAT, 0600);
                if (fd >= 0)
                    close(fd);
            } else if (strcmp(one, "stat") == 0) {
                struct stat st;
                stat(tmpfile, &st);
            } else if (strcmp(one, "connect") == 0) {
                int c = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
                    int s = accept(lfd, NULL, NULL);
                    if (s >= 0)
                        rst_close(s);
                }
                rst_close(c);
            } else {
                pid_t pid = fork();
                if (pid == 0) {
                    char *args[] = {"/bin/true", NULL};
                    execv("/bin/true", args);
                    _exit(127);
                }
                if (pid > 0)
                    waitpid(pid, NULL, 0);
            }
            n++;
            continue;
        }
        if (strcmp(mode, "openrate") == 0) {
            /* paced: ahead of schedule by a chunk of 64 ops -> sleep until it is due */
            if ((n & 63) == 0 && rate > 0) {
                double due = start + n / rate;
                double t = now();
                if (due > t) {
                    struct timespec ts = {(time_t)(due - t), (long)(((due - t) - (time_t)(due - t)) * 1e9)};
                    nanosleep(&ts, NULL);
                }
            }
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
            pid_t pid = fork();
            if (pid == 0) {
                char *args[] = {"/bin/true", NULL};
                execv("/bin/true", args);
                _exit(127);
            }
            if (pid > 0)
                waitpid(pid, NULL, 0);
        } else if (strcmp(mode, "connect") == 0) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
                int s = accept(lfd, NULL, NULL);
                if (s >= 0)
                    rst_close(s);
            }
            rst_close(c);
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
