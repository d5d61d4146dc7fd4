/* tier.h -- the steps every call is made of: a key in the tiers, and its single flight (tier.c).
 *
 * Above load.h and the entry layer (cache.h); used by read.c, write.c and the rest of the API. */
#ifndef ASIDE_TIER_H
#define ASIDE_TIER_H

#include "cache.h"

/* Serve key from memory if it is there (a live entry: its snapshot, made if need be). */
bool         tier_memory_hit(aside_cache *c, const char *key, aside_value **out);
/* Try the disk tier. ASIDE_ERR_NOT_FOUND means: not there (or removed as invalid), go to SOR. */
aside_status tier_disk_hit(aside_cache *c, const char *key, aside_value **out, aside_error *err);
/* The leader's load: memory (someone may have finished a load since we looked), disk, SOR.
 * *uncached: served from the SOR without being kept (load_from_sor). */
aside_status tier_load(aside_cache *c, sor *from, const char *key, aside_value_type type,
                       aside_value **out, aside_source *source, bool *uncached,
                       aside_error *err);
/* What a leader tells its followers besides the value (flight_complete's tag): the source, and
 * whether the value was kept. */
int          tier_flight_tag(aside_source source, bool uncached);
/* Wait for the leader of key's flight f and take its value (counting a hit or a miss), its
 * source and whether it was kept, as tier_flight_tag told them. */
aside_status tier_follow(aside_cache *c, const char *key, flight *f, aside_value **out,
                         aside_source *source, bool *uncached, aside_error *err);
/* Become the leader of key's flight, waiting for loads in progress to finish first. NULL when
 * out of memory. */
flight      *tier_lead(aside_cache *c, const char *key);
/* The SOR a call's options name. */
aside_status tier_sor(aside_cache *c, const aside_read_options *options, sor **out,
                      aside_error *err);
/* Check the key and pick the SOR: what every call starts with. */
aside_status tier_prepare(aside_cache *c, const char *key, const aside_read_options *options,
                          sor **from, aside_error *err);
/* What an update or a write starts with: check the key, pick the SOR, lead key's flight. */
aside_status tier_prepare_to_lead(aside_cache *c, const char *key,
                                  const aside_read_options *options, sor **to, flight **f,
                                  aside_error *err);
/* Settle the type a call reads or writes key as: options->type, else the cached entry's, else
 * the key's. It changes the cache: an entry cached as another type than the one asked is
 * retyped, its memory copy dropped, so it is decoded again as the asked type (a live value is
 * never retyped: it is replaced). A collection type is only for put (collections_ok): a file is
 * never read or written as a collection. */
aside_status tier_settle_type(aside_cache *c, const char *key, const aside_read_options *options,
                              bool collections_ok, aside_value_type *type, aside_error *err);

/* A flight's result (an aside_value) retained and released, for core/flight.c. */
void        *tier_value_retain(void *v);
void         tier_value_release(void *v);

#endif
