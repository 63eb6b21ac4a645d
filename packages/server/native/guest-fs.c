/*
 * `mags-guest fs ...`: the file operations of the files API, run inside a sandbox by the daemon
 * (Sandbox.spawn of /run/mags/agent), so every path resolves in the sandbox's own root, mount
 * namespace and user: `..`, absolute symlinks and /proc/1/root all stay inside the sandbox.
 *
 *   fs read PATH OFFSET LENGTH WINDOW header line {"size","mode","mtime","length"}, then `length` raw bytes;
 *                                     (OFFSET < 0: the last -OFFSET bytes); WINDOW > 0: WINDOW bytes
 *                                     per byte read from stdin (credits)
 *   fs write PATH MODE PARENTS SIZE   stdin -> a temporary file beside PATH, renamed over PATH at EOF;
 *                                     a line `a <bytes>` per MiB written (acks), then the entry line
 *   fs stat PATH                      one entry line (lstat)
 *   fs list PATH DEPTH                one entry line per path under PATH (or PATH itself when not a directory)
 *   fs rm PATH RECURSIVE              unlink, rmdir, or a whole tree without following symlinks
 *   fs mkdir PATH PARENTS MODE        mkdir, or mkdir -p
 *   fs mv FROM TO OVERWRITE           rename (RENAME_NOREPLACE unless OVERWRITE is 1)
 *   fs watch PATH RECURSIVE           {"type":"ready"}, then one event line per inotify event, until killed
 *
 * MODE is octal or -1 (keep / default), LENGTH and SIZE are -1 for "to the end" / "unknown".
 * Success exits 0; a failure writes `ERR <CODE> <message>` to stderr and exits 2, CODE being an
 * errno name (ENOENT, EISDIR, ENOSPC, ...) or ENOTREG (not a regular file) or ESHORT (the body
 * ended before SIZE bytes). docs/guest-agent.md describes the modes, docs/files.md the API on top.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "guest-fs.h"

#define CHUNK 65536
#define FS_MAX_DEPTH 64
#define WATCH_MAX 8192
#define ACK_BYTES (1024 * 1024)

/* Set by `fs serve` on a worker thread: output lines and failures go into it instead of fd 1 / fd 2. */
static __thread struct fs_capture *capture;

void fs_capture_set(struct fs_capture *c) { capture = c; }

static const char *errno_code(int e) {
  switch (e) {
  case ENOENT: return "ENOENT";
  case ENOTDIR: return "ENOTDIR";
  case EISDIR: return "EISDIR";
  case EEXIST: return "EEXIST";
  case ENOTEMPTY: return "ENOTEMPTY";
  case ENOSPC: case EDQUOT: return "ENOSPC";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EROFS: return "EROFS";
  case ELOOP: return "ELOOP";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EXDEV: return "EXDEV";
  case EINVAL: return "EINVAL";
  case EBUSY: return "EBUSY";
  case EMFILE: case ENFILE: return "EMFILE";
  default: return "EIO";
  }
}

int fail(const char *code, const char *what, const char *path) {
  if (capture) {
    capture->failed = 1;
    snprintf(capture->err, sizeof capture->err, "%s %s %s", code, what, path);
    return 2;
  }
  dprintf(2, "ERR %s %s %s\n", code, what, path);
  return 2;
}

int fail_errno(const char *what, const char *path) {
  int e = errno;
  if (capture) {
    capture->failed = 1;
    snprintf(capture->err, sizeof capture->err, "%s %s %s: %s", errno_code(e), what, path, strerror(e));
    return 2;
  }
  dprintf(2, "ERR %s %s %s: %s\n", errno_code(e), what, path, strerror(e));
  return 2;
}

/* Writes all of buf to fd (blocking); 0 on success. */
int write_all(int fd, const char *buf, size_t n) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

void line_put(struct line *l, const char *s, size_t n) {
  if (l->len + n + 1 > l->cap) {
    size_t cap = l->cap ? l->cap : 256;
    while (cap < l->len + n + 1) cap *= 2;
    char *d = realloc(l->d, cap);
    if (!d) { dprintf(2, "ERR EIO out of memory\n"); _exit(2); }
    l->d = d;
    l->cap = cap;
  }
  memcpy(l->d + l->len, s, n);
  l->len += n;
}

void line_str(struct line *l, const char *s) { line_put(l, s, strlen(s)); }

void line_fmt(struct line *l, const char *fmt, long long v) {
  char tmp[64];
  int n = snprintf(tmp, sizeof tmp, fmt, v);
  line_put(l, tmp, (size_t)n);
}

