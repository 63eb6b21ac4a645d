/*
 * Host-side helpers of the mags-guest binary, run by the daemon on the host (never inside a
 * sandbox) to set up and tear down a sandbox's root: one fork+exec instead of mkfs, losetup and
 * mount(8) each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct mags_loop_info64 {
  uint64_t lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit;
  uint32_t lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags;
  uint8_t lo_file_name[64], lo_crypt_name[64], lo_encrypt_key[32];
  uint64_t lo_init[2];
};
struct mags_loop_config {
  uint32_t fd, block_size;
  struct mags_loop_info64 info;
  uint64_t reserved[8];
};
#define MAGS_LOOP_CONFIGURE 0x4C0A
#define MAGS_LOOP_CTL_GET_FREE 0x4C82
#define MAGS_LO_FLAGS_AUTOCLEAR 4

static int fail_errno(const char *what, const char *arg) {
  fprintf(stderr, "mags-guest: %s %s: %s\n", what, arg, strerror(errno));
  return 1;
}

/* Copies the data extents of a sparse file (holes stay holes). */
static int sparse_copy(const char *src, const char *dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return fail_errno("open", src);
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) { close(in); return fail_errno("create", dst); }
  off_t size = lseek(in, 0, SEEK_END);
  if (size < 0 || ftruncate(out, size) != 0) { close(in); close(out); return fail_errno("size", dst); }
  static char buf[1 << 20];
  off_t pos = 0;
  for (;;) {
    off_t data = lseek(in, pos, SEEK_DATA);
    if (data < 0) break; /* ENXIO: no more data */
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    for (off_t o = data; o < hole;) {
      size_t want = (size_t)(hole - o) < sizeof buf ? (size_t)(hole - o) : sizeof buf;
      ssize_t r = pread(in, buf, want, o);
      if (r <= 0) { close(in); close(out); return fail_errno("read", src); }
      if (pwrite(out, buf, (size_t)r, o) != r) { close(in); close(out); return fail_errno("write", dst); }
      o += r;
    }
    pos = hole;
    if (pos >= size) break;
  }
  close(in);
  if (close(out) != 0) return fail_errno("close", dst);
  return 0;
}

/* Attaches `file` to a free loop device (detached automatically on the last unmount). */
static int loop_attach(const char *file, char *dev, size_t devlen) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return fail_errno("open", "/dev/loop-control");
  int ffd = open(file, O_RDWR | O_CLOEXEC);
  if (ffd < 0) { close(ctl); return fail_errno("open", file); }
  for (int attempt = 0; attempt < 64; attempt++) {
    int n = ioctl(ctl, MAGS_LOOP_CTL_GET_FREE);
    if (n < 0) { close(ctl); close(ffd); return fail_errno("find a free loop device", ""); }
    snprintf(dev, devlen, "/dev/loop%d", n);
    int lfd = open(dev, O_RDWR | O_CLOEXEC);
    if (lfd < 0) continue;
    struct mags_loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (uint32_t)ffd;
    cfg.info.lo_flags = MAGS_LO_FLAGS_AUTOCLEAR;
    strncpy((char *)cfg.info.lo_file_name, file, sizeof cfg.info.lo_file_name - 1);
    int rc = ioctl(lfd, MAGS_LOOP_CONFIGURE, &cfg);
    int err = errno;
    if (rc == 0) { close(ctl); close(ffd); return lfd; } /* keep lfd open until mounted */
    close(lfd);
    if (err != EBUSY) { errno = err; close(ctl); close(ffd); return -fail_errno("configure", dev); }
  }
  close(ctl);
  close(ffd);
  fprintf(stderr, "mags-guest: no free loop device\n");
  return -1;
}

/* New mount API (Linux >= 5.12 for mount_setattr); numbers are the same on every architecture. */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define MAGS_OPEN_TREE_CLONE 1
#define MAGS_AT_EMPTY_PATH 0x1000
#define MAGS_MOUNT_ATTR_IDMAP 0x00100000ULL
#define MAGS_MOVE_MOUNT_F_EMPTY_PATH 0x4
struct mags_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

