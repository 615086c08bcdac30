/*
 * space_lock.c — one space per directory: the lock that baton_space_open takes on the directory
 * it opens, and the named points of an open where a test can make the process die.
 *
 * DESIGN
 *  - The lock is an open file description lock (F_OFD_SETLK) on DIR/space.lock, held for the
 *    space's life: a writing space holds it exclusively, a read-only view (NONE) shares it with
 *    other views. OFD locks belong to the descriptor, not to the process, so two opens in one
 *    process conflict as two processes do (a POSIX record lock would not: it is the process's,
 *    and closing any descriptor of the file drops it), and the kernel releases the lock when the
 *    descriptor goes, also when the process is killed: a crash leaves nothing to clean up. The
 *    file's contents are never used. LMDB's own lock.mdb cannot serve: LMDB keeps one
 *    environment per file per process and holds POSIX locks on it.
 *  - A view opens the lock file read-only when it exists and creates it only when it does not
 *    (a directory written by an older version); in a directory it may not write to, it goes on
 *    without the lock, since nothing it does can hurt a writer.
 *  - Crash points: BATON_SPACE_TEST_CRASH=<name> in the environment makes
 *    baton__test_crash_point(name) kill the process with SIGKILL, so that a test can stop an
 *    open at each step of creating a space and check that the directory still opens. Read at
 *    each call; the points are on the open path only, never on a per-item path.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "space/space_impl.h"

void baton__test_crash_point(const char *name)
{
    const char *want = getenv("BATON_SPACE_TEST_CRASH");
    if (want != NULL && strcmp(want, name) == 0)
        (void)raise(SIGKILL);
}

int baton__space_dir_lock(const char *who, const char *dir, bool shared, int *out)
{
    char path[4096];
    *out = -1;
    if (snprintf(path, sizeof path, "%s/space.lock", dir) >= (int)sizeof path)
        return baton__error(BATON_EINVAL, "%s: directory name too long: %s", who, dir);
    int fd = open(path, (shared ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0644);
    if (fd < 0 && shared && errno == ENOENT)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && shared && (errno == EACCES || errno == EROFS || errno == EPERM))
        return 0; /* a view of a directory it may not write to: see DESIGN */
    if (fd < 0)
        return baton__error(BATON_EIO, "%s: cannot open the lock file %s: %s", who, path,
                            strerror(errno));
    struct flock lock;
    memset(&lock, 0, sizeof lock); /* l_pid must be 0 for OFD locks */
    lock.l_type = shared ? F_RDLCK : F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &lock) != 0) {
        int e = errno;
        close(fd);
        if (e == EAGAIN || e == EACCES)
            return baton__error(BATON_EBUSY, "%s: the directory %s is open in another space "
                                "(of this process or another: %s is locked)", who, dir, path);
        return baton__error(BATON_EIO, "%s: cannot lock %s: %s", who, path, strerror(e));
    }
    *out = fd;
    return 0;
}

void baton__space_dir_unlock(int fd)
{
    if (fd >= 0)
        (void)close(fd);
}
