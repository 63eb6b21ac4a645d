/* Frame encoding and decoding of the guest protocol (docs/guest-agent.md). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

void frame_put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
void frame_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
uint16_t frame_get16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
uint32_t frame_get32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void frame_header(unsigned char h[FRAME_HEADER], uint8_t type, uint32_t chan, uint32_t len) {
  h[0] = type;
  frame_put32(h + 1, chan);
  frame_put32(h + 5, len);
}

enum frame_result frame_decode(const unsigned char *buf, size_t n, uint32_t max, struct frame *f) {
  if (n < FRAME_HEADER) return FRAME_INCOMPLETE;
  uint32_t len = frame_get32(buf + 5);
  if (len > max) return FRAME_TOO_LARGE;
  if (n < FRAME_HEADER + (size_t)len) return FRAME_INCOMPLETE;
  f->type = buf[0];
  f->chan = frame_get32(buf + 1);
  f->len = len;
  f->payload = buf + FRAME_HEADER;
  return FRAME_OK;
}

int exec_decode(const unsigned char *p, uint32_t len, size_t env_spare, struct exec_request *r) {
  memset(r, 0, sizeof *r);
  if (len < EXEC_FIXED) return -1;
  r->flags = p[0];
  r->cols = frame_get16(p + 1);
  r->rows = frame_get16(p + 3);
  r->argc = frame_get32(p + 5);
  r->envc = frame_get32(p + 9);
  if (r->argc == 0 || r->argc > EXEC_MAX_STRINGS || r->envc > EXEC_MAX_STRINGS) return -1;
  r->argv = calloc(r->argc + 1, sizeof(char *));
  r->envp = calloc(r->envc + 1 + env_spare, sizeof(char *));
  if (!r->argv || !r->envp) { exec_free(r); return -1; }
  const char *q = (const char *)p + EXEC_FIXED, *end = (const char *)p + len;
  uint32_t nstr = r->argc + r->envc + 1 + ((r->flags & EXEC_LOG_FILE) ? 1 : 0);
  for (uint32_t i = 0; i < nstr; i++) {
    const char *z = memchr(q, 0, (size_t)(end - q));
    if (!z) { exec_free(r); return -1; }
    if (i < r->argc) r->argv[i] = (char *)q;
    else if (i < r->argc + r->envc) r->envp[i - r->argc] = (char *)q;
    else if (i == r->argc + r->envc) r->cwd = q;
    else r->log_path = q;
    q = z + 1;
  }
  return 0;
}

void exec_free(struct exec_request *r) {
  free(r->argv);
  free(r->envp);
  r->argv = r->envp = NULL;
}

static size_t put_string(unsigned char *out, size_t at, const char *s) {
  size_t n = strlen(s) + 1;
  if (out) memcpy(out + at, s, n);
  return n;
}

size_t exec_encode(unsigned char *out, uint8_t flags, uint16_t cols, uint16_t rows, char *const *argv,
                   char *const *envp, const char *cwd, const char *log_path) {
  uint32_t argc = 0, envc = 0;
  while (argv[argc]) argc++;
  while (envp[envc]) envc++;
  if (out) {
    out[0] = flags;
    frame_put16(out + 1, cols);
    frame_put16(out + 3, rows);
    frame_put32(out + 5, argc);
    frame_put32(out + 9, envc);
  }
  size_t at = EXEC_FIXED;
  for (uint32_t i = 0; i < argc; i++) at += put_string(out, at, argv[i]);
  for (uint32_t i = 0; i < envc; i++) at += put_string(out, at, envp[i]);
  at += put_string(out, at, cwd ? cwd : "");
  if (flags & EXEC_LOG_FILE) at += put_string(out, at, log_path ? log_path : "");
  return at;
}

void exit_encode(unsigned char out[5], uint8_t kind, uint32_t value) {
  out[0] = kind;
  frame_put32(out + 1, value);
}
