/* telemetry.h -- the API's telemetry (telemetry.c). Each is a call_handler that runs anywhere. */
#ifndef ASIDE_SERVER_TELEMETRY_H
#define ASIDE_SERVER_TELEMETRY_H

#include "call.h"

/* The cache's figures, the function workers', the spec's progress and every key (or path's);
 * the HEAD verb gets them as X-Aside-* headers too. */
void telemetry_head(call *c);
/* The list of cached keys. */
void telemetry_stats_cache(call *c);

#endif
