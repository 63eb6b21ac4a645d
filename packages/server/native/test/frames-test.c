/*
 * Golden-frame check of the guest agent's frame code (native/frame.c) against test/frames.json,
 * the vectors the host side (src/guest/frame.ts) is checked against too. For every vector it
 * decodes the bytes with the receiver's limit, compares the header and payload fields, re-encodes
 * the fields and compares the bytes. Prints one line per mismatch; exits 1 when there is any.
 *
 * Usage: frames-test FRAMES.JSON    (built by native/build.sh --test, run by test/guest-frames.test.ts)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* ---- a small JSON reader (objects, arrays, strings, integers, true/false/null) ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jv {
  enum jtype t;
  double num;
  char *str;
  size_t len;        /* array / object members */
  struct jv **items; /* values */
  char **keys;       /* object keys */
};

static const char *jp;
static int jerr;

static void ws(void) { while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t') jp++; }

static struct jv *jnew(enum jtype t) {
  struct jv *v = calloc(1, sizeof *v);
  if (!v) { perror("frames-test"); exit(2); }
  v->t = t;
  return v;
}

static void push(struct jv *v, char *key, struct jv *item) {
  v->items = realloc(v->items, (v->len + 1) * sizeof *v->items);
  v->keys = realloc(v->keys, (v->len + 1) * sizeof *v->keys);
  if (!v->items || !v->keys) { perror("frames-test"); exit(2); }
  v->items[v->len] = item;
  v->keys[v->len++] = key;
}

static void put_utf8(char **o, unsigned cp) {
  if (cp < 0x80) *(*o)++ = (char)cp;
  else if (cp < 0x800) { *(*o)++ = (char)(0xc0 | cp >> 6); *(*o)++ = (char)(0x80 | (cp & 0x3f)); }
  else { *(*o)++ = (char)(0xe0 | cp >> 12); *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f)); *(*o)++ = (char)(0x80 | (cp & 0x3f)); }
}

static char *jstring(void) {
  if (*jp != '"') { jerr = 1; return NULL; }
  jp++;
  char *out = malloc(strlen(jp) + 1), *o = out;
  while (*jp && *jp != '"') {
    if (*jp != '\\') { *o++ = *jp++; continue; }
    jp++;
    char c = *jp++;
    switch (c) {
    case 'n': *o++ = '\n'; break;
    case 't': *o++ = '\t'; break;
    case 'r': *o++ = '\r'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'u': { unsigned cp; if (sscanf(jp, "%4x", &cp) != 1) { jerr = 1; break; } jp += 4; put_utf8(&o, cp); break; }
    default: *o++ = c;
    }
  }
  if (*jp != '"') jerr = 1; else jp++;
  *o = 0;
  return out;
}

static struct jv *jvalue(void) {
  ws();
  struct jv *v;
  if (*jp == '{') {
    v = jnew(J_OBJ);
    jp++;
    ws();
    if (*jp == '}') { jp++; return v; }
    for (;;) {
      ws();
      char *k = jstring();
      ws();
      if (*jp++ != ':') { jerr = 1; return v; }
      push(v, k, jvalue());
      ws();
      if (*jp == ',') { jp++; continue; }
      if (*jp++ != '}') jerr = 1;
      return v;
    }
  }
  if (*jp == '[') {
    v = jnew(J_ARR);
    jp++;
    ws();
    if (*jp == ']') { jp++; return v; }
    for (;;) {
      push(v, NULL, jvalue());
      ws();
      if (*jp == ',') { jp++; continue; }
      if (*jp++ != ']') jerr = 1;
      return v;
    }
  }
  if (*jp == '"') { v = jnew(J_STR); v->str = jstring(); return v; }
  if (strncmp(jp, "true", 4) == 0) { jp += 4; v = jnew(J_BOOL); v->num = 1; return v; }
  if (strncmp(jp, "false", 5) == 0) { jp += 5; return jnew(J_BOOL); }
  if (strncmp(jp, "null", 4) == 0) { jp += 4; return jnew(J_NULL); }
  char *end;
  v = jnew(J_NUM);
  v->num = strtod(jp, &end);
  if (end == jp) jerr = 1;
  jp = end;
  return v;
}

static struct jv *get(const struct jv *o, const char *key) {
  if (!o || o->t != J_OBJ) return NULL;
  for (size_t i = 0; i < o->len; i++) if (strcmp(o->keys[i], key) == 0) return o->items[i];
  return NULL;
}
static const char *gets_(const struct jv *o, const char *key) { struct jv *v = get(o, key); return v && v->t == J_STR ? v->str : NULL; }
static double getn(const struct jv *o, const char *key) { struct jv *v = get(o, key); return v && v->t == J_NUM ? v->num : -1; }

