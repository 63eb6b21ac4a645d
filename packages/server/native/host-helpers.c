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

/*
 * layer TEMPLATE IMAGE DISKDIR ROOTFS LOWERDIRS ROOTID
 *   copies the empty ext4 TEMPLATE to IMAGE, loop-mounts it at DISKDIR, creates upper/ (owned by
 *   ROOTID, the host id of root in the sandbox) and work/ in it and mounts the overlay root at
 *   ROOTFS. Undoes its mounts when a step fails.
 * overlay ROOTFS LOWERDIRS UPPER WORK ROOTID
 *   mounts an overlay root on an existing upper directory (workspace layers), which it gives to ROOTID.
 * unmount PATH...
 *   unmounts each path (lazily when busy); paths that are not mounted are skipped.
 */
int cmd_layer(int argc, char **argv) {
  if (argc != 8) { fprintf(stderr, "usage: mags-guest layer TEMPLATE IMAGE DISKDIR ROOTFS LOWERDIRS ROOTID\n"); return 2; }
  const char *tmpl = argv[2], *image = argv[3], *disk = argv[4], *rootfs = argv[5], *lower = argv[6];
  uid_t root_id = (uid_t)strtoul(argv[7], NULL, 10);
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
  if (argc != 7) { fprintf(stderr, "usage: mags-guest overlay ROOTFS LOWERDIRS UPPER WORK ROOTID\n"); return 2; }
  uid_t root_id = (uid_t)strtoul(argv[6], NULL, 10);
  if (chown(argv[4], root_id, root_id) != 0) return fail_errno("chown", argv[4]);
  char opts[16384];
  int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s,index=off,xino=off", argv[3], argv[4], argv[5]);
  if (n >= (int)sizeof opts) { fprintf(stderr, "mags-guest: overlay options too long\n"); return 1; }
  if (mount("overlay", argv[2], "overlay", 0, opts) != 0) return fail_errno("mount overlay at", argv[2]);
  return 0;
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
