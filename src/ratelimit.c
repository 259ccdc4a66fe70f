/*
 * ratelimit.c - the token buckets of SPEC §9.
 *
 * Each configured key's bucket is one 16-byte record in a file of its own
 * under rate_state_dir, named by a hash of the key's configured hash, and
 * mapped MAP_SHARED by every process that checks the key.  A check is one
 * compare-and-swap of the record's time word: no system call, no lock, so
 * no holder that dies or stops can wedge anybody, and no update is ever
 * seen half done.
 *
 * A mapping whose file was cut short under it kills a process with SIGBUS
 * at its next access.  The access is therefore made under a guard: a
 * SIGBUS handler (installed when a file is mapped) jumps back
 * out of a guarded access, and the check makes the file whole, maps it
 * again and takes from it once more; any other SIGBUS goes to the handling
 * that was there before.  A file found short (once a second) is made whole
 * again too.
 *
 * A record with a wrong magic is a full bucket; a file deleted or replaced
 * is noticed by stat(2) within a second and mapped again; a file that
 * cannot be used leaves the process to limit the key alone, in memory.
 * None of these refuses a good caller: a bucket that went wrong starts full,
 * and a time word that is garbage is either one a bucket can hold (then it
 * refills within one interval per missing token) or a full bucket.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "log.h"
#include "outbuf.h"
#include "ratelimit.h"

/* The record is shared between processes by atomic operations on it:
 * where 64-bit ones take a lock of the process's own, they would not be. */
#if !defined(__GCC_ATOMIC_LLONG_LOCK_FREE) || __GCC_ATOMIC_LLONG_LOCK_FREE != 2
#error "rate limits need lock-free 64-bit atomic operations"
#endif

#define NS_PER_S 1000000000ULL

/* "EBRL", then the record's version */
#define RL_MAGIC 0x4542524c00000002ULL

struct rl_record {
	uint64_t magic;
	uint64_t tat; /* CLOCK_MONOTONIC ns at which the bucket is full */
};

/* One key's file, as this process has it mapped.  A slot is found by the
 * key's hash and the folder, and its path made once, when the slot is: the
 * file name is a SHA-256 and ten snprintf calls, nine tenths of a check's
 * instructions when it was made at every check. */
struct rl_slot {
	unsigned char key_hash[EB_SHA256_LEN];
	char *path; /* rate_state_dir "/" ratelimit_file_name(key_hash) */
	size_t dir_len;
	struct rl_record *rec; /* the mapping; NULL: none */
	dev_t dev;
	ino_t ino;
	uint64_t checked;   /* when the path was last compared with rec's file */
	uint64_t local_tat; /* the bucket while the file cannot be used */
	bool complained;    /* the file's trouble was logged */
};

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rl_slot *slots;
static size_t n_slots;

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
	s->path = malloc(len);
	if (s->path == NULL)
		return NULL;
	snprintf(s->path, len, "%s/%s", dir, name);
	memcpy(s->key_hash, key_hash, EB_SHA256_LEN);
	s->dir_len = dir_len;
	n_slots++;
	return s;
}

/* The guard of an access to a mapping (see the head of the file): where
 * the SIGBUS handler jumps to, set only while the access runs. */
static __thread sigjmp_buf *guard_jump;
static struct sigaction before_guard; /* SIGBUS's handling before ours */

static void
on_sigbus(int sig, siginfo_t *info, void *context)
{
	sigjmp_buf *jump = guard_jump;

	(void)sig, (void)info, (void)context;
	if (jump != NULL) {
		guard_jump = NULL;
		siglongjmp(*jump, 1);
	}
	/* not a guarded access: the old handling, at the fault that comes
	 * again when this returns */
	sigaction(SIGBUS, &before_guard, NULL);
}

/* Make on_sigbus SIGBUS's handler, unless it is: at every mapping, since
 * whatever set another one since (a test harness, a library) set ours
 * aside. */
static void
install_guard(void)
{
	struct sigaction sa;

	if (sigaction(SIGBUS, NULL, &sa) == 0 && (sa.sa_flags & SA_SIGINFO) &&
	    sa.sa_sigaction == on_sigbus)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	/* SA_NODEFER: the jump leaves the handler without restoring the
	 * mask, and a SIGBUS blocked at the next fault would kill outright */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &before_guard);
}

