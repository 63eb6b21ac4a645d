/*
 * Shared by guest-fs.c (the one-shot `mags-guest fs OP ...` operations) and guest-fs-serve.c
 * (`mags-guest fs serve`, the same operations answered over stdin/stdout by one long-lived process).
 */
#ifndef MAGS_GUEST_FS_H
#define MAGS_GUEST_FS_H
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* A growable output line. */
struct line { char *d; size_t len, cap; };

/*
 * Where a serve worker's operation writes: the lines it would print (at most `limit` bytes; past it
 * `over` is set and the rest dropped) and its failure (`failed`, `err` = "CODE message").
 */
struct fs_capture {
  char *d;
  size_t len, cap, limit;
  int over, failed;
  char err[600];
};

/* Sends this thread's output lines and failures into `c` (NULL: back to fd 1 / fd 2). */
void fs_capture_set(struct fs_capture *c);

int fail(const char *code, const char *what, const char *path);
int fail_errno(const char *what, const char *path);
int write_all(int fd, const char *buf, size_t n);
void line_put(struct line *l, const char *s, size_t n);
void line_str(struct line *l, const char *s);
void line_fmt(struct line *l, const char *fmt, long long v);
void line_flush(struct line *l);
long long mtime_ms(const struct stat *st);
void put_entry(struct line *l, const char *path, const char *name, const struct stat *st, int dirfd);
const char *base_name(const char *path);
int make_parents(const char *path, mode_t mode);
int parse_ll(const char *s, long long *out);
int parse_mode(const char *s, long *out);

int fs_stat(const char *path);
int fs_list(const char *path, long long depth);
int fs_rm(const char *path, int recursive);
int fs_mkdir(const char *path, int parents, long mode);
int fs_mv(const char *from, const char *to, int overwrite);

/* `mags-guest fs serve` (guest-fs-serve.c); `self` is argv[0]. */
int fs_serve(const char *self);

#endif