/* Mounts a clone of SRC at TARGET (an empty directory) idmapped through the user namespace NS. */
static int idmap_mount(int ns, const char *src, const char *target) {
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, MAGS_OPEN_TREE_CLONE | O_CLOEXEC);
  if (tree < 0) return fail_errno("open_tree", src);
  struct mags_mount_attr attr = { MAGS_MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)ns };
  int rc = 0;
  if (syscall(SYS_mount_setattr, tree, "", MAGS_AT_EMPTY_PATH, &attr, sizeof attr) != 0) rc = fail_errno("idmap (mount_setattr MOUNT_ATTR_IDMAP; Linux >= 5.12 and a file system that supports it)", src);
  else if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MAGS_MOVE_MOUNT_F_EMPTY_PATH) != 0) rc = fail_errno("move_mount to", target);
  close(tree);
  return rc;
}

/*
 * Layers of a sandbox in its own uid range ("slot") whose files live on the host in the image's id
 * range: the first NMAP lower directories, and the directory holding UPPER and WORK when UPPER is
 * set, are mounted idmapped through NSFILE (a pinned user namespace mapping the image's ids to the
 * slot's) under STAGING; the overlay takes those mounts as its layers and holds its own clones of
 * them, so idmap_release() detaches the staging mounts right after the overlay is mounted.
 */
struct idmapped {
  char staging[4096];
  int nlower, has_upper; /* staging mounts made: l0..l(nlower-1), and u */
  char lower[16384], upper[8400], work[8400];
};

static void idmap_release(struct idmapped *m) {
  char path[4200];
  for (int i = 0; i < m->nlower + m->has_upper; i++) {
    if (i < m->nlower) snprintf(path, sizeof path, "%s/l%d", m->staging, i);
    else snprintf(path, sizeof path, "%s/u", m->staging);
    umount2(path, MNT_DETACH);
    rmdir(path);
  }
  if (m->staging[0]) rmdir(m->staging);
  m->nlower = m->has_upper = 0;
}

static int idmap_layers(struct idmapped *m, const char *nsfile, const char *staging, int nmap, const char *lower, const char *upper, const char *work) {
  memset(m, 0, sizeof *m);
  snprintf(m->staging, sizeof m->staging, "%s", staging);
  int ns = open(nsfile, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return fail_errno("open", nsfile);
  if (mkdir(staging, 0700) != 0 && errno != EEXIST) { close(ns); return fail_errno("mkdir", staging); }
  char path[4200], copy[16384];
  snprintf(copy, sizeof copy, "%s", lower);
  size_t used = 0;
  int i = 0, rc = 0;
  for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save), i++) {
    const char *out = dir;
    if (i < nmap) {
      snprintf(path, sizeof path, "%s/l%d", staging, i);
      if (mkdir(path, 0700) != 0 && errno != EEXIST) { rc = fail_errno("mkdir", path); break; }
      if (idmap_mount(ns, dir, path)) { rmdir(path); rc = 1; break; }
      m->nlower++;
      out = path;
    }
    int n = snprintf(m->lower + used, sizeof m->lower - used, "%s%s", used ? ":" : "", out);
    if (n < 0 || (size_t)n >= sizeof m->lower - used) { fprintf(stderr, "mags-guest: lower directories too long\n"); rc = 1; break; }
    used += (size_t)n;
  }
  if (!rc && upper) {
    /* UPPER and WORK must be siblings: one idmapped mount of their directory holds both. */
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s", upper);
    snprintf(b, sizeof b, "%s", work);
    char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    if (!sa || !sb || sa - a != sb - b || strncmp(a, b, (size_t)(sa - a)) != 0) { fprintf(stderr, "mags-guest: upper and work directories must be siblings\n"); rc = 1; }
    else {
      *sa = 0;
      snprintf(path, sizeof path, "%s/u", staging);
      if (mkdir(path, 0700) != 0 && errno != EEXIST) rc = fail_errno("mkdir", path);
      else if (idmap_mount(ns, a[0] ? a : "/", path)) { rmdir(path); rc = 1; }
      else {
        m->has_upper = 1;
        snprintf(m->upper, sizeof m->upper, "%s/%s", path, sa + 1);
        snprintf(m->work, sizeof m->work, "%s/%s", path, sb + 1);
      }
    }
  }
  close(ns);
  if (rc) idmap_release(m);
  return rc;
}

