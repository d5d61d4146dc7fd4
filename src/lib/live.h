/* live.h -- live entries: the values the cache alone holds, and their journal (live.c).
 *
 * Above the entry layer (cache.h); used by op.c (operations), write.c (put), housekeeping.c
 * (compaction) and cache.c (open, close). Functions said "lock held" assert it in debug builds. */
#ifndef ASIDE_LIVE_H
#define ASIDE_LIVE_H

#include "cache.h"

/* Read the configuration of live values and replay the journal into live entries. Before any
 * other thread uses the cache. */
aside_status live_open(aside_cache *c, const aside_config *cfg, aside_error *err);
/* Close the journal (after the housekeeping thread stopped). */
void         live_close(aside_cache *c);

/* A new live entry for key holding live (taken: freed on failure); NULL when out of memory.
 * Lock held. */
entry       *live_create(aside_cache *c, const char *key, collection *live);
/* After a change of e's live form: a new generation, no snapshot, new byte figures. Lock held. */
void         live_changed(aside_cache *c, entry *e);
/* Make live (taken) key's value in place of old (key's entry, or NULL), expiring at expires_ms,
 * and journal it whole (*position: where to wait for it, may be NULL); then the key's file, if
 * any, goes. Lock held. */
aside_status live_replace(aside_cache *c, entry *old, const char *key, collection *live,
                          int64_t expires_ms, uint64_t *position, aside_error *err);
/* ASIDE_OK when key can be a live entry's: the journal is JSON, so a key that is not UTF-8 is
 * ASIDE_ERR_INVALID, err->code "bad_utf8". */
aside_status live_key_check(const char *key, aside_error *err);
/* Keep data (of collection type) as key's live value, replacing what key held: refused like
 * any JSON from outside (value_json_parse) when it nests deeper than the depth limit. Takes the
 * lock. */
aside_status live_put(aside_cache *c, const char *key, aside_value_type type, const void *data,
                      size_t size, aside_error *err);

/* True when the journal should be compacted: an append or a sync failed, or it passed twice its
 * size after the last compaction and either its minimum size or a count of records (100,000:
 * replay costs about a microsecond a record). Lock held. */
bool         live_compaction_due(aside_cache *c);
/* Rewrite the journal as one snapshot per live entry. Takes the lock to write the snapshots,
 * syncs and swaps the new journal without it. One compaction at a time: another waits. */
aside_status live_compact(aside_cache *c, aside_error *err);

#endif
