/* category_set.h -- the distinct strings of a column, collected as rows arrive.
 *
 * A categorical field filled from strings (DuckDB has no categorical type) needs its categories
 * found while the rows stream in: each new string gets the next provisional code, a repeated one
 * the code it had. At the end the categories are sorted, as pandas sorts the categories it
 * infers, and each provisional code is mapped to its position in that order. Used by the frame
 * builder (frame.h); not thread-safe: one set per column being built. */
#ifndef ASIDE_CATEGORY_SET_H
#define ASIDE_CATEGORY_SET_H

#include <stddef.h>
#include <stdint.h>

#include "frame/frame.h"

typedef struct category_set category_set;

/* An empty set; NULL when out of memory. Freed with category_set_free() (NULL is ignored). */
category_set *category_set_create(void);
void          category_set_free(category_set *s);

/* The provisional code of the len bytes at v (0, 1, 2, ... in order of first appearance),
 * added if new; -1 when out of memory. */
int64_t category_set_code(category_set *s, const char *v, size_t len);
/* Distinct strings so far. */
size_t  category_set_count(const category_set *s);

/* The categories sorted bytewise (shorter first on a common prefix) as a dictionary batch
 * (frame_dictionary_create), and in *remap (malloc'd, category_set_count entries, the caller
 * frees it) each provisional code's position in that order. NULL when out of memory, then
 * *remap is NULL too. */
frame_batch *category_set_sorted(const category_set *s, uint32_t **remap);

#endif
