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

#endif
