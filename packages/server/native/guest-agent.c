/*
 * The guest agent: PID 1 of every Mags sandbox.
 *
 * At start it connects to the host's per-sandbox unix socket (/run/mags/host.sock, a host
 * directory bind-mounted into the sandbox) and serves that one connection until it closes; then
 * it kills everything and exits, which ends the sandbox. Nothing inside the sandbox can talk to it.
 *
 * Wire format: frames of a 9-byte header (type u8, channel u32 BE, length u32 BE) and a payload;
 * a channel is one process the host started. docs/guest-agent.md specifies every frame type both
 * ways, limits and ordering; frame.c encodes and decodes them, checked by test/frames.json.
 *
 * Output is read only while the host keeps up (at most OUT_HIGH bytes queued) and, for a channel
 * started with an output window, only while the host granted credit for it (its consumer drains),
 * so a flood or a slow reader blocks the writer instead of growing memory. PID 1 reaps every orphan.
 *
 * The binary is `mags-guest`. `mags-guest host` speaks the same protocol on fd 3 as the daemon's
 * process spawner on the host: a tiny process forks crun and the helpers instead of the daemon's
 * large Node process. It also carries the daemon's host-side helpers for the sandbox root
 * (sub-commands `layer`, `overlay`, `unmount`, in host-helpers.c): one fork+exec instead of
 * mkfs/losetup/mount(8) each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define HOST_SOCKET "/run/mags/host.sock"
#define OUT_HIGH (256 * 1024)
#define READ_CHUNK 65536
/* After a script's main process exited, processes it left behind may hold its output open: the
 * session ends once the output stayed quiet this long (and the host keeps up), or at the latest
 * EXIT_MAX_DRAIN_MS after the exit (a background process that keeps writing). */
#define EXIT_GRACE_MS 100
#define EXIT_MAX_DRAIN_MS 5000

struct buf {
  char *data;
  size_t len, cap;
};

static void buf_append(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) { perror("mags-guest: realloc"); _exit(1); }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void buf_consume(struct buf *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  if (b->len == 0 && b->cap > 1024 * 1024) { free(b->data); b->data = NULL; b->cap = 0; }
}

struct session {
  uint32_t chan;
  pid_t pid;
  int out_fd, err_fd, in_fd; /* -1 when closed; for a pty out_fd == in_fd == master */
  int pty;
  int exited, status;
  int64_t exited_at, last_output;
  int stdin_eof;
  /* With EXEC_OUTPUT_WINDOW: output bytes the host still takes (its grants minus what was sent). */
  int windowed;
  int64_t credit;
  struct buf in;
  struct session *next;
};

static int conn = -1;
/* Host mode (`mags-guest host`): the daemon's process spawner on the host, serving fd 3. It never
 * signals anything but its own children and leaves the OOM score alone. */
static int host_mode = 0;
static struct buf outq, inq;
static struct session *sessions;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_frame(char type, uint32_t chan, const void *payload, uint32_t len) {
  unsigned char h[FRAME_HEADER];
  frame_header(h, (uint8_t)type, chan, len);
  buf_append(&outq, h, FRAME_HEADER);
  if (len) buf_append(&outq, payload, len);
}