/*
 * layer TEMPLATE IMAGE DISKDIR ROOTFS LOWERDIRS ROOTID
 *   copies the empty ext4 TEMPLATE to IMAGE, loop-mounts it at DISKDIR, creates upper/ (owned by
 *   ROOTID, the host id of root in the sandbox) and work/ in it and mounts the overlay root at
 *   ROOTFS. Undoes its mounts when a step fails.
 * overlay ROOTFS LOWERDIRS UPPER WORK ROOTID
 *   mounts an overlay root on an existing upper directory (workspace layers), which it gives to ROOTID.
 * Both take [IDMAPNS STAGING NMAP]: the first NMAP lower directories (and overlay's UPPER and WORK)
 *   are host directories in the image's id range, seen idmapped (see idmap_layers).
 * unmount PATH...
 *   unmounts each path (lazily when busy); paths that are not mounted are skipped.
 */
static int layer_mount(const char *tmpl, const char *image, const char *disk, const char *rootfs, const char *lower, uid_t root_id);

int cmd_layer(int argc, char **argv) {
  if (argc != 8 && argc != 11) { fprintf(stderr, "usage: mags-guest layer TEMPLATE IMAGE DISKDIR ROOTFS LOWERDIRS ROOTID [IDMAPNS STAGING NMAP]\n"); return 2; }
  const char *tmpl = argv[2], *image = argv[3], *disk = argv[4], *rootfs = argv[5], *lower = argv[6];
  uid_t root_id = (uid_t)strtoul(argv[7], NULL, 10);
  struct idmapped m = { 0 };
  if (argc == 11) {
    if (idmap_layers(&m, argv[8], argv[9], atoi(argv[10]), lower, NULL, NULL)) return 1;
    lower = m.lower;
  }
  int rc = layer_mount(tmpl, image, disk, rootfs, lower, root_id);
  if (argc == 11) idmap_release(&m);
  return rc;
}

static int layer_mount(const char *tmpl, const char *image, const char *disk, const char *rootfs, const char *lower, uid_t root_id) {
  if (sparse_copy(tmpl, image)) return 1;
  char dev[64];
  int lfd = loop_attach(image, dev, sizeof dev);
  if (lfd < 0) return 1;
  if (mount(dev, disk, "ext4", MS_NOATIME, "discard,noinit_itable") != 0) { close(lfd); return fail_errno("mount ext4 at", disk); }
  close(lfd);
  char upper[4096], work[4096], opts[16384];
  snprintf(upper, sizeof upper, "%s/upper", disk);
  snprintf(work, sizeof work, "%s/work", disk);
  if (mkdir(upper, 0755) != 0 || mkdir(work, 0755) != 0 || chown(upper, root_id, root_id) != 0) {
    fail_errno("mkdir in", disk);
    umount2(disk, MNT_DETACH);
    return 1;
  }
  int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s,index=off,xino=off,volatile", lower, upper, work);
  if (n >= (int)sizeof opts) { fprintf(stderr, "mags-guest: overlay options too long\n"); umount2(disk, MNT_DETACH); return 1; }
  if (mount("overlay", rootfs, "overlay", 0, opts) != 0) { fail_errno("mount overlay at", rootfs); umount2(disk, MNT_DETACH); return 1; }
  printf("%s\n", dev); /* the daemon waits for this device to be released on teardown */
  return 0;
}