/* NULL-terminated copy of a JSON array of strings. */
static char **strings(const struct jv *a) {
  size_t n = a && a->t == J_ARR ? a->len : 0;
  char **out = calloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) out[i] = a->items[i]->str;
  return out;
}

/* ---- the checks ---- */

static int failures;
static const char *current;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "FAIL %s: ", current);               \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
    }                                                      \
  } while (0)

static size_t unhex(const char *hex, unsigned char *out) {
  size_t n = strlen(hex) / 2;
  for (size_t i = 0; i < n; i++) { unsigned b; sscanf(hex + 2 * i, "%2x", &b); out[i] = (unsigned char)b; }
  return n;
}

/* Payload bytes a vector's fields describe (the data hex plus the fill). */
static size_t data_bytes(const struct jv *fields, const struct jv *fill, unsigned char *out) {
  const char *hex = gets_(fields, "data");
  size_t n = hex ? unhex(hex, out) : 0;
  if (fill) {
    size_t count = (size_t)getn(fill, "count");
    memset(out + n, (int)getn(fill, "byte"), count);
    n += count;
  }
  return n;
}

/* Decodes the payload like the receiver does, compares it with the fields and re-encodes them into enc. */
static size_t check_payload(int to_guest, const struct frame *f, const struct jv *fields, const struct jv *fill, unsigned char *enc) {
  int malformed = get(fields, "malformed") != NULL;
  const unsigned char *p = f->payload;
  if (to_guest && f->type == FRAME_EXEC) {
    struct exec_request r;
    int rc = exec_decode(p, f->len, 0, &r);
    CHECK((rc != 0) == malformed, "exec_decode returned %d, malformed is %d", rc, malformed);
    if (rc != 0 || malformed) { if (rc == 0) exec_free(&r); return 0; }
    CHECK(r.flags == getn(fields, "flags"), "flags %u", r.flags);
    CHECK(r.cols == getn(fields, "cols") && r.rows == getn(fields, "rows"), "window %ux%u", r.cols, r.rows);
    char **argv = strings(get(fields, "argv")), **env = strings(get(fields, "env"));
    for (uint32_t i = 0; i <= r.argc; i++) CHECK((argv[i] == NULL) == (r.argv[i] == NULL) && (!argv[i] || strcmp(argv[i], r.argv[i]) == 0), "argv[%u]", i);
    for (uint32_t i = 0; i <= r.envc; i++) CHECK((env[i] == NULL) == (r.envp[i] == NULL) && (!env[i] || strcmp(env[i], r.envp[i]) == 0), "env[%u]", i);
    CHECK(strcmp(r.cwd, gets_(fields, "cwd")) == 0, "cwd %s", r.cwd);
    const char *log = gets_(fields, "logFile");
    CHECK((log == NULL) == (r.log_path == NULL) && (!log || strcmp(log, r.log_path) == 0), "logFile");
    size_t n = exec_encode(enc, (uint8_t)getn(fields, "flags"), (uint16_t)getn(fields, "cols"), (uint16_t)getn(fields, "rows"),
                           argv, env, gets_(fields, "cwd"), log);
    CHECK(n == exec_encode(NULL, r.flags, r.cols, r.rows, argv, env, r.cwd, log), "exec_encode length without a buffer");
    exec_free(&r);
    free(argv);
    free(env);
    return n;
  }
  if (to_guest && f->type == FRAME_RESIZE) {
    CHECK(f->len >= 4 && frame_get16(p) == getn(fields, "cols") && frame_get16(p + 2) == getn(fields, "rows"), "resize");
    frame_put16(enc, (uint16_t)getn(fields, "cols"));
    frame_put16(enc + 2, (uint16_t)getn(fields, "rows"));
    return 4;
  }
  if (to_guest && f->type == FRAME_KILL) {
    CHECK(f->len >= 2 && p[0] == getn(fields, "signal") && p[1] == getn(fields, "scope"), "kill");
    enc[0] = (unsigned char)getn(fields, "signal");
    enc[1] = (unsigned char)getn(fields, "scope");
    return 2;
  }
  if (to_guest && f->type == FRAME_GRANT) {
    CHECK(f->len >= 4 && frame_get32(p) == getn(fields, "count"), "grant");
    frame_put32(enc, (uint32_t)getn(fields, "count"));
    return 4;
  }
  if (to_guest && f->type == FRAME_EOF) return 0;
  if (!to_guest && f->type == FRAME_HELLO) {
    const char *text = gets_(fields, "text");
    CHECK(f->len == strlen(text) && memcmp(p, text, f->len) == 0, "hello text");
    CHECK(strcmp(text, GUEST_HELLO) == 0, "hello is not GUEST_HELLO (%s)", GUEST_HELLO);
    memcpy(enc, text, strlen(text));
    return strlen(text);
  }
  if (!to_guest && f->type == FRAME_STARTED) {
    CHECK(f->len == 4 && frame_get32(p) == getn(fields, "pid"), "pid");
    frame_put32(enc, (uint32_t)getn(fields, "pid"));
    return 4;
  }
  if (!to_guest && f->type == FRAME_EXIT) {
    CHECK((f->len < 5) == malformed, "exit payload of %u bytes, malformed is %d", f->len, malformed);
    if (malformed) return 0;
    CHECK(p[0] == getn(fields, "kind") && frame_get32(p + 1) == getn(fields, "value"), "exit kind/value");
    exit_encode(enc, (uint8_t)getn(fields, "kind"), (uint32_t)getn(fields, "value"));
    return 5;
  }
  /* stdin, stdout, stderr, ping and types the receiver does not know carry raw data. */
  size_t n = data_bytes(fields, fill, enc);
  CHECK(n == f->len && memcmp(enc, p, n) == 0, "data differs");
  return n;
}

