/* collections.h -- the API's operations on what the cache alone holds (collections.c):
 * collections and JSON documents through aside_op, and the operator's commands (expire,
 * persist, ttl, pin, unpin, evict, compact). Each is a call_handler. */
#ifndef ASIDE_SERVER_COLLECTIONS_H
#define ASIDE_SERVER_COLLECTIONS_H

#include <stdbool.h>

#include "call.h"

/* The operation c->function (list_push, set_union, json_get, ...) on c->path, its arguments
 * the call's parameters that call_operation_gets; the envelope's value is its answer. */
void collections_operation(call *c);
/* Whether operation op must run where it may block: a JSON operation may read its document
 * through from the system of record; one that writes waits for the disk when the fsync policy
 * is "always". The set algebra and reads never block. */
bool collections_operation_blocks(const server *s, const char *op);

void collections_expire(call *c);  /* seconds=N */
void collections_persist(call *c);
void collections_ttl(call *c);
void collections_pin(call *c);
void collections_unpin(call *c);
void collections_evict(call *c);
void collections_compact(call *c);

#endif
