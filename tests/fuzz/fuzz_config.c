/*
 * fuzz_config.c - the configuration reader on arbitrary file contents.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.conf", 0);
	char path[64], err[1024];
	struct eb_config cfg;

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (eb_config_load(path, &cfg, err, sizeof(err)))
			eb_config_free(&cfg);
	}
	close(fd);
	return 0;
}