/* A JSON string of raw bytes: quotes, backslashes and control bytes escaped, other bytes as they are. */
static void line_json(struct line *l, const char *s, size_t n) {
  line_put(l, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; line_put(l, e, 2); }
    else if (c < 0x20 || c == 0x7f) { char e[8]; snprintf(e, sizeof e, "\\u%04x", c); line_put(l, e, 6); }
    else line_put(l, (const char *)&c, 1);
  }
  line_put(l, "\"", 1);
}

void line_flush(struct line *l) {
  line_put(l, "\n", 1);
  if (capture) {
    /* Past the limit the answer is cut (`over`): the host then runs the one-shot operation. */
    if (capture->len + l->len > capture->limit) capture->over = 1;
    else {
      if (capture->len + l->len > capture->cap) {
        size_t cap = capture->cap ? capture->cap : 4096;
        while (cap < capture->len + l->len) cap *= 2;
        char *d = realloc(capture->d, cap);
        if (!d) { dprintf(2, "ERR EIO out of memory\n"); _exit(2); }
        capture->d = d;
        capture->cap = cap;
      }
      memcpy(capture->d + capture->len, l->d, l->len);
      capture->len += l->len;
    }
    free(l->d); /* a worker's lines are not reused: nothing stays behind per operation */
    l->d = NULL;
    l->len = l->cap = 0;
    return;
  }
  if (write_all(1, l->d, l->len) != 0) _exit(3); /* the host went away */
  l->len = 0;
}

static const char *type_of(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  return "other";
}

long long mtime_ms(const struct stat *st) { return (long long)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000; }

/* One entry line: name, path, type, size, mode, mtime and a symlink's target. `dirfd`/`name` locate it for readlinkat. */
void put_entry(struct line *l, const char *path, const char *name, const struct stat *st, int dirfd) {
  line_str(l, "{\"name\":");
  line_json(l, name, strlen(name));
  line_str(l, ",\"path\":");
  line_json(l, path, strlen(path));
  line_str(l, ",\"type\":\"");
  line_str(l, type_of(st->st_mode));
  line_fmt(l, "\",\"size\":%lld", (long long)st->st_size);
  line_fmt(l, ",\"mode\":%lld", (long long)(st->st_mode & 07777));
  line_fmt(l, ",\"mtime\":%lld", mtime_ms(st));
  if (S_ISLNK(st->st_mode)) {
    char target[PATH_MAX];
    /* Without a directory fd, by the whole path (the name alone would resolve against the cwd). */
    ssize_t n = dirfd == AT_FDCWD ? readlink(path, target, sizeof target - 1) : readlinkat(dirfd, name, target, sizeof target - 1);
    if (n >= 0) { line_str(l, ",\"target\":"); line_json(l, target, (size_t)n); }
  }
  line_str(l, "}");
  line_flush(l);
}

const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s && s[1] ? s + 1 : path;
}

int parse_ll(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

int parse_mode(const char *s, long *out) {
  if (strcmp(s, "-1") == 0) { *out = -1; return 0; }
  char *end;
  long v = strtol(s, &end, 8);
  if (end == s || *end || v < 0 || v > 07777) return -1;
  *out = v;
  return 0;
}

/* ---- read ---- */

/* Flow control: with WINDOW > 0 the reader sends WINDOW bytes per byte the host writes to its
 * stdin (one credit), so a slow HTTP client holds the file here, not in the daemon's memory. */
static int take_credit(void) {
  char c;
  for (;;) {
    ssize_t n = read(0, &c, 1);
    if (n == 1) return 0;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
}

static int fs_read(const char *path, long long offset, long long length, long long window) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail_errno("cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) return fail_errno("cannot stat", path);
  if (S_ISDIR(st.st_mode)) return fail("EISDIR", "is a directory:", path);
  if (!S_ISREG(st.st_mode)) return fail("ENOTREG", "is not a regular file:", path);
  if (offset < 0) offset = st.st_size + offset > 0 ? st.st_size + offset : 0; /* a suffix: the last -OFFSET bytes */
  long long avail = st.st_size > offset ? st.st_size - offset : 0;
  if (length < 0 || length > avail) length = avail;
  struct line l = {0};
  line_fmt(&l, "{\"size\":%lld", (long long)st.st_size);
  line_fmt(&l, ",\"mode\":%lld", (long long)(st.st_mode & 07777));
  line_fmt(&l, ",\"mtime\":%lld", mtime_ms(&st));
  line_fmt(&l, ",\"length\":%lld}", length);
  line_flush(&l);
  static char buf[CHUNK];
  long long credit = 0;
  while (length > 0) {
    if (window > 0 && credit <= 0) {
      if (take_credit() != 0) return 3; /* the host stopped the read */
      credit += window;
    }
    size_t want = length < CHUNK ? (size_t)length : CHUNK;
    ssize_t n = pread(fd, buf, want, offset);
    if (n < 0) { if (errno == EINTR) continue; return fail_errno("cannot read", path); }
    if (n == 0) return fail("ESHORT", "the file shrank while it was read:", path);
    if (write_all(1, buf, (size_t)n) != 0) return 3;
    offset += n;
    length -= n;
    credit -= n;
  }
  return 0;
}

/* ---- write ---- */

static char tmp_path[PATH_MAX + 64];

static void drop_tmp(int sig) {
  if (tmp_path[0]) unlink(tmp_path);
  _exit(sig ? 128 + sig : 2);
}

/* mkdir -p of every parent of path (not path itself). */
int make_parents(const char *path, mode_t mode) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i < n; i++) {
    if (buf[i] != '/') continue;
    buf[i] = 0;
    if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
    buf[i] = '/';
  }
  return 0;
}

