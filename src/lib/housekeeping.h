/* housekeeping.h -- the cache's background thread (housekeeping.c).
 *
 * Started by cache.c once the cache is open, stopped before it closes. */
#ifndef ASIDE_HOUSEKEEPING_H
#define ASIDE_HOUSEKEEPING_H

#include "cache.h"

/* Start the thread. ASIDE_ERR_NOMEM when it cannot be started. */
aside_status housekeeping_start(aside_cache *c, aside_error *err);
/* Stop the thread and wait for it to end (nothing when it was not started). */
void         housekeeping_stop(aside_cache *c);

#endif
