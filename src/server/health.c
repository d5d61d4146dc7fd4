/* health.c -- /health, /ready, and the API's answer while the cache opens (health.h).
 *
 * An orchestrator asks two questions: is the process alive (restart it if not), and may it
 * take traffic now (route to it if so). /health is yes whenever an event loop answers. /ready is
 * yes only between the end of the start (the cache open: the disk tier scanned and the journal
 * replayed; then the spec's preload when ready_after_preload holds) and SIGTERM; from the
 * signal on it says no while the server still serves the drain, so load balancers stop
 * sending before it stops accepting. Both answer GET and HEAD only, without the token, and
 * their bodies hold the state and a reason, nothing about the build or the host. */
#include <string.h>

#include "health.h"

static void answer(http_response *res, int status, const char *body)
{
    res->status = status;
    res->content_type = "application/json";
    buf_reset(&res->body);
    buf_puts(&res->body, body);
    if (status == HTTP_UNAVAILABLE)
        buf_puts(&res->headers, HTTP_RETRY_AFTER);
    res->omit_body = false;
}

/* GET and HEAD only; false when a 405 was answered. */
static bool method_allowed(const http_request *req, http_response *res)
{
    if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD) {
        answer(res, 200, "");
        res->omit_body = req->method == HTTP_METHOD_HEAD;
        return true;
    }
    answer(res, 405, "{\"error\": {\"code\": \"method_not_allowed\", \"message\": \"GET or "
                     "HEAD\"}}");
    buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
    return false;
}

void health_alive(server_gate *g, const http_request *req, http_response *res)
{
    (void)g;
    if (!method_allowed(req, res))
        return;
    bool head = res->omit_body;
    answer(res, 200, "{\"status\": \"alive\"}");
    res->omit_body = head;
}

static const char *const not_ready[] = {
    [SERVER_OPENING] = "{\"status\": \"starting\", \"reason\": \"opening the cache: scanning "
                       "the disk tier and replaying the journal\"}",
    [SERVER_PRELOADING] = "{\"status\": \"preloading\", \"reason\": \"the spec's preload is "
                          "running (ready_after_preload)\"}",
    [SERVER_STOPPING] = "{\"status\": \"stopping\", \"reason\": \"the server is draining "
                        "before it stops\"}",
};

void health_ready(server_gate *g, const http_request *req, http_response *res)
{
    if (!method_allowed(req, res))
        return;
    bool head = res->omit_body;
    server_phase phase = server_gate_phase(g);
    if (phase == SERVER_READY)
        answer(res, 200, "{\"status\": \"ready\"}");
    else
        answer(res, HTTP_UNAVAILABLE, not_ready[phase]);
    res->omit_body = head;
}

void health_starting(http_response *res)
{
    answer(res, HTTP_UNAVAILABLE, "{\"error\": {\"code\": \"starting\", \"message\": \"the "
                                  "server is opening its cache (scanning the disk tier, "
                                  "replaying the journal); retry in a moment\"}}");
}
