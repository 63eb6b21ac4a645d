/*
 * `mags-guest fs serve`: the files API's small operations answered by one long-lived process per
 * sandbox, so a small read or write costs one round trip through the guest agent instead of a new
 * process. It runs where the one-shot `fs` operations run (started by the daemon with Sandbox.spawn,
 * in the sandbox's root, mount namespace and user), through the same functions of guest-fs.c, so
 * paths resolve and fail exactly as they do there.
 *
 * Requests come on stdin, answers go to stdout, both as frames (integers big-endian):
 *
 *   request  u32 id | u8 op | u32 length | `length` bytes: NUL-terminated arguments, then (write) the data
 *   answer   u32 id | u8 status | u32 length | `length` bytes
 *
 *   op  arguments                                   answer payload (status 0)
 *   s   PATH                                        the entry line
 *   l   PATH DEPTH LIMIT                            the entry lines (status 2 past LIMIT bytes)
 *   r   PATH OFFSET LENGTH LIMIT                    the read header line, then the bytes (status 2
 *                                                   when more than LIMIT bytes would be sent)
 *   w   PATH MODE PARENTS SIZE, then the body       the entry line (temporary file renamed over PATH)
 *   d   PATH RECURSIVE                              nothing
 *   m   PATH PARENTS MODE                           the entry line
 *   v   FROM TO OVERWRITE                           the entry line
 *
 *   status 0 = done, 1 = failed (payload `CODE message`, CODE as the one-shot operations report
 *   it), 2 = too large to answer here (the host runs the one-shot operation, which streams).
 *
 * A pool of threads (at most SERVE_THREADS) takes turns reading stdin: the thread that read a
 * request runs it and answers, while an idle one reads the next (one is started when none is idle),
 * so an operation stuck on a slow file system or a huge tree delays only its own answer, and a
 * request costs no hand-off between threads. Answers are written whole under a lock, in the order
 * they finish. A malformed frame ends the process (the host starts a new one). On EOF every thread
 * finishes what it runs and ends; then the process exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "guest-fs.h"

#define SERVE_THREADS 64
/* Largest request payload: a write of up to 1 MiB plus its arguments (the host sends at most 256 KiB). */
#define SERVE_MAX_REQUEST (1024 * 1024 + 16 * 1024)
/* Largest answer the host asks for (a read's or a listing's LIMIT is clipped to it). */
#define SERVE_MAX_ANSWER (4 * 1024 * 1024)
#define SERVE_STACK (1024 * 1024)

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
/* Held by the thread reading stdin. */
static pthread_mutex_t read_lock = PTHREAD_MUTEX_INITIALIZER;
/* Guards the counts below; `all_done` is signalled when the last thread ended. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int threads_total, threads_idle, threads_live;
static pthread_attr_t thread_attr;
/* Each thread's temporary file while it writes one (removed by the signal handler on SIGTERM). */
static char tmp_paths[SERVE_THREADS][PATH_MAX + 64];
static unsigned tmp_seq;

struct job {
  uint32_t id;
  char op;
  /* The thread's index: its entry in tmp_paths. */
  int slot;
  uint32_t len;
  char *payload;
};

static void drop_tmps(int sig) {
  for (int i = 0; i < SERVE_THREADS; i++) if (tmp_paths[i][0]) unlink(tmp_paths[i]);
  _exit(128 + sig);
}

static void put_u32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void answer(uint32_t id, int status, const char *data, size_t n) {
  unsigned char head[9];
  put_u32(head, id);
  head[4] = (unsigned char)status;
  put_u32(head + 5, (uint32_t)n);
  pthread_mutex_lock(&out_lock);
  int bad = write_all(1, (const char *)head, sizeof head) != 0 || (n && write_all(1, data, n) != 0);
  pthread_mutex_unlock(&out_lock);
  if (bad) drop_tmps(0); /* the host went away */
}

/* Splits `n` bytes into `want` NUL-terminated strings; returns where the rest (data) starts, or NULL. */
static const char *split_args(const char *p, size_t n, const char **args, int want) {
  const char *end = p + n;
  for (int i = 0; i < want; i++) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) return NULL;
    args[i] = p;
    p = z + 1;
  }
  return p;
}

static size_t clip_limit(long long v) { return v < 0 ? 0 : v > SERVE_MAX_ANSWER ? SERVE_MAX_ANSWER : (size_t)v; }

