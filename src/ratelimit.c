/*
 * ratelimit.c - the token buckets of SPEC §9.
 *
 * Each configured key's bucket is one 32-byte record in a file of its own
 * under rate_state_dir, named by a hash of the key's configured hash.  A
 * check is one read-modify-write of that record under an exclusive flock(2)
 * (the kernel drops it when a process dies, so a crash mid-update wedges
 * nobody; a holder that stopped is waited for 10 ms at most), behind a mutex for the threads of one process (a flock belongs
 * to the open file, which the threads share).  The record is read and
 * written with pread/pwrite, never mapped: a file truncated under a mapping
 * would kill the worker with SIGBUS at its next access.
 *
 * A record that does not check out (a wrong magic or checksum, a short
 * file) is a full bucket, written anew; a file deleted or replaced is
 * noticed by stat(2) within a second and opened again; a file that cannot
 * be opened leaves the process to limit the key alone, in memory.  None of
 * these refuses a good caller: a bucket that went wrong starts full.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "log.h"
#include "ratelimit.h"

#define NS_PER_S 1000000000ULL

/* "EBRL", then the record's version */
#define RL_MAGIC 0x4542524c00000001ULL

struct rl_record {
	uint64_t magic;
	uint64_t tat;      /* CLOCK_MONOTONIC ns at which the bucket is full */
	uint64_t interval; /* ns per token when written (for a reader) */
	uint64_t check;    /* rl_check of the three above */
};

/* One key's file, as this process has it open.  A slot is found by the
 * key's hash and the folder, and its path made once, when the slot is: the
 * file name is a SHA-256 and ten snprintf calls, nine tenths of a check's
 * instructions when it was made at every check. */
struct rl_slot {
	unsigned char key_hash[EB_SHA256_LEN];
	char *path; /* rate_state_dir "/" ratelimit_file_name(key_hash) */
	size_t dir_len;
	int fd; /* -1: not open */
	dev_t dev;
	ino_t ino;
	uint64_t checked;   /* when the path was last compared with fd */
	uint64_t local_tat; /* the bucket while the file cannot be used */
	bool complained;    /* the file's trouble was logged */
};

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rl_slot *slots;
static size_t n_slots;

static uint64_t
rl_check(const struct rl_record *r)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint64_t words[3] = {r->magic, r->tat, r->interval};

	for (int i = 0; i < 3; i++) {
		h ^= words[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

static long
ceil_seconds(uint64_t ns)
{
	return (long)((ns + NS_PER_S - 1) / NS_PER_S);
}

void
rl_take(uint64_t *tat, uint64_t now, uint64_t interval_ns, long burst, struct rl_verdict *v)
{
	uint64_t span = interval_ns * (uint64_t)burst; /* a full bucket, in time */
	uint64_t base, next;

	v->limited = true;
	v->limit = burst;
	/* no bucket holds more than span: a corrupt record, or a clock that
	 * started again (a reboot with the files kept) */
	if (*tat > now + span)
		*tat = now;
	base = *tat > now ? *tat : now;
	next = base + interval_ns;
	if (next - now <= span) {
		*tat = next;
		v->allowed = true;
		v->remaining = (long)((now + span - next) / interval_ns);
		v->reset_seconds = ceil_seconds(next - now);
		v->retry_after = 0;
		return;
	}
	v->allowed = false;
	v->remaining = 0;
	v->reset_seconds = ceil_seconds(base - now);
	v->retry_after = ceil_seconds(next - now - span);
	if (v->retry_after < 1)
		v->retry_after = 1;
}

uint64_t
ratelimit_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

void
ratelimit_file_name(const unsigned char key_hash[EB_SHA256_LEN], char *buf, size_t len)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	char hex[17];

	/* a hash of the hash: the state folder may be easier to read than
	 * the config, and need not show which keys it holds */
	SHA256(key_hash, EB_SHA256_LEN, d);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	snprintf(buf, len, "bucket-%s", hex);
}

/* Whether s is the slot of key_hash's file in dir. */
static bool
slot_is(const struct rl_slot *s, const unsigned char *key_hash, const char *dir, size_t dir_len)
{
	return s->dir_len == dir_len && memcmp(s->key_hash, key_hash, EB_SHA256_LEN) == 0 &&
	       memcmp(s->path, dir, dir_len) == 0;
}

/* This process's slot for key_hash's file in dir, made when new; NULL when
 * memory runs out or the path would be too long. */
static struct rl_slot *
slot_for(const unsigned char *key_hash, const char *dir)
{
	size_t dir_len = strlen(dir);
	struct rl_slot *grown, *s;
	char name[32];
	size_t len;

	for (size_t i = 0; i < n_slots; i++)
		if (slot_is(&slots[i], key_hash, dir, dir_len))
			return &slots[i];
	ratelimit_file_name(key_hash, name, sizeof(name));
	len = dir_len + 1 + strlen(name) + 1;
	if (len > 4096)
		return NULL;
	grown = realloc(slots, (n_slots + 1) * sizeof(*slots));
	if (grown == NULL)
		return NULL;
	slots = grown;
	s = &slots[n_slots];
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->path = malloc(len);
	if (s->path == NULL)
		return NULL;
	snprintf(s->path, len, "%s/%s", dir, name);
	memcpy(s->key_hash, key_hash, EB_SHA256_LEN);
	s->dir_len = dir_len;
	n_slots++;
	return s;
}

static void
slot_close(struct rl_slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

__attribute__((cold)) static void
complain(struct rl_slot *s, const char *what, int err)
{
	if (s->complained)
		return;
	s->complained = true;
	log_msg("rate limit state %s: %s: %s; this process limits the key alone until it can "
		"be used",
		s->path, what, strerror(err));
}

/* Open (or create) the slot's file; false when it cannot be used. */
static bool
slot_open(struct rl_slot *s, const char *dir)
{
	struct stat st;

	slot_close(s);
	s->fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0 && errno == ENOENT && mkdir(dir, 0700) == 0)
		s->fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0)
		return complain(s, "cannot open", errno), false;
	if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		complain(s, "not a regular file", EINVAL);
		slot_close(s);
		return false;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return true;
}

