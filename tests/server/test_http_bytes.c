/* test_http_bytes.c -- a connection's bytes through the HTTP layer (http_serve_bytes), the way
 * its fuzzer (tests/fuzz/fuzz_http.c) drives it: pipelined requests, bodies plain and chunked,
 * deferred requests, and what is refused before any handler runs. */
#include <string.h>

#include "check.h"
#include "server/http.h"

typedef struct seen {
    int    calls, deferred_calls;
    char   targets[512];
    char   bodies[512];
    bool   defer_first; /* defer each request once, as a handler that would block does */
} seen;

static void handler(void *ctx, const http_request *req, http_response *res)
{
    seen *s = ctx;
    s->calls++;
    if (s->defer_first && !req->may_block) {
        res->defer = true;
        return;
    }
    s->deferred_calls += req->may_block;
    strncat(s->targets, req->target, req->target_len);
    strncat(s->targets, " ", 2);
    strncat(s->bodies, req->body, req->body_len);
    buf_puts(&res->body, "{\"ok\": true}");
}

static const http_config cfg = {.max_body_bytes = 16, .idle_timeout_ms = 1000,
                                .request_timeout_ms = 1000};

static size_t serve(seen *s, const char *bytes, size_t len)
{
    return http_serve_bytes(&cfg, handler, s, bytes, len);
}

static void test_pipelined_requests_are_answered_in_order(void)
{
    static const char in[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                             "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                             "GET /c HTTP/1.0\r\n\r\n";
    seen s = {0};
    CHECK(serve(&s, in, sizeof in - 1) == 3);
    CHECK(strcmp(s.targets, "/a /b /c ") == 0);
    CHECK(strcmp(s.bodies, "xyz") == 0);
}

static void test_a_chunked_body_arrives_whole(void)
{
    static const char in[] = "PUT /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    seen s = {0};
    CHECK(serve(&s, in, sizeof in - 1) == 1);
    CHECK(strcmp(s.bodies, "abcde") == 0);
}

static void test_a_deferred_request_is_answered_once_on_a_thread_that_may_block(void)
{
    static const char in[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    seen s = {.defer_first = true};
    CHECK(serve(&s, in, sizeof in - 1) == 2);
    CHECK(s.calls == 4 && s.deferred_calls == 2);
    CHECK(strcmp(s.targets, "/a /b ") == 0);
}

static void test_bad_requests_reach_no_handler(void)
{
    static const char too_large[] = "POST /a HTTP/1.1\r\nContent-Length: 17\r\n\r\n";
    static const char not_http[] = "GET /a HTTX/1.1\r\n\r\n";
    static const char garbage[] = "\x01\x02 nonsense\r\n\r\n";
    seen s = {0};
    CHECK(serve(&s, too_large, sizeof too_large - 1) == 0);
    CHECK(serve(&s, not_http, sizeof not_http - 1) == 0);
    CHECK(serve(&s, garbage, sizeof garbage - 1) == 0);
    CHECK(serve(&s, "", 0) == 0);
    CHECK(s.calls == 0);
}

/* Found by fuzz_http: answering an error with no cached value behind it added an offset to a
 * null pointer (undefined behaviour clang's UBSan reports; the input is a single NUL byte). */
static void test_an_error_answer_without_a_value_is_sent(void)
{
    seen s = {0};
    CHECK(serve(&s, "\0", 1) == 0);
    CHECK(serve(&s, "GET /a HTTP/1.1\r\n\r\n", 19) == 1);
}

int main(void)
{
    RUN(test_pipelined_requests_are_answered_in_order);
    RUN(test_a_chunked_body_arrives_whole);
    RUN(test_a_deferred_request_is_answered_once_on_a_thread_that_may_block);
    RUN(test_bad_requests_reach_no_handler);
    RUN(test_an_error_answer_without_a_value_is_sent);
    return CHECK_DONE();
}