static void check_vector(const struct jv *v) {
  current = gets_(v, "name");
  const char *dir = gets_(v, "direction"), *result = gets_(v, "result"), *hex = gets_(v, "hex");
  int to_guest = strcmp(dir, "host-to-guest") == 0;
  CHECK(to_guest || strcmp(dir, "guest-to-host") == 0, "direction %s", dir);
  const struct jv *fill = get(v, "fill");
  size_t fill_count = fill ? (size_t)getn(fill, "count") : 0;
  unsigned char *bytes = malloc(strlen(hex) / 2 + fill_count + 1);
  unsigned char *enc = malloc(strlen(hex) / 2 + fill_count + FRAME_HEADER + 1);
  size_t n = unhex(hex, bytes);
  if (fill) { memset(bytes + n, (int)getn(fill, "byte"), fill_count); n += fill_count; }

  uint32_t max = to_guest ? GUEST_MAX_PAYLOAD : HOST_MAX_PAYLOAD;
  struct frame f;
  enum frame_result r = frame_decode(bytes, n, max, &f);
  const char *got = r == FRAME_OK ? "frame" : r == FRAME_INCOMPLETE ? "incomplete" : "too_large";
  CHECK(strcmp(got, result) == 0, "decoded as %s, expected %s", got, result);
  if (r == FRAME_OK && strcmp(result, "frame") == 0) {
    const char *type = gets_(v, "type");
    CHECK(f.type == (uint8_t)type[0], "type %c", f.type);
    CHECK(f.chan == (uint32_t)getn(v, "channel"), "channel %u", f.chan);
    CHECK(f.len == (uint32_t)getn(v, "length"), "length %u", f.len);
    CHECK(FRAME_HEADER + (size_t)f.len == n, "the frame takes %zu of %zu bytes", FRAME_HEADER + (size_t)f.len, n);
    /* A stream cut anywhere before the end is incomplete (small frames: every cut). */
    for (size_t cut = n > 64 ? n - 1 : 0; cut < n; cut++) {
      struct frame g;
      CHECK(frame_decode(bytes, cut, max, &g) == FRAME_INCOMPLETE, "a %zu-byte prefix is not incomplete", cut);
    }
    const struct jv *fields = get(v, "fields");
    size_t plen = check_payload(to_guest, &f, fields, fill, enc + FRAME_HEADER);
    if (!get(fields, "malformed")) {
      frame_header(enc, f.type, (uint32_t)getn(v, "channel"), (uint32_t)plen);
      CHECK(FRAME_HEADER + plen == n && memcmp(enc, bytes, n) == 0, "re-encoding the fields gives different bytes");
    }
  } else if (r == FRAME_TOO_LARGE) {
    frame_header(enc, (uint8_t)gets_(v, "type")[0], (uint32_t)getn(v, "channel"), (uint32_t)getn(v, "length"));
    CHECK(memcmp(enc, bytes, FRAME_HEADER) == 0, "re-encoding the header gives different bytes");
  }
  free(bytes);
  free(enc);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: frames-test FRAMES.JSON\n"); return 2; }
  FILE *fp = fopen(argv[1], "rb");
  if (!fp) { perror(argv[1]); return 2; }
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[n] = 0;
  jp = text;
  struct jv *doc = jvalue();
  struct jv *vectors = get(doc, "vectors"), *limits = get(doc, "limits");
  if (jerr || !vectors || vectors->t != J_ARR || !limits) { fprintf(stderr, "%s: not a frames file\n", argv[1]); return 2; }
  current = "limits";
  CHECK(getn(limits, "hostMaxPayload") == HOST_MAX_PAYLOAD, "hostMaxPayload");
  CHECK(getn(limits, "guestMaxPayload") == GUEST_MAX_PAYLOAD, "guestMaxPayload");
  for (size_t i = 0; i < vectors->len; i++) check_vector(vectors->items[i]);
  printf("%zu vectors, %d failures\n", vectors->len, failures);
  return failures ? 1 : 0;
}