static int fs_write(const char *path, long mode, int parents, long long size) {
  struct stat st;
  int exists = stat(path, &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return fail("EISDIR", "is a directory:", path);
  if (exists && !S_ISREG(st.st_mode)) return fail("ENOTREG", "is not a regular file:", path);
  if (parents && make_parents(path, 0755) != 0) return fail_errno("cannot create the parents of", path);
  mode_t m = mode >= 0 ? (mode_t)mode : exists ? (st.st_mode & 07777) : 0644;

  /* The temporary file sits beside the target (same file system), so the rename is atomic. */
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  if (dirlen + strlen(base_name(path)) + 32 >= sizeof tmp_path) return fail("ENAMETOOLONG", "path too long:", path);
  struct sigaction sa = { .sa_handler = drop_tmp };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGPIPE, &sa, NULL);
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    snprintf(tmp_path, sizeof tmp_path, "%.*s.%s.mags-%08lx", (int)dirlen, path, base_name(path),
             (unsigned long)((uint32_t)getpid() * 2654435761u + (uint32_t)attempt * 40503u + (uint32_t)time(NULL)));
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) { tmp_path[0] = 0; return fail_errno("cannot create a file beside", path); }
  }
  if (fd < 0) { tmp_path[0] = 0; return fail("EEXIST", "cannot create a temporary file beside", path); }
  static char buf[CHUNK];
  long long total = 0;
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0) { if (errno == EINTR) continue; int r = fail_errno("cannot read the body for", path); drop_tmp(0); return r; }
    if (n == 0) break;
    if (write_all(fd, buf, (size_t)n) != 0) { int r = fail_errno("cannot write", path); drop_tmp(0); return r; }
    if ((total + n) / ACK_BYTES != total / ACK_BYTES) dprintf(1, "a %lld\n", total + n);
    total += n;
  }
  if (size >= 0 && total != size) { fail("ESHORT", "the body ended early for", path); drop_tmp(0); }
  if (fchmod(fd, m) != 0 || close(fd) != 0) { int r = fail_errno("cannot write", path); drop_tmp(0); return r; }
  if (rename(tmp_path, path) != 0) { int r = fail_errno("cannot replace", path); drop_tmp(0); return r; }
  tmp_path[0] = 0;
  if (lstat(path, &st) != 0) return fail_errno("cannot stat", path);
  struct line l = {0};
  put_entry(&l, path, base_name(path), &st, AT_FDCWD);
  return 0;
}

/* ---- stat, list ---- */

static int list_dir(struct line *l, const char *dirpath, int depth) {
  int dfd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -1;
  DIR *d = fdopendir(dfd);
  if (!d) { close(dfd); return -1; }
  struct dirent *e;
  char child[PATH_MAX];
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (capture && capture->over) break; /* the answer is cut anyway */
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue; /* deleted meanwhile */
    int n = snprintf(child, sizeof child, "%s%s%s", dirpath, strcmp(dirpath, "/") == 0 ? "" : "/", e->d_name);
    if (n < 0 || (size_t)n >= sizeof child) continue;
    put_entry(l, child, e->d_name, &st, dfd);
    if (S_ISDIR(st.st_mode) && depth > 1) list_dir(l, child, depth - 1);
  }
  closedir(d);
  return 0;
}