/* Tells the host that n bytes of a channel's stdin left the guest's buffer (written, or dropped). */
static void ack_stdin(uint32_t chan, size_t n) {
  unsigned char a[4];
  while (n > 0) {
    uint32_t part = n > 0xffffffffu ? 0xffffffffu : (uint32_t)n;
    a[0] = (unsigned char)(part >> 24); a[1] = (unsigned char)(part >> 16); a[2] = (unsigned char)(part >> 8); a[3] = (unsigned char)part;
    send_frame(FRAME_ACK, chan, a, 4);
    n -= part;
  }
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static struct session *find_session(uint32_t chan) {
  for (struct session *s = sessions; s; s = s->next) if (s->chan == chan) return s;
  return NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void session_close_in(struct session *s) {
  if (s->pty) { s->stdin_eof = 1; return; }
  close_fd(&s->in_fd);
}

/* Child side of exec: never returns. */
static void child_exec(int pty_slave, int in_r, int out_w, int err_w, char **argv, char **envp, const char *cwd,
                       uint16_t cols, uint16_t rows, const char *log_path) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
  setsid();
  /* Scripts go before the agent (and before host processes) when memory runs out. */
  if (!host_mode) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) { (void)!write(fd, "500", 3); close(fd); }
  }
  if (pty_slave >= 0) {
    ioctl(pty_slave, TIOCSCTTY, 0);
    if (cols && rows) {
      struct winsize ws = { .ws_row = rows, .ws_col = cols };
      ioctl(pty_slave, TIOCSWINSZ, &ws);
    }
    dup2(pty_slave, 0);
    dup2(pty_slave, 1);
    dup2(pty_slave, 2);
    if (pty_slave > 2) close(pty_slave);
  } else if (log_path) {
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log < 0) _exit(126);
    dup2(in_r, 0);
    dup2(log, 1);
    dup2(log, 2);
    if (log > 2) close(log);
  } else {
    dup2(in_r, 0);
    dup2(out_w, 1);
    dup2(err_w, 2);
  }
  if (chdir(cwd) != 0) {
    dprintf(2, "mags-guest: cannot change directory to %s: %s\n", cwd, strerror(errno));
    _exit(127);
  }
  execve(argv[0], argv, envp);
  if (errno == ENOENT && strcmp(argv[0], "/bin/bash") == 0) {
    argv[0] = "/bin/sh";
    execve(argv[0], argv, envp);
  }
  dprintf(2, "mags-guest: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

static int has_env(char **envp, int n, const char *key) {
  size_t k = strlen(key);
  for (int i = 0; i < n; i++) if (strncmp(envp[i], key, k) == 0 && envp[i][k] == '=') return 1;
  return 0;
}

static void start_session(uint32_t chan, const unsigned char *p, uint32_t len) {
  const char *fail = "malformed exec frame";
  struct exec_request req;
  /* Room for the default variables below, TERM and the terminating NULL. */
  if (find_session(chan) || exec_decode(p, len, 11, &req) != 0) goto bad;
  uint8_t flags = req.flags;
  uint16_t cols = req.cols, rows = req.rows;
  char **argv = req.argv, **envp = req.envp;
  const char *cwd = req.cwd, *log_path = req.log_path;
  int n = (int)req.envc;
  static const char *defaults[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root",
    "LOGNAME=root", "SHELL=/bin/bash", "HOSTNAME=mags-vm", "LANG=C.UTF-8", NULL};
  for (int i = 0; defaults[i]; i++) {
    char key[32];
    size_t k = (size_t)(strchr(defaults[i], '=') - defaults[i]);
    memcpy(key, defaults[i], k);
    key[k] = 0;
    if (!has_env(envp, n, key)) envp[n++] = (char *)defaults[i];
  }
  if ((flags & EXEC_PTY) && !has_env(envp, n, "TERM")) envp[n++] = "TERM=xterm-256color";
  envp[n] = NULL;
  if (!cwd || !*cwd) cwd = "/root";

  struct session *s = calloc(1, sizeof *s);
  s->chan = chan;
  s->windowed = (flags & EXEC_OUTPUT_WINDOW) != 0;
  s->credit = OUTPUT_WINDOW;
  s->out_fd = s->err_fd = s->in_fd = -1;
  int pty_slave = -1, in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  if (flags & EXEC_PTY) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) || unlockpt(master)) { fail = "cannot allocate a pty"; goto fail_session; }
    const char *name = ptsname(master);
    pty_slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (pty_slave < 0) { close(master); fail = "cannot open the pty"; goto fail_session; }
    s->pty = 1;
    s->out_fd = s->in_fd = master;
  } else if (log_path) {
    /* Output goes straight to a file (a detached child may keep it open long after exiting). */
    in_p[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  } else {
    if (pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC)) { fail = "cannot create pipes"; goto fail_session; }
    if (flags & EXEC_STDIN) {
      if (pipe2(in_p, O_CLOEXEC)) { fail = "cannot create pipes"; goto fail_session; }
    } else {
      in_p[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
  }
  pid_t pid = fork();
  if (pid < 0) { fail = "fork failed (process limit reached?)"; goto fail_session; }
  if (pid == 0) child_exec(pty_slave, in_p[0], out_p[1], err_p[1], argv, envp, cwd, cols, rows, log_path);
  s->pid = pid;
  if (pty_slave >= 0) close(pty_slave);
  if (!s->pty) {
    if (out_p[1] >= 0) close(out_p[1]);
    if (err_p[1] >= 0) close(err_p[1]);
    if (in_p[0] >= 0) close(in_p[0]);
    s->out_fd = out_p[0];
    s->err_fd = err_p[0];
    s->in_fd = in_p[1];
  }
  if (s->out_fd >= 0) set_nonblock(s->out_fd);
  if (s->err_fd >= 0) set_nonblock(s->err_fd);
  if (s->in_fd >= 0 && !s->pty) set_nonblock(s->in_fd);
  exec_free(&req);
  s->next = sessions;
  sessions = s;
  unsigned char pb[4];
  frame_put32(pb, (uint32_t)pid);
  send_frame(FRAME_STARTED, chan, pb, 4);
  return;

fail_session:
  for (int i = 0; i < 2; i++) {
    if (in_p[i] >= 0) close(in_p[i]);
    if (out_p[i] >= 0) close(out_p[i]);
    if (err_p[i] >= 0) close(err_p[i]);
  }
  if (pty_slave >= 0) close(pty_slave);
  if (s->out_fd >= 0) close(s->out_fd);
  free(s);
  exec_free(&req);
bad:
  send_frame(FRAME_STDERR, chan, "mags-guest: ", 12);
  send_frame(FRAME_STDERR, chan, fail, (uint32_t)strlen(fail));
  send_frame(FRAME_STDERR, chan, "\n", 1);
  {
    unsigned char x[5];
    exit_encode(x, EXIT_CODE, 127);
    send_frame(FRAME_EXIT, chan, x, 5);
  }
}

static void handle_frame(char type, uint32_t chan, const unsigned char *p, uint32_t len) {
  struct session *s = type == FRAME_EXEC || type == FRAME_PING ? NULL : find_session(chan);
  switch (type) {
  case FRAME_EXEC: start_session(chan, p, len); break;
  case FRAME_PING: send_frame(FRAME_PING, chan, p, len); break;
  case FRAME_STDIN:
    if (s && !s->stdin_eof && s->in_fd >= 0) buf_append(&s->in, p, len);
    else if (len) ack_stdin(chan, len);
    break;
  case FRAME_EOF:
    if (s) { s->stdin_eof = 1; if (s->in.len == 0) session_close_in(s); }
    break;
  case FRAME_GRANT:
    if (s && len >= 4) s->credit += frame_get32(p);
    break;
  case FRAME_RESIZE:
    if (s && s->pty && len >= 4) {
      struct winsize ws = { .ws_row = frame_get16(p + 2), .ws_col = frame_get16(p) };
      ioctl(s->out_fd, TIOCSWINSZ, &ws);
    }
    break;
  case FRAME_KILL:
    if (len >= 2 && p[1] == 1) { if (!host_mode) kill(-1, p[0]); }
    else if (s && len >= 1 && !s->exited) kill(-s->pid, p[0]);
    break;
  }
}

/* True while the session may read its output (the host granted room for more). */
static int has_credit(const struct session *s) { return !s->windowed || s->credit > 0; }

/* Reads once from an output fd into the host queue (at most the credit left); returns 0 on
 * EOF/error (fd closed). */
static int pump(struct session *s, int *fd, char type) {
  char tmp[READ_CHUNK];
  size_t want = sizeof tmp;
  if (s->windowed && (int64_t)want > s->credit) want = (size_t)s->credit;
  if (want == 0) return 1;
  ssize_t n = read(*fd, tmp, want);
  if (n > 0) {
    if (s->windowed) s->credit -= n;
    send_frame(type, s->chan, tmp, (uint32_t)n);
    if (s->exited) s->last_output = now_ms();
    return 1;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
  if (s->pty) s->in_fd = -1; /* same fd as out_fd */
  close_fd(fd);
  return 0;
}

static void finish_session(struct session *s) {
  /* Whatever is still buffered in the pipes (a background process may hold them open). */
  for (int i = 0; i < 16 && s->out_fd >= 0 && outq.len < OUT_HIGH && has_credit(s); i++) if (!pump(s, &s->out_fd, 'O')) break;
  for (int i = 0; i < 16 && s->err_fd >= 0 && outq.len < OUT_HIGH && has_credit(s); i++) if (!pump(s, &s->err_fd, 'E')) break;
  if (s->pty) s->in_fd = -1;
  close_fd(&s->out_fd);
  close_fd(&s->err_fd);
  close_fd(&s->in_fd);
  unsigned char x[5];
  if (WIFSIGNALED(s->status)) exit_encode(x, EXIT_SIGNAL, (uint32_t)WTERMSIG(s->status));
  else exit_encode(x, EXIT_CODE, (uint32_t)WEXITSTATUS(s->status));
  send_frame(FRAME_EXIT, s->chan, x, 5);
  free(s->in.data);
  for (struct session **pp = &sessions; *pp; pp = &(*pp)->next) {
    if (*pp == s) { *pp = s->next; break; }
  }
  free(s);
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (struct session *s = sessions; s; s = s->next) {
      if (s->pid == pid && !s->exited) { s->exited = 1; s->status = status; s->exited_at = s->last_output = now_ms(); }
    }
  }
}

static int connect_host(void) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  strncpy(addr.sun_path, HOST_SOCKET, sizeof addr.sun_path - 1);
  for (int attempt = 0; attempt < 5000; attempt++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
    close(fd);
    usleep(1000);
  }
  return -1;
}

