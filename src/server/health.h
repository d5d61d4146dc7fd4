/* health.h -- the answers outside the API (health.c): whether the process serves (/health) and
 * whether it is ready to take traffic (/ready), and the API's answer while the cache is not
 * open yet.
 *
 * They read the gate (server.h), never the server: they answer from the first moment the
 * server listens, without the bearer token, and say nothing but the state (no version, no
 * path). The router (routes.c) calls them before anything else. */
#ifndef ASIDE_SERVER_HEALTH_H
#define ASIDE_SERVER_HEALTH_H

#include "http.h"
#include "server.h"

/* GET /health: 200 {"status": "alive"} while the process serves. */
void health_alive(server_gate *g, const http_request *req, http_response *res);
/* GET /ready: 200 {"status": "ready"}, or 503 {"status": "starting"|"preloading"|"stopping",
 * "reason": "..."} with Retry-After. */
void health_ready(server_gate *g, const http_request *req, http_response *res);
/* Any other request before the cache is open: 503 starting with Retry-After, changing
 * nothing. */
void health_starting(http_response *res);

#endif
