/* functions.h -- the API's side of users' Python functions (functions.c). Each is a
 * call_handler; all of them wait on a worker or a file, so the router runs them where they
 * may block. The worker pool and the function folder are function_pool.h. */
#ifndef ASIDE_SERVER_FUNCTIONS_H
#define ASIDE_SERVER_FUNCTIONS_H

#include <stdbool.h>

#include "call.h"

/* True if name is a user's function: a Python identifier with a file in the function folder. */
bool functions_exists(const call *c, const char *name);
/* Call the user's function c->function with the call's arguments; timeout= in seconds. */
void functions_call(call *c);

void functions_create(call *c);   /* function_create: function_name, function_body */
void functions_register(call *c); /* function_register: from the system of record */
void functions_delete(call *c);   /* function_delete: function_name */
void functions_list(call *c);     /* functions: each with its signature and docstring */
void functions_stats(call *c);    /* function_stats: the workers' @lru_cache figures */

#endif