static int serve(int fd) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  conn = fd >= 0 ? fd : connect_host();
  if (conn < 0) { perror("mags-guest: cannot connect to " HOST_SOCKET); return 1; }
  set_nonblock(conn);
  send_frame(FRAME_HELLO, 0, GUEST_HELLO, (uint32_t)strlen(GUEST_HELLO));

  struct pollfd *pfds = NULL;
  struct session **owners = NULL;
  char *kinds = NULL;
  size_t cap = 0;
  for (;;) {
    /* Finish sessions whose process exited and whose output is drained (or went quiet). */
    int64_t now = now_ms(), timeout = -1;
    for (struct session *s = sessions, *next; s; s = next) {
      next = s->next;
      if (!s->exited) continue;
      if (!has_credit(s) && (s->out_fd >= 0 || s->err_fd >= 0)) {
        /* The host's reader is paused: what is left in the pipes waits for its grant, however long
         * (the drain limits count from the grant). */
        s->exited_at = s->last_output = now;
        continue;
      }
      /* While the host lags behind, unread output is not silence: wait (up to the hard limit). */
      int64_t quiet = outq.len < OUT_HIGH ? s->last_output + EXIT_GRACE_MS - now : EXIT_GRACE_MS;
      int64_t hard = s->exited_at + EXIT_MAX_DRAIN_MS - now;
      int64_t left = quiet < hard ? quiet : hard;
      if ((s->out_fd < 0 && s->err_fd < 0) || left <= 0) finish_session(s);
      else if (timeout < 0 || left < timeout) timeout = left;
    }
    size_t n = 0, want = 2;
    for (struct session *s = sessions; s; s = s->next) want += 3;
    if (want > cap) {
      cap = want * 2;
      pfds = realloc(pfds, cap * sizeof *pfds);
      owners = realloc(owners, cap * sizeof *owners);
      kinds = realloc(kinds, cap);
    }
    int stdin_full = 0;
    for (struct session *s = sessions; s; s = s->next) if (s->in.len > OUT_HIGH * 4) stdin_full = 1;
    pfds[n] = (struct pollfd){ .fd = conn, .events = (short)((stdin_full ? 0 : POLLIN) | (outq.len ? POLLOUT : 0)) };
    owners[n] = NULL; kinds[n++] = 'c';
    pfds[n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    owners[n] = NULL; kinds[n++] = 's';
    int reading = outq.len < OUT_HIGH;
    for (struct session *s = sessions; s; s = s->next) {
      int rd = reading && has_credit(s);
      if (rd && s->out_fd >= 0) { pfds[n] = (struct pollfd){ .fd = s->out_fd, .events = POLLIN }; owners[n] = s; kinds[n++] = 'O'; }
      if (rd && s->err_fd >= 0) { pfds[n] = (struct pollfd){ .fd = s->err_fd, .events = POLLIN }; owners[n] = s; kinds[n++] = 'E'; }
      if (s->in.len && s->in_fd >= 0) { pfds[n] = (struct pollfd){ .fd = s->in_fd, .events = POLLOUT }; owners[n] = s; kinds[n++] = 'I'; }
    }
    if (poll(pfds, (nfds_t)n, (int)timeout) < 0) {
      if (errno == EINTR) continue;
      perror("mags-guest: poll");
      return 1;
    }
    for (size_t i = 0; i < n; i++) {
      short re = pfds[i].revents;
      if (!re) continue;
      struct session *s = owners[i];
      if (kinds[i] == 's') {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) > 0) {}
        reap();
      } else if (kinds[i] == 'c') {
        if (re & POLLOUT) {
          ssize_t w = write(conn, outq.data, outq.len);
          if (w > 0) buf_consume(&outq, (size_t)w);
          else if (w < 0 && errno != EAGAIN && errno != EINTR) goto host_gone;
        }
        if (re & (POLLIN | POLLHUP | POLLERR)) {
          char tmp[READ_CHUNK];
          ssize_t r = read(conn, tmp, sizeof tmp);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) goto host_gone;
          if (r > 0) buf_append(&inq, tmp, (size_t)r);
          struct frame f;
          enum frame_result fr;
          while ((fr = frame_decode((const unsigned char *)inq.data, inq.len, GUEST_MAX_PAYLOAD, &f)) == FRAME_OK) {
            handle_frame((char)f.type, f.chan, f.payload, f.len);
            buf_consume(&inq, FRAME_HEADER + (size_t)f.len);
          }
          if (fr == FRAME_TOO_LARGE) { fprintf(stderr, "mags-guest: frame too large\n"); goto host_gone; }
        }
      } else if (kinds[i] == 'I') {
        if (s->in_fd < 0 || s->in.len == 0) continue;
        ssize_t w = write(s->in_fd, s->in.data, s->in.len);
        if (w > 0) { buf_consume(&s->in, (size_t)w); ack_stdin(s->chan, (size_t)w); }
        else if (w < 0 && errno != EAGAIN && errno != EINTR) { ack_stdin(s->chan, s->in.len); s->in.len = 0; session_close_in(s); }
        if (s->in.len == 0 && s->stdin_eof) session_close_in(s);
      } else if (kinds[i] == 'O' && s->out_fd >= 0) {
        pump(s, &s->out_fd, 'O');
      } else if (kinds[i] == 'E' && s->err_fd >= 0) {
        pump(s, &s->err_fd, 'E');
      }
    }
  }
