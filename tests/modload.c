/* Test helper: tries to load a kernel module both ways, as insmod/modprobe would, and
 * prints what the kernel answered (ENOSYS without CONFIG_MODULES; ENOEXEC elsewhere:
 * neither image is a module, so nothing is ever loaded). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	static char image[64]; /* zeros: not an ELF object */
	long r = syscall(SYS_init_module, image, sizeof(image), "");
	printf("init_module %ld\n", r == -1 ? -errno : r);
	int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
	r = syscall(SYS_finit_module, fd, "", 0);
	printf("finit_module %ld\n", r == -1 ? -errno : r);
	return 0;
}
