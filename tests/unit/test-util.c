/*
 * test-util.c - activity ids are version 4 UUIDs, distinct, and a child of
 * fork() never repeats its parent's (the random bytes come from a pool);
 * a log line carries the process's own id, in a child of fork() too (the
 * id is asked once).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static void
assert_uuid4(const char *u)
{
	assert_int_equal(strlen(u), UUID_TEXT_LEN);
	for (int i = 0; i < UUID_TEXT_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", u[i]));
	}
	assert_int_equal(u[14], '4');
	assert_non_null(strchr("89ab", u[19]));
}

static void
test_uuids_are_version_4_and_distinct(void **state)
{
	enum { N = 1000 }; /* many pools' worth */
	static char ids[N][UUID_TEXT_LEN + 1];

	(void)state;
	for (int i = 0; i < N; i++) {
		util_uuid4(ids[i]);
		assert_uuid4(ids[i]);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
}

/* What a child of fork() writes to a pipe, read whole; its exit status 0.
 * Returns the child's id. */
static pid_t
from_child(void (*child)(int fd), char *buf, size_t len)
{
	int fds[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child(fds[1]);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + got, len - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	return pid;
}

static void
child_uuid(int fd)
{
	char id[UUID_TEXT_LEN + 1];

	util_uuid4(id);
	if (write(fd, id, UUID_TEXT_LEN) != UUID_TEXT_LEN)
		_exit(1);
}

static void
test_a_forked_child_never_repeats_its_parents_uuids(void **state)
{
	char parent[UUID_TEXT_LEN + 1], child[64];

	(void)state;
	util_uuid4(parent); /* the pool holds more now */
	from_child(child_uuid, child, sizeof(child));
	util_uuid4(parent); /* what the child would have taken from it */
	assert_uuid4(child);
	assert_string_not_equal(parent, child);
}

static void
child_log(int fd)
{
	if (dup2(fd, STDERR_FILENO) < 0)
		_exit(1);
	log_msg("from the child");
}

static void
test_the_log_line_carries_the_pid_in_a_forked_child_too(void **state)
{
	char text[256];
	pid_t child;

	(void)state;
	log_msg("from the parent"); /* the id is asked now */
	child = from_child(child_log, text, sizeof(text));
	assert_int_equal(strncmp(text, "events-batch[", 13), 0);
	assert_int_equal(strtol(text + 13, NULL, 10), child);
	assert_non_null(strstr(text, "]: from the child\n"));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_uuids_are_version_4_and_distinct),
	cmocka_unit_test(test_a_forked_child_never_repeats_its_parents_uuids),
	cmocka_unit_test(test_the_log_line_carries_the_pid_in_a_forked_child_too),
};

int
main(void)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