host_gone:
  /* The host closed the connection: the sandbox is being torn down (host mode: the daemon exited). */
  if (!host_mode) kill(-1, SIGKILL);
  return 0;
}


/* host-helpers.c */
int cmd_layer(int argc, char **argv);
int cmd_overlay(int argc, char **argv);
int cmd_unmount(int argc, char **argv);
int cmd_sysfs(int argc, char **argv);
int cmd_procview(int argc, char **argv);
/* guest-fs.c */
int cmd_fs(int argc, char **argv);
int cmd_slot(int argc, char **argv);

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "layer") == 0) return cmd_layer(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "overlay") == 0) return cmd_overlay(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "unmount") == 0) return cmd_unmount(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "sysfs") == 0) return cmd_sysfs(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "procview") == 0) return cmd_procview(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "fs") == 0) return cmd_fs(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "slot") == 0) return cmd_slot(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) { puts(GUEST_HELLO); return 0; }
  if (argc >= 2 && strcmp(argv[1], "host") == 0) {
    host_mode = 1;
    /* Detached sandboxes (crun run --detach) are reparented here and reaped, even where the
     * host's PID 1 does not reap orphans. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return serve(3);
  }
  /* Not dumpable: scripts (root, same capabilities) cannot open /proc/1/mem or /proc/1/fd to take
   * over the agent. Children become dumpable again when they exec. */
  prctl(PR_SET_DUMPABLE, 0);
  return serve(-1);
}