int fs_list(const char *path, long long depth) {
  struct stat st;
  if (lstat(path, &st) != 0) return fail_errno("cannot stat", path);
  /* The listed path itself follows a symlink (as ls does); entries below it never do. */
  if (S_ISLNK(st.st_mode)) { struct stat t; if (stat(path, &t) == 0 && S_ISDIR(t.st_mode)) st = t; }
  struct line l = {0};
  if (!S_ISDIR(st.st_mode)) { put_entry(&l, path, base_name(path), &st, AT_FDCWD); return 0; }
  if (depth < 1) depth = 1;
  if (depth > FS_MAX_DEPTH) depth = FS_MAX_DEPTH;
  char clean[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof clean) return fail("ENAMETOOLONG", "path too long:", path);
  memcpy(clean, path, n + 1);
  while (n > 1 && clean[n - 1] == '/') clean[--n] = 0;
  if (list_dir(&l, clean, (int)depth) != 0) return fail_errno("cannot list", path);
  return 0;
}

int fs_stat(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return fail_errno("cannot stat", path);
  struct line l = {0};
  put_entry(&l, path, base_name(path), &st, AT_FDCWD);
  return 0;
}

/* ---- rm, mkdir, mv ---- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st; (void)f;
  return (flag == FTW_DP ? rmdir(p) : unlink(p)) == 0 ? 0 : -1;
}

int fs_rm(const char *path, int recursive) {
  struct stat st;
  if (lstat(path, &st) != 0) return fail_errno("cannot remove", path);
  if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? 0 : fail_errno("cannot remove", path);
  if (!recursive) return rmdir(path) == 0 ? 0 : fail_errno("cannot remove", path);
  /* Depth first, never following a symlink. (Not FTW_MOUNT: overlayfs reports lower-layer files
   * with another st_dev, which would leave them behind.) */
  if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0) return fail_errno("cannot remove", path);
  return 0;
}

int fs_mkdir(const char *path, int parents, long mode) {
  mode_t m = mode >= 0 ? (mode_t)mode : 0755;
  if (parents && make_parents(path, 0755) != 0) return fail_errno("cannot create the parents of", path);
  if (mkdir(path, m) != 0) {
    struct stat st;
    if (errno == EEXIST && parents && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return fs_stat(path);
    return fail_errno("cannot create directory", path);
  }
  return fs_stat(path);
}

int fs_mv(const char *from, const char *to, int overwrite) {
  if (!overwrite) {
    if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */) == 0) return fs_stat(to);
    if (errno != EINVAL && errno != ENOSYS) return fail_errno("cannot move to", to);
    struct stat st;
    if (lstat(to, &st) == 0) { errno = EEXIST; return fail_errno("cannot move to", to); }
  }
  if (rename(from, to) != 0) return fail_errno("cannot move to", to);
  return fs_stat(to);
}

/* ---- watch ---- */

static char *watch_paths[WATCH_MAX];
static int watch_wds[WATCH_MAX];
static int watch_count;
static int watch_fd;

static void watch_add(const char *path, int recursive, int depth) {
  if (watch_count >= WATCH_MAX) return;
  uint32_t mask = IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;
  int wd = inotify_add_watch(watch_fd, path, mask);
  if (wd < 0) return;
  int slot = -1;
  for (int i = 0; i < watch_count; i++) if (watch_wds[i] == wd) slot = i;
  if (slot < 0) slot = watch_count++;
  free(watch_paths[slot]);
  watch_paths[slot] = strdup(path);
  watch_wds[slot] = wd;
  if (!recursive || depth >= FS_MAX_DEPTH) return;
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  char child[PATH_MAX];
  while ((e = readdir(d))) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int n = snprintf(child, sizeof child, "%s%s%s", path, strcmp(path, "/") == 0 ? "" : "/", e->d_name);
    if (n > 0 && (size_t)n < sizeof child) watch_add(child, recursive, depth + 1);
  }
  closedir(d);
}

static const char *watch_path(int wd) {
  for (int i = 0; i < watch_count; i++) if (watch_wds[i] == wd) return watch_paths[i];
  return NULL;
}

static void watch_forget(int wd) {
  for (int i = 0; i < watch_count; i++) {
    if (watch_wds[i] != wd) continue;
    free(watch_paths[i]);
    watch_paths[i] = watch_paths[watch_count - 1];
    watch_wds[i] = watch_wds[watch_count - 1];
    watch_count--;
    return;
  }
}