/* The slot's file is open and, as of at most a second ago, still the one
 * at its path (not deleted, not replaced), else opened anew.  A stat(2) per
 * request would be a fifth of the check's system calls: a file deleted or
 * replaced is so followed within a second. */
static bool
slot_ready(struct rl_slot *s, const char *dir, uint64_t now)
{
	struct stat st;

	if (s->fd >= 0 && now - s->checked < NS_PER_S && now >= s->checked)
		return true;
	s->checked = now;
	if (s->fd >= 0 && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		return true;
	return slot_open(s, dir);
}

/* Tries at taking the lock, RL_LOCK_PAUSE_NS apart: the lock is held for
 * microseconds, so 10 ms without it means a holder that is stopped (SIGSTOP,
 * a debugger), and waiting on would stop every worker of the host too. */
#define RL_LOCK_TRIES 200
#define RL_LOCK_PAUSE_NS 50000

static bool
lock_file(int fd)
{
	struct timespec pause = {0, RL_LOCK_PAUSE_NS};

	for (int i = 0; i < RL_LOCK_TRIES; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return false;
		nanosleep(&pause, NULL);
	}
	errno = ETIMEDOUT;
	return false;
}

/* One locked read-modify-write of the record; false on an I/O error, or
 * when the lock is not to be had. */
static bool
file_take(struct rl_slot *s, uint64_t now, uint64_t interval, long burst, struct rl_verdict *v)
{
	struct rl_record r;
	ssize_t got;
	bool valid, ok = true;

	if (!lock_file(s->fd))
		return complain(s, "cannot lock", errno), false;
	got = pread(s->fd, &r, sizeof(r), 0);
	valid = got == (ssize_t)sizeof(r) && r.magic == RL_MAGIC && r.check == rl_check(&r);
	if (!valid)
		r.tat = 0; /* a full bucket */
	rl_take(&r.tat, now, interval, burst, v);
	if (v->allowed || !valid) {
		r.magic = RL_MAGIC;
		r.interval = interval;
		r.check = rl_check(&r);
		if (pwrite(s->fd, &r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			complain(s, "cannot write", errno);
			ok = false;
		}
	}
	flock(s->fd, LOCK_UN);
	return ok;
}

void
ratelimit_check_at(const struct eb_config *cfg, size_t key, uint64_t now, struct rl_verdict *v)
{
	uint64_t interval;
	struct rl_slot *s;

	memset(v, 0, sizeof(*v));
	if (cfg->rate_per_second <= 0 || key >= cfg->n_api_keys)
		return;
	interval = NS_PER_S / (uint64_t)cfg->rate_per_second;
	pthread_mutex_lock(&rl_lock);
	s = slot_for(cfg->api_keys[key], cfg->rate_state_dir);
	if (s == NULL) {
		/* out of memory: let it through rather than refuse it */
		uint64_t full = 0;
		rl_take(&full, now, interval, cfg->rate_burst, v);
	} else if (!slot_ready(s, cfg->rate_state_dir, now) ||
		   !file_take(s, now, interval, cfg->rate_burst, v)) {
		slot_close(s);
		rl_take(&s->local_tat, now, interval, cfg->rate_burst, v);
	} else {
		s->complained = false;
	}
	pthread_mutex_unlock(&rl_lock);
}

void
ratelimit_check(const struct eb_config *cfg, size_t key, struct rl_verdict *v)
{
	if (cfg->rate_per_second <= 0) {
		memset(v, 0, sizeof(*v));
		return;
	}
	ratelimit_check_at(cfg, key, ratelimit_now(), v);
}

void
ratelimit_headers(const struct rl_verdict *v, char *buf, size_t len)
{
	int n;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (!v->limited)
		return;
	n = snprintf(buf, len,
		     "RateLimit-Limit: %ld\r\n"
		     "RateLimit-Remaining: %ld\r\n"
		     "RateLimit-Reset: %ld\r\n",
		     v->limit, v->remaining, v->reset_seconds);
	if (!v->allowed && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "Retry-After: %ld\r\n", v->retry_after);
}

void
ratelimit_close(void)
{
	pthread_mutex_lock(&rl_lock);
	for (size_t i = 0; i < n_slots; i++) {
		slot_close(&slots[i]);
		free(slots[i].path);
	}
	free(slots);
	slots = NULL;
	n_slots = 0;
	pthread_mutex_unlock(&rl_lock);
}
