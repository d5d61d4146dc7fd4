/* fuzz_params.c -- a request's parameters: the query string and the JSON body (call.c).
 *
 * call_prepare reads every parameter a client sends: the target, percent-decoded strictly, and
 * a JSON body {"data": {...}}, then checks the bearer token, type, max_age, stale_if_error and
 * the path. No cache is needed: nothing past the call module runs. The input's first byte
 * chooses the verb (bits 0-2) and whether a token is asked (bit 3) and sent (bit 4); the rest
 * is the target, a newline, then the body. After a prepared call, everything a handler reads
 * of it is read: each parameter, the function's name, a choice, the path. */
#include <jansson.h>

#include "fuzz.h"
#include "server/call.h"

static const http_method_kind methods[] = {HTTP_METHOD_GET,    HTTP_METHOD_HEAD,
                                           HTTP_METHOD_POST,   HTTP_METHOD_PUT,
                                           HTTP_METHOD_DELETE, HTTP_METHOD_OTHER};
static const char *const method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};

/* Read what a handler would read of a prepared call. */
static void read_like_a_handler(call *c)
{
    static const char *const formats[] = {"json", "csv", "arrow", "raw", NULL};
    for (size_t i = 0; i < c->param_count; i++) {
        size_t len = 0;
        const char *v = call_param_value(c, c->params[i].name, &len);
        if (!v || strlen(v) > len)
            abort(); /* a parameter the call holds must be found, its length right */
    }
    call_function_name(c);
    const char *format = "json";
    if (call_choice(c, "format", formats, &format))
        call_need_path(c);
    call_accepts(c, "application/json");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *target = NULL, *body = NULL;
    size_t target_len = 0, body_len = 0;
    if (!fuzz_split(data + 1, size - 1, '\n', &target, &target_len, &body, &body_len))
        return 0;
    size_t m = (data[0] & 7) % (sizeof methods / sizeof methods[0]);
    server srv = {0};
    srv.defaults.token = (data[0] & 8) ? "fuzz-token" : NULL;
    http_header headers[2] = {
        {"Authorization", 13, "Bearer fuzz-token", 17},
        {"Accept", 6, "application/json", 16},
    };
    http_request req = {
        .method = methods[m],
        .method_name = method_names[m],
        .target = target,
        .target_len = target_len,
        .headers = (data[0] & 16) ? headers : headers + 1,
        .header_count = (data[0] & 16) ? 2 : 1,
        .body = body,
        .body_len = body_len,
    };
    http_response res = {.status = 200};
    call c;
    call_init(&c, &srv, &req, &res);
    if (call_prepare(&c))
        read_like_a_handler(&c);
    call_finish(&c);
    buf_free(&res.body);
    buf_free(&res.headers);
    free(target);
    free(body);
    return 0;
}