int cmd_overlay(int argc, char **argv) {
  if (argc != 7 && argc != 10) { fprintf(stderr, "usage: mags-guest overlay ROOTFS LOWERDIRS UPPER WORK ROOTID [IDMAPNS STAGING NMAP]\n"); return 2; }
  const char *lower = argv[3], *upper = argv[4], *work = argv[5];
  uid_t root_id = (uid_t)strtoul(argv[6], NULL, 10);
  if (chown(upper, root_id, root_id) != 0) return fail_errno("chown", upper);
  struct idmapped m = { 0 };
  if (argc == 10) {
    if (idmap_layers(&m, argv[7], argv[8], atoi(argv[9]), lower, upper, work)) return 1;
    lower = m.lower, upper = m.upper, work = m.work;
  }
  char opts[16384];
  int rc = 0;
  int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s,index=off,xino=off", lower, upper, work);
  if (n >= (int)sizeof opts) { fprintf(stderr, "mags-guest: overlay options too long\n"); rc = 1; }
  else if (mount("overlay", argv[2], "overlay", 0, opts) != 0) rc = fail_errno("mount overlay at", argv[2]);
  if (argc == 10) idmap_release(&m);
  return rc;
}

int cmd_unmount(int argc, char **argv) {
  int rc = 0;
  for (int i = 2; i < argc; i++) {
    if (umount2(argv[i], 0) == 0 || errno == EINVAL || errno == ENOENT) continue;
    if (errno == EBUSY && umount2(argv[i], MNT_DETACH) == 0) continue;
    rc = fail_errno("unmount", argv[i]);
  }
  return rc;
}


/* mags-guest sysfs NETNS TARGET: mounts a read-only sysfs as seen from network namespace NETNS
 * (its /sys/class/net lists that namespace's interfaces) at TARGET. */
