/* store.h -- the disk tier: crash-safe files under LOCAL_DATA_DIR.
 *
 * Every value fetched from the system of record is kept as a plain file at its key's path under
 * the root, so an operator can look at it, with a sidecar under root/.aside/meta/<key>.meta that
 * records its size, XXH3-64 checksum, type, the SOR's version tag and mtime, and the fetch time.
 * Writes are atomic: the value is written to a temporary file in root/.aside/tmp, fsync'd and
 * renamed into place; then the sidecar is written the same way. A value is valid only with a
 * sidecar that matches it; store_scan, run at start, removes everything else, and a checksum
 * that fails when a value is read makes the caller remove it and fetch it again.
 *
 * The store does no accounting and no locking: the cache decides what is kept, and never
 * writes or removes one key from two threads at once. */
#ifndef ASIDE_STORE_H
#define ASIDE_STORE_H

#include <limits.h>
#include <stdint.h>

#include "aside.h"

typedef struct store store;

typedef struct store_meta {
    uint64_t         size;
    uint64_t         xxh3;
    aside_value_type type;
    int64_t          sor_mtime_ns;
    int64_t          fetched_ms; /* unix time */
    char             etag[128];
} store_meta;

/* A temporary file being filled; becomes a value with store_commit, or is discarded. */
typedef struct store_tmp {
    int  fd;
    char path[PATH_MAX];
} store_tmp;

/* Open (creating if needed) the disk tier at root and empty its temporary folder. */
aside_status store_open(const char *root, store **out, aside_error *err);
void         store_close(store *s);
/* Free bytes of the file system holding the tier, for the default budget. */
uint64_t     store_free_bytes(const store *s);

/* Walk the tier: remove temporary files, sidecars that do not parse or match their file, and
 * files without a sidecar; call visit for each valid value. */
aside_status store_scan(store *s, void (*visit)(void *ctx, const char *key,
                                                const store_meta *meta),
                        void *ctx, aside_error *err);

aside_status store_tmp_create(store *s, store_tmp *tmp, aside_error *err);
/* Discard an uncommitted temporary file. */
void         store_tmp_discard(store_tmp *tmp);
/* Make tmp the value of key, described by meta (size and checksum of tmp's content). On
 * success the temporary file is consumed; on failure the caller still discards it, and the old
 * value of key, if any, is gone. */
aside_status store_commit(store *s, store_tmp *tmp, const char *key, const store_meta *meta,
                          aside_error *err);
/* The path of key's file (PATH_MAX bytes at path), for readers that open it by name. */
aside_status store_value_path(const store *s, const char *key, char *path, aside_error *err);
/* Open key's file for reading. */
aside_status store_open_value(store *s, const char *key, int *fd, aside_error *err);
/* Remove key's file and sidecar (sidecar first, so a crash leaves an orphan, never a sidecar
 * describing another file). */
void         store_remove(store *s, const char *key);

/* The checksum the store uses. */
uint64_t store_checksum(const void *data, size_t size);

#endif
