/* load.h -- files of the disk tier: loading them, fetching them, committing them (load.c).
 *
 * Above the entry layer (cache.h), below every call of the API. Each function here does its
 * I/O without the cache lock and takes the lock only to read or change entries. */
#ifndef ASIDE_LOAD_H
#define ASIDE_LOAD_H

#include "arrow/arrow.h"
#include "cache.h"

/* Load key's file as described by meta. ASIDE_ERR_BAD_VALUE when the file does not match its
 * sidecar (then it must be removed and fetched again). *verified says whether the checksum was
 * already checked; it is set when this load checked it. */
aside_status load_file(aside_cache *c, const char *key, const store_meta *meta, bool *verified,
                       aside_value **out, aside_error *err);

/* Fetch key from the SOR `from` and make it the cached value. With if_none_match, an unchanged
 * object sets *not_modified and returns no value. When the disk tier cannot keep the value (it
 * fails with ASIDE_ERR_IO: full, read-only, failing) but it fits the memory budget, it is
 * served all the same: *uncached is set, nothing of it is kept and key's older copy is gone. */
aside_status load_from_sor(aside_cache *c, sor *from, const char *key, aside_value_type type,
                           const char *if_none_match, aside_value **out, bool *not_modified,
                           bool *uncached, aside_error *err);

/* Commit the checked temporary file as key's value and install it as key's entry, replacing
 * what key held (v: its memory copy, if any). A pin and a time to live stay with the key.
 * Holds key's key lock throughout: the only writer of key's file and sidecar meanwhile. */
aside_status load_commit(aside_cache *c, const char *key, store_tmp *tmp,
                         const store_meta *fetched, aside_value *v, aside_error *err);

/* Describe a value about to enter the disk tier (fetched now, version from info). */
void         load_meta_init(store_meta *meta, aside_value_type type, uint64_t size,
                            const aside_object_info *info);

/* Decode the frame in the file at path (open as fd, which the value takes over, or closes on
 * failure). */
aside_status load_decode_frame(aside_cache *c, const char *key, const char *path, int fd,
                               uint64_t size, aside_value **out, aside_error *err);

/* The checksum of the first size bytes of fd, read in chunks. */
aside_status load_checksum_file(int fd, uint64_t size, uint64_t *sum, aside_error *err);

/* Write size bytes to fd, whole (retrying short writes). */
aside_status load_write_all(int fd, const void *data, size_t size, aside_error *err);

/* Write the segments of an encoding to fd. */
aside_status load_write_encoding(int fd, const arrow_encoding *enc, aside_error *err);

#endif
