/*
 * Atomic file writes: a temporary file in the same directory, fsync, rename over the target, fsync
 * of the directory. Readers see either the old file or the complete new one.
 *
 * Temporary names are "<path>.tmp.<pid>.<6 letters>". A writer killed before its rename leaves one
 * behind; the next successful write of the same path removes those whose process no longer exists
 * (a live writer's file, even a concurrent one in another process, is never touched).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/io_internal.h"

collapse_status collapse_io_atomic_open(io_atomic *w, const char *fn, const char *path) {
    static _Atomic uint64_t counter;
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->fn = fn;
    w->path = path;
    if (!path || !*path) return collapse_fail(COLLAPSE_ERR_ARG, "%s: path expected, got %s", fn, path ? "\"\"" : "NULL");
    size_t plen = strlen(path);
    if (path[plen - 1] == '/')
        return collapse_fail(COLLAPSE_ERR_ARG, "%s: '%s' names a directory, expected a file path", fn, path);
    char pidpart[32];
    int pidlen = snprintf(pidpart, sizeof pidpart, ".tmp.%ld.", (long)getpid());
    w->tmp = malloc(plen + (size_t)pidlen + 7);
    if (!w->tmp) return collapse_fail(COLLAPSE_ERR_NOMEM, "%s: out of memory", fn);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                    (uint64_t)(uintptr_t)w ^ (atomic_fetch_add(&counter, 1) * 0x2545f4914f6cdd1dULL);
    int err = 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r = cl_splitmix64(&seed); /* core/tensor.h */
        char *q = w->tmp;
        memcpy(q, path, plen);
        memcpy(q + plen, pidpart, (size_t)pidlen);
        q += plen + (size_t)pidlen;
        for (int i = 0; i < 6; i++) q[i] = alphabet[(r >> (6 * i)) % 62];
        q[6] = '\0';
        /* 0666 lets the umask decide the mode of a new file, as fopen would */
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0) break;
        err = errno;
        if (err != EEXIST) break;
    }
    if (w->fd < 0) {
        collapse_status s = collapse_fail(COLLAPSE_ERR_IO, "%s: cannot create temporary file '%s' to write '%s': %s", fn,
                                          w->tmp, path, strerror(err));
        free(w->tmp);
        w->tmp = NULL;
        return s;
    }
    /* replacing a file keeps its permission bits */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(w->fd, st.st_mode & 07777);
    return COLLAPSE_OK;
}

void collapse_io_atomic_abort(io_atomic *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp) {
        unlink(w->tmp);
        free(w->tmp);
        w->tmp = NULL;
    }
}

collapse_status collapse_io_atomic_write(io_atomic *w, const void *bytes, size_t len) {
    const unsigned char *p = bytes;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t k = write(w->fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return collapse_fail(COLLAPSE_ERR_IO, "%s: writing '%s' failed (temporary file '%s'): %s", w->fn, w->path,
                                 w->tmp, strerror(errno));
        }
        p += k;
        len -= (size_t)k;
    }
    return COLLAPSE_OK;
}

static void io_fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = strdup(".");
    else if (slash == path) dir = strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
    free(dir);
}

/* Is `name` (an entry of the target's directory) a temporary of `base` left by a dead process? */
static int io_stale_temp(const char *name, const char *base, size_t blen) {
    if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0) return 0;
    const char *p = name + blen + 5;
    if (!isdigit((unsigned char)*p)) return 0;
    char *end = NULL;
    errno = 0;
    long pid = strtol(p, &end, 10);
    if (errno || pid <= 0 || *end != '.') return 0;
    for (int i = 1; i <= 6; i++)
        if (!isalnum((unsigned char)end[i])) return 0;
    if (end[7] != '\0' || (pid_t)pid == getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Best effort: removes the temporaries of `path` whose writer was killed before its rename. */
static void io_remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    DIR *d = opendir(dir);
    free(dir);
    if (!d) return;
    size_t blen = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (io_stale_temp(e->d_name, base, blen)) (void)unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

collapse_status collapse_io_atomic_commit(io_atomic *w) {
    collapse_status s = COLLAPSE_OK;
    if (fsync(w->fd) != 0)
        s = collapse_fail(COLLAPSE_ERR_IO, "%s: fsync of '%s' failed (temporary file '%s'): %s", w->fn, w->path, w->tmp,
                          strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && s == COLLAPSE_OK)
        s = collapse_fail(COLLAPSE_ERR_IO, "%s: closing '%s' failed (temporary file '%s'): %s", w->fn, w->path, w->tmp,
                          strerror(errno));
    if (s == COLLAPSE_OK && rename(w->tmp, w->path) != 0)
        s = collapse_fail(COLLAPSE_ERR_IO, "%s: cannot rename temporary file '%s' to '%s': %s", w->fn, w->tmp, w->path,
                          strerror(errno));
    if (s != COLLAPSE_OK) {
        collapse_io_atomic_abort(w);
        return s;
    }
    free(w->tmp);
    w->tmp = NULL;
    io_fsync_dir(w->path);
    io_remove_stale_temps(w->path);
    return COLLAPSE_OK;
}

collapse_status collapse_write_file_atomic(const char *path, const void *bytes, size_t len) {
    const char *fn = "write_file_atomic";
    if (!bytes && len > 0) return collapse_fail(COLLAPSE_ERR_ARG, "write_file_atomic: bytes is NULL but len is %zu", len);
    io_atomic w;
    COLLAPSE_TRY(collapse_io_atomic_open(&w, fn, path));
    collapse_status s = len ? collapse_io_atomic_write(&w, bytes, len) : COLLAPSE_OK;
    if (s != COLLAPSE_OK) {
        collapse_io_atomic_abort(&w);
        return s;
    }
    return collapse_io_atomic_commit(&w);
}