static void
slot_unmap(struct rl_slot *s)
{
	if (s->rec != NULL)
		munmap(s->rec, sizeof(*s->rec));
	s->rec = NULL;
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

/* Map the slot's file, made (or made whole again) when it is missing or
 * short; false when it cannot be used. */
static bool
slot_map(struct rl_slot *s, const char *dir)
{
	struct stat st;
	void *rec;
	int fd;

	slot_unmap(s);
	fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT && mkdir(dir, 0700) == 0)
		fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return complain(s, "cannot open", errno), false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		complain(s, "not a regular file", EINVAL);
		close(fd);
		return false;
	}
	/* a new file is all zeros: a wrong magic, and a full bucket */
	if (st.st_size < (off_t)sizeof(struct rl_record) &&
	    ftruncate(fd, sizeof(struct rl_record)) != 0) {
		complain(s, "cannot write", errno);
		close(fd);
		return false;
	}
	install_guard();
	rec = mmap(NULL, sizeof(struct rl_record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (rec == MAP_FAILED)
		return complain(s, "cannot map", errno), false;
	s->rec = rec;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return true;
}

/* The slot's file is mapped and, as of at most a second ago, still the one
 * at its path (not deleted, replaced or cut short), else mapped anew.  A
 * stat(2) per request would be the check's only system call: a file
 * deleted, replaced or cut short is so followed within a second. */
static bool
slot_ready(struct rl_slot *s, const char *dir, uint64_t now)
{
	struct stat st;

	if (s->rec != NULL && now - s->checked < NS_PER_S && now >= s->checked)
		return true;
	s->checked = now;
	if (s->rec != NULL && stat(s->path, &st) == 0 && st.st_dev == s->dev &&
	    st.st_ino == s->ino && st.st_size >= (off_t)sizeof(struct rl_record))
		return true;
	return slot_map(s, dir);
}

/* One atomic take from the mapped record; false when its file was cut
 * short under the mapping (the guard caught the SIGBUS). */
static bool
shared_take(struct rl_record *rec, uint64_t now, uint64_t interval, long burst,
	    struct rl_verdict *v)
{
	sigjmp_buf jump;
	uint64_t magic, seen, want;

	if (sigsetjmp(jump, 0) != 0)
		return false;
	guard_jump = &jump;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	magic = __atomic_load_n(&rec->magic, __ATOMIC_RELAXED);
	seen = __atomic_load_n(&rec->tat, __ATOMIC_RELAXED);
	if (magic != RL_MAGIC &&
	    __atomic_compare_exchange_n(&rec->magic, &magic, RL_MAGIC, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED) &&
	    __atomic_compare_exchange_n(&rec->tat, &seen, 0, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		seen = 0; /* a record made anew: a full bucket */
	do {
		want = seen;
		rl_take(&want, now, interval, burst, v);
	} while (v->allowed && !__atomic_compare_exchange_n(&rec->tat, &seen, want, true,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guard_jump = NULL;
	return true;
}

/* A take from the slot's file; false when it cannot be used.  A file cut
 * short under the mapping is made whole and tried once more, so that the
 * request still draws from the bucket every process shares. */
static bool
file_take(struct rl_slot *s, const char *dir, uint64_t now, uint64_t interval, long burst,
	  struct rl_verdict *v)
{
	if (!slot_ready(s, dir, now))
		return false;
	if (shared_take(s->rec, now, interval, burst, v))
		return true;
	return slot_map(s, dir) && shared_take(s->rec, now, interval, burst, v);
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
	} else if (!file_take(s, cfg->rate_state_dir, now, interval, cfg->rate_burst, v)) {
		slot_unmap(s);
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

/* "name: v\r\n" at p; the end of it.  name is a literal. */
#define PUT_HEADER(p, name, v) put_header((p), "" name ": ", sizeof(name ": ") - 1, (v))

static char *
put_header(char *p, const char *name, size_t name_len, long v)
{
	memcpy(p, name, name_len);
	p = out_decimal(p + name_len, v < 0 ? 0 : v);
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

void
ratelimit_headers(const struct rl_verdict *v, char buf[RATELIMIT_HEADERS_MAX])
{
	char *p = buf;

	if (v->limited) {
		p = PUT_HEADER(p, "RateLimit-Limit", v->limit);
		p = PUT_HEADER(p, "RateLimit-Remaining", v->remaining);
		p = PUT_HEADER(p, "RateLimit-Reset", v->reset_seconds);
		if (!v->allowed)
			p = PUT_HEADER(p, "Retry-After", v->retry_after);
	}
	*p = '\0';
}

void
ratelimit_close(void)
{
	pthread_mutex_lock(&rl_lock);
	for (size_t i = 0; i < n_slots; i++) {
		slot_unmap(&slots[i]);
		free(slots[i].path);
	}
	free(slots);
	slots = NULL;
	n_slots = 0;
	pthread_mutex_unlock(&rl_lock);
}