static int fs_watch(const char *path, int recursive) {
  struct stat st;
  if (stat(path, &st) != 0) return fail_errno("cannot watch", path);
  if (!S_ISDIR(st.st_mode)) return fail("ENOTDIR", "is not a directory:", path);
  watch_fd = inotify_init1(IN_CLOEXEC);
  if (watch_fd < 0) return fail_errno("cannot watch", path);
  char clean[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof clean) return fail("ENAMETOOLONG", "path too long:", path);
  memcpy(clean, path, n + 1);
  while (n > 1 && clean[n - 1] == '/') clean[--n] = 0;
  watch_add(clean, recursive, 0);
  if (watch_count == 0) return fail_errno("cannot watch", path);
  struct line l = {0};
  line_str(&l, "{\"type\":\"ready\"}");
  line_flush(&l);
  static char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  char full[PATH_MAX];
  for (;;) {
    ssize_t r = read(watch_fd, buf, sizeof buf);
    if (r < 0) { if (errno == EINTR) continue; return fail_errno("cannot watch", path); }
    /* A burst of writes to one file is one modify event per read batch. */
    char last_modify[PATH_MAX] = "";
    for (char *p = buf; p < buf + r;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      p += sizeof *ev + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) { line_str(&l, "{\"type\":\"overflow\"}"); line_flush(&l); continue; }
      if (ev->mask & IN_IGNORED) { watch_forget(ev->wd); continue; }
      const char *dir = watch_path(ev->wd);
      if (!dir || !ev->len) continue;
      int k = snprintf(full, sizeof full, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", ev->name);
      if (k < 0 || (size_t)k >= sizeof full) continue;
      const char *type = ev->mask & IN_CREATE ? "create" : ev->mask & IN_MODIFY ? "modify" : ev->mask & IN_DELETE ? "delete"
                       : ev->mask & IN_MOVED_FROM ? "move_from" : ev->mask & IN_MOVED_TO ? "move_to" : NULL;
      if (!type) continue;
      if (ev->mask & IN_MODIFY) { if (strcmp(last_modify, full) == 0) continue; strcpy(last_modify, full); }
      else last_modify[0] = 0;
      int is_dir = (ev->mask & IN_ISDIR) != 0;
      if (is_dir && recursive && (ev->mask & (IN_CREATE | IN_MOVED_TO))) watch_add(full, recursive, 1);
      line_str(&l, "{\"type\":\"");
      line_str(&l, type);
      line_str(&l, "\",\"path\":");
      line_json(&l, full, strlen(full));
      line_str(&l, is_dir ? ",\"dir\":true" : ",\"dir\":false");
      line_fmt(&l, ",\"cookie\":%lld}", (long long)ev->cookie);
      line_flush(&l);
    }
  }
}

/* `mags-guest fs OP ARGS...` */
int cmd_fs(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[2], "serve") == 0) return fs_serve(argv[0]);
  if (argc < 4) return fail("EINVAL", "usage: mags-guest fs serve|read|write|stat|list|rm|mkdir|mv|watch PATH ...", "");
  const char *op = argv[2], *path = argv[3];
  if (!*path) return fail("EINVAL", "empty path", "");
  long long a = 0, b = 0;
  long mode = -1;
  long long c = 0;
  if (strcmp(op, "read") == 0 && argc == 7 && !parse_ll(argv[4], &a) && !parse_ll(argv[5], &b) && !parse_ll(argv[6], &c)) return fs_read(path, a, b, c);
  if (strcmp(op, "write") == 0 && argc == 7 && !parse_mode(argv[4], &mode) && !parse_ll(argv[5], &a) && !parse_ll(argv[6], &b))
    return fs_write(path, mode, a == 1, b);
  if (strcmp(op, "stat") == 0 && argc == 4) return fs_stat(path);
  if (strcmp(op, "list") == 0 && argc == 5 && !parse_ll(argv[4], &a)) return fs_list(path, a);
  if (strcmp(op, "rm") == 0 && argc == 5 && !parse_ll(argv[4], &a)) return fs_rm(path, a == 1);
  if (strcmp(op, "mkdir") == 0 && argc == 6 && !parse_ll(argv[4], &a) && !parse_mode(argv[5], &mode)) return fs_mkdir(path, a == 1, mode);
  if (strcmp(op, "mv") == 0 && argc == 6 && !parse_ll(argv[5], &a)) return fs_mv(path, argv[4], a == 1);
  if (strcmp(op, "watch") == 0 && argc == 5 && !parse_ll(argv[4], &a)) return fs_watch(path, a == 1);
  return fail("EINVAL", "bad arguments for fs", op);
}