/* A read answered whole: fs_read's checks and header, the bytes inline (status 2 past `limit`). */
static int serve_read(struct fs_capture *c, const char *path, long long offset, long long length) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail_errno("cannot open", path);
  struct stat st;
  int r = 0;
  if (fstat(fd, &st) != 0) r = fail_errno("cannot stat", path);
  else if (S_ISDIR(st.st_mode)) r = fail("EISDIR", "is a directory:", path);
  else if (!S_ISREG(st.st_mode)) r = fail("ENOTREG", "is not a regular file:", path);
  if (r) { close(fd); return r; }
  if (offset < 0) offset = st.st_size + offset > 0 ? st.st_size + offset : 0;
  long long avail = st.st_size > offset ? st.st_size - offset : 0;
  if (length < 0 || length > avail) length = avail;
  if ((unsigned long long)length > c->limit) { close(fd); c->over = 1; return 0; }
  struct line l = {0};
  line_fmt(&l, "{\"size\":%lld", (long long)st.st_size);
  line_fmt(&l, ",\"mode\":%lld", (long long)(st.st_mode & 07777));
  line_fmt(&l, ",\"mtime\":%lld", mtime_ms(&st));
  line_fmt(&l, ",\"length\":%lld}", length);
  c->limit += 256; /* room for the header line */
  line_flush(&l);
  char *buf = realloc(c->d, c->len + (size_t)length + 1);
  if (!buf) { close(fd); return fail("EIO", "out of memory reading", path); }
  c->d = buf;
  c->cap = c->len + (size_t)length + 1;
  while (length > 0) {
    ssize_t n = pread(fd, c->d + c->len, (size_t)length, offset);
    if (n < 0) { if (errno == EINTR) continue; r = fail_errno("cannot read", path); break; }
    if (n == 0) { r = fail("ESHORT", "the file shrank while it was read:", path); break; }
    c->len += (size_t)n;
    offset += n;
    length -= n;
  }
  close(fd);
  return r;
}

/* fs_write with the body in memory: a temporary file beside PATH, renamed over it. */
static int serve_write(int slot, const char *path, long mode, int parents, long long size, const char *data, size_t n) {
  struct stat st;
  int exists = stat(path, &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return fail("EISDIR", "is a directory:", path);
  if (exists && !S_ISREG(st.st_mode)) return fail("ENOTREG", "is not a regular file:", path);
  if (parents && make_parents(path, 0755) != 0) return fail_errno("cannot create the parents of", path);
  if (size >= 0 && (long long)n != size) return fail("ESHORT", "the body ended early for", path);
  mode_t m = mode >= 0 ? (mode_t)mode : exists ? (st.st_mode & 07777) : 0644;
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  char *tmp = tmp_paths[slot];
  if (dirlen + strlen(base_name(path)) + 32 >= sizeof tmp_paths[slot]) return fail("ENAMETOOLONG", "path too long:", path);
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    unsigned seq = __atomic_fetch_add(&tmp_seq, 1, __ATOMIC_RELAXED);
    char name[PATH_MAX + 64];
    snprintf(name, sizeof name, "%.*s.%s.mags-%08lx", (int)dirlen, path, base_name(path),
             (unsigned long)((uint32_t)getpid() * 2654435761u + seq * 40503u + (uint32_t)time(NULL)));
    fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) memcpy(tmp, name, strlen(name) + 1);
    else if (errno != EEXIST) return fail_errno("cannot create a file beside", path);
  }
  if (fd < 0) return fail("EEXIST", "cannot create a temporary file beside", path);
  int r = 0;
  if (write_all(fd, data, n) != 0) r = fail_errno("cannot write", path);
  else if (fchmod(fd, m) != 0) r = fail_errno("cannot write", path);
  if (close(fd) != 0 && !r) r = fail_errno("cannot write", path);
  if (!r && rename(tmp, path) != 0) r = fail_errno("cannot replace", path);
  if (r) unlink(tmp);
  tmp[0] = 0;
  if (r) return r;
  if (lstat(path, &st) != 0) return fail_errno("cannot stat", path);
  struct line l = {0};
  put_entry(&l, path, base_name(path), &st, AT_FDCWD);
  return 0;
}

static void run(struct job *j, struct fs_capture *c) {
  const char *a[4];
  const char *rest;
  long long x = 0, y = 0, z = 0;
  long mode = -1;
  size_t n = j->len;
  const char *p = j->payload;
#define ARGS(k) ((rest = split_args(p, n, a, k)) != NULL && *a[0])
  switch (j->op) {
  case 's':
    if (ARGS(1)) { fs_stat(a[0]); return; }
    break;
  case 'l':
    if (ARGS(3) && !parse_ll(a[1], &x) && !parse_ll(a[2], &y)) { c->limit = clip_limit(y); fs_list(a[0], x); return; }
    break;
  case 'r':
    if (ARGS(4) && !parse_ll(a[1], &x) && !parse_ll(a[2], &y) && !parse_ll(a[3], &z)) { c->limit = clip_limit(z); serve_read(c, a[0], x, y); return; }
    break;
  case 'w':
    if (ARGS(4) && !parse_mode(a[1], &mode) && !parse_ll(a[2], &x) && !parse_ll(a[3], &y)) {
      serve_write(j->slot, a[0], mode, x == 1, y, rest, (size_t)(p + n - rest));
      return;
    }
    break;
  case 'd':
    if (ARGS(2) && !parse_ll(a[1], &x)) { fs_rm(a[0], x == 1); return; }
    break;
  case 'm':
    if (ARGS(3) && !parse_ll(a[1], &x) && !parse_mode(a[2], &mode)) { fs_mkdir(a[0], x == 1, mode); return; }
    break;
  case 'v':
    if (ARGS(3) && !parse_ll(a[2], &x)) { fs_mv(a[0], a[1], x == 1); return; }
    break;
  }
#undef ARGS
  fail("EINVAL", "bad arguments for fs serve op", "");
}

