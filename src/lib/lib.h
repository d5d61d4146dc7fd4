/* lib.h -- what the server needs of the cache beyond aside.h.
 *
 * The frame functions of the API run next to the cache: they need its engine (DuckDB), the
 * frame a value holds (value.h), and a way to keep a frame they computed (sql into=) as a
 * cached value. These are internal: the public API stays aside.h. */
#ifndef ASIDE_LIB_H
#define ASIDE_LIB_H

#include "aside.h"
#include "engine/engine.h"
#include "frame/frame.h"

/* The cache's frame engine. */
engine  *aside_cache_engine(aside_cache *cache);

/* Keep f as key's value: its file goes to the disk tier (parquet for a ".parquet" key, else an
 * Arrow IPC file), f itself to memory. The system of record is not written. Replaces what
 * key held. */
aside_status aside_store_frame(aside_cache *cache, const char *key, frame *f, aside_error *err);

/* A frame published in shared memory: an Arrow IPC file any process on the host may map. */
typedef struct aside_publication {
    char     path[4096];
    uint64_t generation; /* the content's: a new value of the key is a new generation */
    uint64_t bytes;
} aside_publication;

/* Publish key's frame (loading it if need be) as an immutable Arrow IPC file in the cache's
 * shared-memory folder, or find the publication of its current content. The file counts in
 * the memory budget; it is unlinked when the frame leaves memory, is replaced or deleted
 * (readers that mapped it keep their mapping). *held (may be NULL) receives the frame's value.
 * ASIDE_ERR_CONFLICT when shared memory is off; ASIDE_ERR_INVALID for a key that is no frame. */
aside_status aside_publish(aside_cache *cache, const char *key,
                           const aside_read_options *options, aside_publication *out,
                           aside_value **held, aside_error *err);

/* The kinds of value (aside_value_type): ASIDE_TYPE_BYTES ... ASIDE_TYPE_COUNTER. */
enum { ASIDE_TYPE_KINDS = ASIDE_TYPE_COUNTER + 1 };

/* How many keys the cache holds of each type, counts[type] (an expired key not yet removed
 * included): counts kept as entries come, go and get their type, copied under the lock (debug
 * builds also walk the index and assert the two agree). */
void aside_keys_by_type(aside_cache *cache, uint64_t counts[ASIDE_TYPE_KINDS]);

#endif
