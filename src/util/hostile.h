/* SPDX-License-Identifier: MIT */
/*
 * Opening a file that other users can reach (a device file in /dev/shm, a
 * statistics file, a character device): they may plant a symbolic link, a
 * FIFO or another node at the path, or swap one in between a look and the
 * open.  Every such open goes through util_open_hostile, with the checks
 * its caller needs; the caller says why in its own words (the step that
 * refused is in .why), because what follows a refusal differs ("not
 * removing it", "refusing it").
 *
 * Header-only: the util layer's files do not call each other
 * (tests/layers.py), and this is a few lines.
 */
#ifndef NTBT_UTIL_HOSTILE_H
#define NTBT_UTIL_HOSTILE_H

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The step of util_open_hostile that refused the file. */
enum hostile_step {
        HOSTILE_OPEN, /* open(2) failed: -ELOOP for a symbolic link */
        HOSTILE_STAT, /* fstat(2) failed */
        HOSTILE_TYPE, /* not of .type: -EINVAL */
        HOSTILE_NODE, /* not the device node .same names: -ENODEV */
};

struct hostile_open {
        /* In.  open(2)'s flags: O_NOFOLLOW and O_CLOEXEC are always added;
         * add O_NONBLOCK where a FIFO could be planted (it must not block the
         * open; the type check then refuses it).  Created files get 0600. */
        int flags;
        mode_t type;             /* S_IFREG or S_IFCHR: refuse another type; 0: no fstat */
        const struct stat *same; /* with S_IFCHR: the node must be this one (st_rdev) */
        /* Out. */
        struct stat st;        /* the open file's fstat, when .type is set */
        enum hostile_step why; /* on failure: the step that refused */
};

/* The open fd, or -errno with the fd closed and h->why set. */
static inline int util_open_hostile(const char *path, struct hostile_open *h)
{
        int fd = open(path, h->flags | O_NOFOLLOW | O_CLOEXEC, 0600);
        int err;

        h->why = HOSTILE_OPEN;
        if (fd < 0)
                return -errno;
        if (!h->type)
                return fd;
        if (fstat(fd, &h->st)) {
                err = -errno;
                h->why = HOSTILE_STAT;
        } else if ((h->st.st_mode & S_IFMT) != h->type) {
                err = -EINVAL;
                h->why = HOSTILE_TYPE;
        } else if (h->same && h->st.st_rdev != h->same->st_rdev) {
                err = -ENODEV;
                h->why = HOSTILE_NODE;
        } else {
                return fd;
        }
        close(fd);
        return err;
}

#endif
