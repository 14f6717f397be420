#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Packs a directory into a gzip-compressed initramfs (cpio "newc" format,
the one the Linux kernel unpacks), owned by root, with /dev/console added so
that init has a console without devtmpfs.

Usage: mkinitramfs.py DIR OUT.cpio.gz

Written here rather than using cpio(1) so that the guest build needs no
extra package and the archive is reproducible (fixed times and inodes)."""
import gzip
import os
import stat
import sys


def header(ino, mode, nlink, size, rdev, name):
    major, minor = (os.major(rdev), os.minor(rdev)) if rdev else (0, 0)
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def pad4(n):
    return b"\0" * (-n % 4)


def entry(out, ino, name, mode, data=b"", rdev=0):
    nlink = 2 if stat.S_ISDIR(mode) else 1
    h = header(ino, mode, nlink, len(data), rdev, name) + name.encode() + b"\0"
    out.write(h + pad4(len(h)) + data + pad4(len(data)))


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: mkinitramfs.py DIR OUT.cpio.gz")
    root, dest = argv[1], argv[2]
    items = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            items.append(os.path.relpath(os.path.join(d, n), root))
    with open(dest + ".tmp", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        ino = 1
        have_dev = "dev" in items
        if not have_dev:
            entry(out, ino, "dev", stat.S_IFDIR | 0o755)
            ino += 1
        entry(out, ino, "dev/console", stat.S_IFCHR | 0o600, rdev=os.makedev(5, 1))
        ino += 1
        for rel in sorted(items):
            p = os.path.join(root, rel)
            st = os.lstat(p)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entry(out, ino, rel, stat.S_IFLNK | 0o777, os.readlink(p).encode())
            elif stat.S_ISDIR(st.st_mode):
                entry(out, ino, rel, stat.S_IFDIR | perm)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    entry(out, ino, rel, stat.S_IFREG | perm, f.read())
            else:
                sys.exit("mkinitramfs: unsupported file type: " + p)
            ino += 1
        entry(out, 0, "TRAILER!!!", 0)
    os.replace(dest + ".tmp", dest)


if __name__ == "__main__":
    main(sys.argv)
