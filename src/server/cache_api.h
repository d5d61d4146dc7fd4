/* cache_api.h -- the API's functions on cached values (cache_api.c). Each is a call_handler;
 * README's table of the cache's functions (routes.c) says what each answers. */
#ifndef ASIDE_SERVER_CACHE_API_H
#define ASIDE_SERVER_CACHE_API_H

#include "call.h"

void cache_api_read(call *c);   /* read through: memory, disk tier, system of record */
void cache_api_update(call *c); /* revalidate with the system of record */
void cache_api_write(call *c);  /* the body to the system of record, then the cache */
void cache_api_put(call *c);    /* the body to the cache alone */
void cache_api_list(call *c);   /* the system of record's objects under prefix */
void cache_api_delete(call *c); /* out of memory and the disk tier */

#endif