int cmd_sysfs(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: mags-guest sysfs NETNS TARGET\n"); return 2; }
  int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open", argv[2]);
  if (setns(fd, CLONE_NEWNET) != 0) { close(fd); return fail_errno("setns", argv[2]); }
  close(fd);
  if (mount("sysfs", argv[3], "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) return fail_errno("mount sysfs at", argv[3]);
  return 0;
}


static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int err = errno;
  close(fd);
  errno = err;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * Forks a child that (after dropping to host uid/gid OWNER when OWNER >= 0) creates a user
 * namespace, whose uid and gid maps the parent then writes as "INSIDE OUTSIDE COUNT". The child
 * runs `inside` (may be NULL) as mapped root of the namespace, then waits until `release_fd`
 * (returned) is closed. Returns the child's pid, or -1.
 */
static pid_t userns_child(long owner, const char *map, const char *limits, int *release_fd) {
  int ready[2], go[2], done[2];
  if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC) || pipe2(done, O_CLOEXEC)) return fail_errno("pipe", ""), -1;
  pid_t pid = fork();
  if (pid < 0) return fail_errno("fork", ""), -1;
  if (pid == 0) {
    close(ready[0]); close(go[1]); close(done[0]);
    char c = 1;
    if (owner >= 0 && (setgroups(0, NULL) || setresgid((gid_t)owner, (gid_t)owner, (gid_t)owner) || setresuid((uid_t)owner, (uid_t)owner, (uid_t)owner))) c = 2;
    if (c == 1 && unshare(CLONE_NEWUSER) != 0) c = 3;
    if (write(ready[1], &c, 1) != 1 || c != 1) _exit(1);
    if (read(go[0], &c, 1) != 1) _exit(1);
    /* Mapped root of the new namespace: its /proc/sys/user limits are writable now. */
    c = 0;
    char buf[512];
    for (const char *p = limits; p && *p;) {
      const char *end = strchr(p, ','), *eq = strchr(p, '=');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      if (!eq || eq > p + len) { c = 4; break; }
      char path[128];
      snprintf(path, sizeof path, "/proc/sys/user/%.*s", (int)(eq - p), p);
      snprintf(buf, sizeof buf, "%.*s\n", (int)(p + len - eq - 1), eq + 1);
      if (write_text(path, buf) != 0) { fprintf(stderr, "mags-guest: set %s: %s\n", path, strerror(errno)); c = 5; break; }
      p = end ? end + 1 : NULL;
    }
    if (write(done[1], &c, 1) != 1) _exit(1);
    while (read(go[0], &c, 1) > 0) {}
    _exit(0);
  }
  close(ready[1]); close(go[0]); close(done[1]);
  char c = 0;
  if (read(ready[0], &c, 1) != 1 || c != 1) {
    fprintf(stderr, "mags-guest: the user namespace child failed (%s)\n", c == 2 ? "setuid" : c == 3 ? "unshare" : "exited");
    goto fail;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  if (write_text(path, map) != 0) { fail_errno("write", path); goto fail; }
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  if (write_text(path, map) != 0) { fail_errno("write", path); goto fail; }
  if (write(go[1], &c, 1) != 1 || read(done[0], &c, 1) != 1 || c != 0) { fprintf(stderr, "mags-guest: setting the namespace limits failed\n"); goto fail; }
  close(ready[0]); close(done[0]);
  *release_fd = go[1];
  return pid;
fail:
  close(ready[0]); close(done[0]); close(go[1]);
  waitpid(pid, NULL, 0);
  return -1;
}

static void release_child(pid_t pid, int fd) {
  close(fd);
  waitpid(pid, NULL, 0);
}

/* Pins the user namespace of process PID at FILE (created if missing) with a bind mount. */
static int pin_userns(pid_t pid, const char *file) {
  int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno("create", file);
  close(fd);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  if (mount(path, file, NULL, MS_BIND, NULL) != 0) return fail_errno("pin the user namespace at", file);
  return 0;
}

/*
 * mags-guest slot NSFILE BASE COUNT LIMITS IMAGE TARGET FROM IDMAPFILE
 *   Creates the user namespace of a sandbox slot: made by a process of host uid BASE (so the
 *   kernel charges its ucounts, inotify instances, mqueue bytes and the like, to BASE, not to host
 *   root), mapping 0..COUNT-1 to BASE..BASE+COUNT-1, with /proc/sys/user limits LIMITS
 *   ("max_inotify_instances=128,..."), and pins it at NSFILE (a bind mount crun joins). Pins at
 *   IDMAPFILE a second namespace that maps host ids FROM.. to BASE.. (the idmapping of the
 *   slot's layers: `layer`/`overlay` take it for host directories in the image's id range) and
 *   mounts IMAGE at TARGET idmapped through it (the shared read-only image, seen with the slot's ids).
 */
int cmd_slot(int argc, char **argv) {
  if (argc != 10) { fprintf(stderr, "usage: mags-guest slot NSFILE BASE COUNT LIMITS IMAGE TARGET FROM IDMAPFILE\n"); return 2; }
  const char *nsfile = argv[2], *limits = argv[5], *image = argv[6], *target = argv[7], *idmapfile = argv[9];
  long base = strtol(argv[3], NULL, 10), count = strtol(argv[4], NULL, 10), from = strtol(argv[8], NULL, 10);
  char map[96];
  snprintf(map, sizeof map, "0 %ld %ld\n", base, count);
  int release;
  pid_t pid = userns_child(base, map, limits, &release);
  if (pid < 0) return 1;
  int rc = pin_userns(pid, nsfile);
  release_child(pid, release);
  if (rc) return rc;

  /* Host root maps to itself too: overlayfs creates its work directory and copies up as the
   * mounter (host root), which must be representable on the idmapped layers. */
  snprintf(map, sizeof map, "0 0 1\n%ld %ld %ld\n", from, base, count);
  pid = userns_child(-1, map, NULL, &release);
  if (pid < 0) { umount2(nsfile, MNT_DETACH); return 1; }
  rc = pin_userns(pid, idmapfile);
  release_child(pid, release);
  if (!rc) {
    int ns = open(idmapfile, O_RDONLY | O_CLOEXEC);
    rc = ns < 0 ? fail_errno("open", idmapfile) : idmap_mount(ns, image, target);
    if (ns >= 0) close(ns);
    if (rc) umount2(idmapfile, MNT_DETACH);
  }
  if (rc) umount2(nsfile, MNT_DETACH);
  return rc;
}

#define MAGS_MOUNT_ATTR_RDONLY 0x1ULL
#define MAGS_MOUNT_ATTR_NOSUID 0x2ULL
#define MAGS_MOUNT_ATTR_NODEV 0x4ULL
#define MAGS_MOUNT_ATTR_NOEXEC 0x8ULL
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 0x8
#endif
#define MAGS_PROCVIEW_MAX 32

/*
 * mags-guest procview PID SRC DST [SRC DST]...
 *   Bind-mounts host files SRC (the LXCFS view) read-only over DST inside the running sandbox whose
 *   PID 1 is host pid PID, replacing what is mounted there (a bind into a dead FUSE connection): each
 *   SRC is cloned here in the host mount namespace (open_tree), then the helper joins the sandbox's
 *   mount namespace and root, detaches the old mount at DST and moves the clone there. Frozen
 *   sandboxes too (nothing inside the sandbox runs). Prints each DST it mounted; a file that fails is
 *   reported on stderr and the others still go ahead (exit 1 when any failed).
 */
int cmd_procview(int argc, char **argv) {
  if (argc < 5 || (argc - 3) % 2 != 0 || (argc - 3) / 2 > MAGS_PROCVIEW_MAX) {
    fprintf(stderr, "usage: mags-guest procview PID SRC DST [SRC DST]... (at most %d files)\n", MAGS_PROCVIEW_MAX);
    return 2;
  }
  char *end;
  long pid = strtol(argv[2], &end, 10);
  if (*end != '\0' || pid <= 1) { fprintf(stderr, "mags-guest: procview: bad pid %s\n", argv[2]); return 2; }
  int n = (argc - 3) / 2, rc = 0;
  int trees[MAGS_PROCVIEW_MAX];
  struct mags_mount_attr attr = { MAGS_MOUNT_ATTR_RDONLY | MAGS_MOUNT_ATTR_NOSUID | MAGS_MOUNT_ATTR_NODEV | MAGS_MOUNT_ATTR_NOEXEC, 0, MS_PRIVATE, 0 };
  for (int i = 0; i < n; i++) {
    const char *src = argv[3 + 2 * i];
    trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, src, MAGS_OPEN_TREE_CLONE | O_CLOEXEC);
    if (trees[i] < 0) { rc = fail_errno("open_tree", src); continue; }
    if (syscall(SYS_mount_setattr, trees[i], "", MAGS_AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      rc = fail_errno("make read-only (mount_setattr)", src);
      close(trees[i]);
      trees[i] = -1;
    }
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/root", pid);
  int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return fail_errno("open", path);
  snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
  int ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return fail_errno("open", path);
  /* From here on paths resolve in the sandbox: its mount namespace, its root. */
  if (setns(ns, CLONE_NEWNS) != 0) return fail_errno("setns", path);
  close(ns);
  if (fchdir(root) != 0 || chroot(".") != 0) return fail_errno("enter the root of", argv[2]);
  close(root);
  for (int i = 0; i < n; i++) {
    const char *dst = argv[4 + 2 * i];
    if (trees[i] < 0) continue;
    /* Every mount stacked at DST goes: the sandbox's view is the fresh one alone. EINVAL: none left. */
    int detached = 0;
    while (detached < 8 && umount2(dst, MNT_DETACH | UMOUNT_NOFOLLOW) == 0) detached++;
    if (detached == 8 || (errno != EINVAL && detached == 0)) { rc = fail_errno("detach the old mount at", dst); close(trees[i]); continue; }
    if (syscall(SYS_move_mount, trees[i], "", AT_FDCWD, dst, MAGS_MOVE_MOUNT_F_EMPTY_PATH) != 0) rc = fail_errno("move_mount to", dst);
    else printf("%s\n", dst);
    close(trees[i]);
  }
  return rc;
}