static void handle(struct job *j) {
  struct fs_capture c = { .limit = SERVE_MAX_ANSWER };
  fs_capture_set(&c);
  run(j, &c);
  fs_capture_set(NULL);
  if (c.failed) answer(j->id, 1, c.err, strlen(c.err));
  else if (c.over) answer(j->id, 2, NULL, 0);
  else answer(j->id, 0, c.d, c.len);
  free(c.d);
}

/* Reads exactly n bytes; 0 on success, 1 on EOF before any byte, -1 on EOF inside or an error. */
static int read_full(char *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(0, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return got == 0 && r == 0 ? 1 : -1;
    got += (size_t)r;
  }
  return 0;
}

/* Reads one request; 1 at EOF. A malformed frame ends the process. */
static int read_request(struct job *j) {
  unsigned char head[9];
  int r = read_full((char *)head, sizeof head);
  if (r == 1) return 1;
  if (r != 0) { dprintf(2, "mags-guest fs serve: the request stream ended inside a frame\n"); drop_tmps(0); }
  uint32_t len = get_u32(head + 5);
  if (len > SERVE_MAX_REQUEST) { dprintf(2, "mags-guest fs serve: a %u-byte request is over the limit\n", len); drop_tmps(0); }
  char *payload = malloc(len ? len : 1);
  if (!payload) { dprintf(2, "mags-guest fs serve: out of memory\n"); drop_tmps(0); }
  if (read_full(payload, len) != 0) { dprintf(2, "mags-guest fs serve: the request stream ended inside a frame\n"); drop_tmps(0); }
  j->id = get_u32(head);
  j->op = (char)head[4];
  j->len = len;
  j->payload = payload;
  return 0;
}

static void *worker(void *arg);

/* Starts one more idle thread, unless SERVE_THREADS run; pool_lock is held. */
static void grow_locked(void) {
  if (threads_total >= SERVE_THREADS) return;
  pthread_t t;
  intptr_t slot = threads_total;
  if (pthread_create(&t, &thread_attr, worker, (void *)slot) != 0) return; /* the running threads go on */
  threads_total++;
  threads_live++;
  threads_idle++;
}

static void *worker(void *arg) {
  struct job j = { .slot = (int)(intptr_t)arg };
  for (;;) {
    pthread_mutex_lock(&read_lock);
    int eof = read_request(&j);
    pthread_mutex_unlock(&read_lock);
    if (eof) break;
    pthread_mutex_lock(&pool_lock);
    if (--threads_idle == 0) grow_locked(); /* someone must read the next request meanwhile */
    pthread_mutex_unlock(&pool_lock);
    handle(&j);
    free(j.payload);
    pthread_mutex_lock(&pool_lock);
    threads_idle++;
    pthread_mutex_unlock(&pool_lock);
  }
  pthread_mutex_lock(&pool_lock);
  if (--threads_live == 0) pthread_cond_signal(&all_done);
  pthread_mutex_unlock(&pool_lock);
  return NULL;
}

int fs_serve(const char *self) {
  /* Shown as `mags-guest fs serve` in the sandbox's ps (the one-shot operations show the path). */
  if (strcmp(self, "mags-guest") != 0) {
    char *const again[] = {"mags-guest", "fs", "serve", NULL};
    execv(self, again); /* on failure it goes on under its old name */
  }
  prctl(PR_SET_NAME, "mags-guest fs", 0, 0, 0);
  /* Like PID 1: not dumpable, so other processes of the sandbox cannot read its memory or fds. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct sigaction sa = { .sa_handler = drop_tmps };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_attr_init(&thread_attr);
  pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&thread_attr, SERVE_STACK);
  pthread_mutex_lock(&pool_lock);
  grow_locked();
  if (threads_live == 0) { pthread_mutex_unlock(&pool_lock); dprintf(2, "mags-guest fs serve: cannot start a thread\n"); return 2; }
  /* EOF on stdin: every thread ends once it answered what it runs. */
  while (threads_live > 0) pthread_cond_wait(&all_done, &pool_lock);
  pthread_mutex_unlock(&pool_lock);
  return 0;
}
