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
 * The values the cache alone holds (collections, edited documents) are not files but records of
 * the journal (below), under root/.aside/journal.
 *
 * The store does no accounting and no locking: the cache decides what is kept, and never
 * writes or removes one key from two threads at once. */
#ifndef ASIDE_STORE_H
#define ASIDE_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"

typedef struct store store;

typedef struct store_meta {
    uint64_t         size;
    uint64_t         xxh3;
    aside_value_type type;
    int64_t          sor_mtime_ns;
    int64_t          fetched_ms; /* unix time */
    int64_t          expires_ms; /* unix time the value expires; 0: never */
    bool             pinned;     /* kept in memory for good */
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
/* The tier's root folder. */
const char  *store_root(const store *s);
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
/* Replace key's sidecar with meta (same size and checksum; a new time to live or pin). */
aside_status store_rewrite_meta(store *s, const char *key, const store_meta *meta,
                                aside_error *err);
/* Open key's file for reading. */
aside_status store_open_value(store *s, const char *key, int *fd, aside_error *err);
/* Remove key's file and sidecar (sidecar first, so a crash leaves an orphan, never a sidecar
 * describing another file). */
void         store_remove(store *s, const char *key);

/* The checksum the store uses. */
uint64_t store_checksum(const void *data, size_t size);

/* ---- the journal (journal.c) --------------------------------------------------------------
 *
 * An append-only log of records (opaque payloads, JSON text by convention) under
 * root/.aside/journal: the disk copy of what the cache alone holds. Records are checksummed;
 * replay stops at the first torn or damaged one and cuts the file there. Thread-safe. */
typedef struct journal journal;
typedef struct journal_rewrite journal_rewrite;

/* Called for each whole record in order at open; payload is NUL-terminated. */
typedef void (*journal_visit)(void *ctx, const char *payload, size_t len);

aside_status journal_open(const char *root, aside_fsync policy, journal_visit visit, void *ctx,
                          journal **out, aside_error *err);
void         journal_close(journal *j);
/* Append one record with one write(2); *position (may be NULL) receives the journal's size
 * after it, to pass to journal_wait. A failed append leaves no partial record. */
aside_status journal_append(journal *j, const char *payload, size_t len, uint64_t *position,
                            aside_error *err);
/* With the "always" policy, return once the disk holds the journal up to position (syncs are
 * shared between waiting threads); otherwise return at once. No descriptor is opened. When a
 * sync fails (now, or earlier without a rewrite since) the record stays appended and the
 * answer is ASIDE_ERR_IO with code "not_durable": the change is applied but not yet durable. */
aside_status journal_wait(journal *j, uint64_t position, aside_error *err);
/* With the "everysec" policy, sync what was appended since the last sync; call it every second. */
void         journal_tick(journal *j);
void         journal_stats(journal *j, uint64_t *bytes, uint64_t *records);
/* Records appended, and syncs of appended records (fdatasync: always, everysec), since the
 * journal was opened; compactions do not reset them. */
void         journal_counters(journal *j, uint64_t *appends, uint64_t *syncs);
/* True after a sync failed: the disk may lack what was appended since the last good sync,
 * whatever a later sync answers, until a rewrite (compaction) makes it whole again. */
bool         journal_needs_rewrite(journal *j);
/* Compaction: begin, write the live state as records of a new journal, then end with commit
 * true to swap it in atomically (or false to drop it). The state written must be the state at
 * journal_rewrite_begin: the caller holds it still (no change, no append) from the beginning to
 * the last journal_rewrite_add. Appends may then go on; journal_rewrite_end syncs the new file,
 * carries over the records appended since the beginning, and swaps, holding the journal's lock
 * (so appends wait) only for the carrying over, its sync, the rename and the folder's sync. */
aside_status journal_rewrite_begin(journal *j, journal_rewrite **out, aside_error *err);
aside_status journal_rewrite_add(journal_rewrite *w, const char *payload, size_t len,
                                 aside_error *err);
aside_status journal_rewrite_end(journal_rewrite *w, bool commit, aside_error *err);

#endif
