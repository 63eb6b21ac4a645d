/*
 * The guest protocol's frames: encoding and decoding shared by the guest agent (guest-agent.c) and
 * the golden-frame test (test/frames-test.c). The wire format is specified in docs/guest-agent.md;
 * the host side is packages/server/src/guest/frame.ts. Both are checked against test/frames.json.
 */
#ifndef MAGS_FRAME_H
#define MAGS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* "<program> <protocol version>", sent in the hello frame. */
#define GUEST_PROTOCOL_VERSION 1
#define GUEST_HELLO "mags-guest 1"

/* Header: type u8, channel u32 BE, payload length u32 BE. */
#define FRAME_HEADER 9
/* Largest payload the host accepts from the guest (the guest sends at most 64 KiB at once). */
#define HOST_MAX_PAYLOAD (1024u * 1024)
/* Largest payload the guest accepts from the host (an exec frame carries argv and env). */
#define GUEST_MAX_PAYLOAD (64u * 1024 * 1024)

/* host -> guest */
#define FRAME_EXEC 'X'
#define FRAME_STDIN 'I'
#define FRAME_EOF 'C'
#define FRAME_RESIZE 'W'
#define FRAME_KILL 'K'
#define FRAME_PING 'P'
#define FRAME_GRANT 'G'
/* guest -> host ('P' answers a ping, 'X' is a channel's exit) */
#define FRAME_HELLO 'H'
#define FRAME_STARTED 'S'
#define FRAME_STDOUT 'O'
#define FRAME_STDERR 'E'
#define FRAME_EXIT 'X'
#define FRAME_ACK 'A'

/* Exec flags. */
#define EXEC_PTY 1
#define EXEC_STDIN 2
#define EXEC_LOG_FILE 4
/* Output credit: the guest reads the channel's stdout and stderr only while it holds credit, which
 * starts at OUTPUT_WINDOW and grows by every 'G' (grant) frame's count. */
#define EXEC_OUTPUT_WINDOW 8
#define OUTPUT_WINDOW (1024u * 1024)

/* Exit kinds. */
#define EXIT_CODE 0
#define EXIT_SIGNAL 1

void frame_put16(unsigned char *p, uint16_t v);
void frame_put32(unsigned char *p, uint32_t v);
uint16_t frame_get16(const unsigned char *p);
uint32_t frame_get32(const unsigned char *p);

struct frame {
  uint8_t type;
  uint32_t chan;
  uint32_t len;
  const unsigned char *payload; /* points into the decoded buffer */
};

enum frame_result { FRAME_OK = 0, FRAME_INCOMPLETE = 1, FRAME_TOO_LARGE = 2 };

/* Writes a frame header for a payload of `len` bytes. */
void frame_header(unsigned char h[FRAME_HEADER], uint8_t type, uint32_t chan, uint32_t len);

/*
 * Decodes the frame at the start of buf[0..n). FRAME_OK: *f is set and the frame takes
 * FRAME_HEADER + f->len bytes. FRAME_INCOMPLETE: wait for more bytes. FRAME_TOO_LARGE: the header
 * announces more than `max` payload bytes (known as soon as the header is in); close the connection.
 */
enum frame_result frame_decode(const unsigned char *buf, size_t n, uint32_t max, struct frame *f);

/* An exec payload: flags u8, cols u16, rows u16, argc u32, envc u32, then NUL-terminated strings. */
struct exec_request {
  uint8_t flags;
  uint16_t cols, rows;
  uint32_t argc, envc;
  char **argv;          /* argc entries + NULL, pointing into the payload */
  char **envp;          /* envc entries + NULL + env_spare free slots */
  const char *cwd;      /* may be empty */
  const char *log_path; /* with EXEC_LOG_FILE, else NULL */
};

#define EXEC_FIXED 13
#define EXEC_MAX_STRINGS 100000

/*
 * Parses an exec payload; its strings stay in `p`. Returns 0, or -1 when malformed (shorter than
 * 13 bytes, argc 0, argc or envc over EXEC_MAX_STRINGS, a string without its NUL). Free with exec_free().
 */
int exec_decode(const unsigned char *p, uint32_t len, size_t env_spare, struct exec_request *r);
void exec_free(struct exec_request *r);

/*
 * Encodes an exec payload into out (NULL: only measure); returns its length. argv and envp are
 * NULL-terminated; log_path is written when flags has EXEC_LOG_FILE.
 */
size_t exec_encode(unsigned char *out, uint8_t flags, uint16_t cols, uint16_t rows, char *const *argv,
                   char *const *envp, const char *cwd, const char *log_path);

/* Exit payload: kind u8, value u32 (exit code or signal number). */
void exit_encode(unsigned char out[5], uint8_t kind, uint32_t value);

#endif
