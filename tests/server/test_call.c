/* test_call.c -- a request's way into a call: the route, the bearer token, the verb,
 * parameters from the query string (percent-decoded strictly) and from a JSON body, their
 * limit, the options checked before any handler runs, and the envelope and error answers. No
 * cache is opened: the call module needs none. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/call.h"

typedef struct exchange {
    server        srv;
    http_request  req;
    http_response res;
    call          c;
    http_header   headers[2];
} exchange;

static void start(exchange *x, http_method_kind method, const char *target, const char *body)
{
    memset(x, 0, sizeof *x);
    x->req.method = method;
    x->req.method_name = method == HTTP_METHOD_OTHER ? "PATCH" : "GET";
    x->req.target = target;
    x->req.target_len = strlen(target);
    x->req.body = body;
    x->req.body_len = body ? strlen(body) : 0;
    x->req.headers = x->headers;
}

static void add_header(exchange *x, const char *name, const char *value)
{
    x->headers[x->req.header_count++] = (http_header){name, strlen(name), value, strlen(value)};
}

static bool prepare(exchange *x)
{
    call_init(&x->c, &x->srv, &x->req, &x->res);
    return call_prepare(&x->c);
}

static void finish(exchange *x)
{
    call_finish(&x->c);
    buf_free(&x->res.body);
    buf_free(&x->res.headers);
}

/* True if the answer is an error with this status and code. */
static bool answered(const exchange *x, int status, const char *code)
{
    json_t *doc = json_loadb(x->res.body.data ? x->res.body.data : "", x->res.body.len, 0, NULL);
    const char *got = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    bool same = x->res.status == status && got && strcmp(got, code) == 0;
    if (!same)
        fprintf(stderr, "  got %d %.*s\n", x->res.status, (int)x->res.body.len,
                x->res.body.data ? x->res.body.data : "");
    json_decref(doc);
    return same;
}

static bool param_is(const exchange *x, const char *name, const char *want, size_t want_len)
{
    size_t len = 0;
    const char *v = call_param_value(&x->c, name, &len);
    return v && len == want_len && memcmp(v, want, len) == 0;
}

static void test_query_parameters_are_percent_decoded_and_the_last_one_wins(void)
{
    exchange x;
    start(&x, HTTP_METHOD_GET, "/cache/api/v1.0/?path=a%2Fb.json&q=x+y&q=%41%00z&flag", NULL);
    CHECK(prepare(&x));
    CHECK(param_is(&x, "path", "a/b.json", 8));
    CHECK(param_is(&x, "q", "A\0z", 3)); /* the last given wins; NUL kept with its length */
    CHECK(param_is(&x, "flag", "", 0));
    CHECK(x.c.path && strcmp(x.c.path, "a/b.json") == 0 && x.c.path_len == 8);
    CHECK(strcmp(call_function_name(&x.c), "read") == 0);
    finish(&x);
}

static void test_malformed_percent_encoding_is_400(void)
{
    const char *targets[] = {"/cache?path=%zz", "/cache?path=%4", "/cache?%=1", NULL};
    for (size_t i = 0; targets[i]; i++) {
        exchange x;
        start(&x, HTTP_METHOD_GET, targets[i], NULL);
        CHECK(!prepare(&x));
        CHECK(answered(&x, 400, "bad_request"));
        finish(&x);
    }
}

static void test_more_parameters_than_the_limit_is_400(void)
{
    buf target = {0};
    buf_puts(&target, "/cache/api/v1.0/?");
    for (int i = 0; i <= CALL_MAX_PARAMS; i++)
        buf_printf(&target, "p%d=%d&", i, i);
    exchange x;
    start(&x, HTTP_METHOD_GET, target.data, NULL);
    CHECK(!prepare(&x));
    CHECK(answered(&x, 400, "bad_request"));
    finish(&x);
    buf_free(&target);
}

static void test_a_body_wins_over_the_query_and_keeps_json_types(void)
{
    exchange x;
    start(&x, HTTP_METHOD_POST, "/cache?function=read&path=q.json",
          "{\"data\": {\"function\": \"list_push\", \"value\": {\"id\": 7}, \"n\": 5, "
          "\"path\": null, \"none\": null}}");
    CHECK(prepare(&x));
    CHECK(strcmp(call_function_name(&x.c), "list_push") == 0);
    CHECK(param_is(&x, "value", "{\"id\":7}", 8));
    CHECK(param_is(&x, "n", "5", 1));
    CHECK(param_is(&x, "none", "null", 4));          /* an argument: null is a value */
    CHECK(x.c.path && strcmp(x.c.path, "q.json") == 0); /* an API parameter: null is absent */
    finish(&x);
}

static void test_bad_bodies_are_400(void)
{
    const char *bodies[] = {"{not json", "[1, 2]", "{\"data\": 5}",
                            "{\"data\": {\"path\": [\"a\"]}}", NULL};
    for (size_t i = 0; bodies[i]; i++) {
        exchange x;
        start(&x, HTTP_METHOD_POST, "/cache", bodies[i]);
        CHECK(!prepare(&x));
        CHECK(answered(&x, 400, "bad_request"));
        finish(&x);
    }
}

static void test_write_and_put_bodies_are_values_not_parameters(void)
{
    exchange x;
    start(&x, HTTP_METHOD_PUT, "/cache?function=put&path=k.bin", "{not json");
    CHECK(prepare(&x));
    CHECK(x.c.raw_body);
    finish(&x);
}

static void test_routes_verbs_and_paths_are_checked_first(void)
{
    exchange x;
    start(&x, HTTP_METHOD_GET, "/elsewhere?path=x", NULL);
    CHECK(!prepare(&x) && answered(&x, 404, "not_found"));
    finish(&x);
    start(&x, HTTP_METHOD_OTHER, "/cache/api/v1.0", NULL);
    CHECK(!prepare(&x) && answered(&x, 405, "method_not_allowed"));
    CHECK(x.res.headers.data && strstr(x.res.headers.data, "Allow: "));
    finish(&x);
    start(&x, HTTP_METHOD_GET, "/cache/?path=../etc/passwd", NULL);
    CHECK(!prepare(&x) && answered(&x, 400, "bad_request"));
    CHECK(x.c.path == NULL);
    finish(&x);
    start(&x, HTTP_METHOD_GET, "/cache/?max_age=-1", NULL);
    CHECK(!prepare(&x) && answered(&x, 400, "bad_request"));
    finish(&x);
}

static void test_a_bad_type_names_every_type_of_the_registry(void)
{
    exchange x;
    start(&x, HTTP_METHOD_GET, "/cache?path=a&type=table", NULL);
    CHECK(!prepare(&x) && answered(&x, 400, "bad_request"));
    CHECK(x.res.body.data && strstr(x.res.body.data, "must be one of: bytes, json, frame, list, "
                                                     "set, map, counter\""));
    finish(&x);
}

static void test_with_a_token_a_request_must_bring_it(void)
{
    exchange x;
    start(&x, HTTP_METHOD_GET, "/cache?path=a", NULL);
    x.srv.defaults.token = "s3cret";
    CHECK(!prepare(&x) && answered(&x, 401, "unauthorized"));
    CHECK(x.res.headers.data && strstr(x.res.headers.data, "WWW-Authenticate: Bearer"));
    finish(&x);
    start(&x, HTTP_METHOD_GET, "/cache?path=a", NULL);
    x.srv.defaults.token = "s3cret";
    add_header(&x, "Authorization", "Bearer s3cre");
    CHECK(!prepare(&x) && answered(&x, 401, "unauthorized"));
    finish(&x);
    start(&x, HTTP_METHOD_GET, "/cache?path=a", NULL);
    x.srv.defaults.token = "s3cret";
    add_header(&x, "authorization", "bearer s3cret");
    CHECK(prepare(&x));
    finish(&x);
}

static void test_the_verb_chooses_the_function_and_head_is_head(void)
{
    struct { http_method_kind method; const char *target; const char *want; } cases[] = {
        {HTTP_METHOD_GET, "/cache", "read"},     {HTTP_METHOD_POST, "/cache", "create"},
        {HTTP_METHOD_PUT, "/cache", "update"},   {HTTP_METHOD_DELETE, "/cache", "delete"},
        {HTTP_METHOD_HEAD, "/cache?function=read", "head"},
        {HTTP_METHOD_GET, "/cache?function=", "read"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        exchange x;
        start(&x, cases[i].method, cases[i].target, NULL);
        CHECK(prepare(&x));
        CHECK(strcmp(call_function_name(&x.c), cases[i].want) == 0);
        finish(&x);
        CHECK(x.res.omit_body == (cases[i].method == HTTP_METHOD_HEAD));
    }
}

static void test_the_parameter_table_says_who_gets_what(void)
{
    CHECK(call_is_api_parameter("path") && call_is_api_parameter("function_body"));
    CHECK(!call_is_api_parameter("value"));
    CHECK(!call_operation_gets("path") && !call_operation_gets("function"));
    CHECK(call_operation_gets("value") && call_operation_gets("orient"));
    CHECK(!call_function_gets("timeout") && !call_function_gets("orient"));
    CHECK(call_function_gets("path") && call_function_gets("message"));
}

static void test_statuses_of_library_errors(void)
{
    CHECK(call_http_status(ASIDE_ERR_NOMEM) == 503);
    CHECK(call_http_status(ASIDE_ERR_FULL) == 507);
    CHECK(call_http_status(ASIDE_ERR_NOT_FOUND) == 404);
    CHECK(call_http_status(ASIDE_ERR_INTERNAL) == 500);
    aside_error err = {.status = ASIDE_ERR_NOMEM};
    CHECK(strcmp(call_error_code(&err), "out_of_memory") == 0);
    err.status = ASIDE_ERR_INVALID;
    CHECK(strcmp(call_error_code(&err), "bad_request") == 0);
    strcpy(err.code, "bad_spec");
    CHECK(strcmp(call_error_code(&err), "bad_spec") == 0);
}

static void test_the_envelope_names_the_path(void)
{
    exchange x;
    start(&x, HTTP_METHOD_GET, "/cache?path=a%22b.json", NULL);
    CHECK(prepare(&x));
    call_answer_success(&x.c);
    CHECK(x.res.status == 200 && x.res.body.data &&
          strcmp(x.res.body.data, "{\"return\": {\"uri\": \"/cache/api/v1.0/\", \"path\": "
                                  "\"a\\\"b.json\", \"value\": {\"result\": \"success\"}}}") == 0);
    finish(&x);
    start(&x, HTTP_METHOD_GET, "/cache", NULL);
    CHECK(prepare(&x));
    call_out_of_memory(&x.c);
    CHECK(answered(&x, 503, "out_of_memory"));
    finish(&x);
}

static void test_library_statuses_answer_as_the_error_table_says(void)
{
    size_t count = 0;
    const call_error_row *rows = call_error_rows(&count);
    CHECK(count > 10);
    for (size_t i = 0; i < count; i++) {
        CHECK(rows[i].codes && rows[i].when && (i == 0 || rows[i - 1].status < rows[i].status));
        if (rows[i].library_status < 0)
            continue;
        aside_status st = (aside_status)rows[i].library_status;
        CHECK(call_http_status(st) == rows[i].status);
        char code[64];
        snprintf(code, sizeof code, "`%s`", aside_status_name(st));
        aside_error err = {.status = st};
        if (st != ASIDE_ERR_INVALID)
            CHECK(strcmp(call_error_code(&err), aside_status_name(st)) == 0);
        CHECK(strstr(rows[i].codes, st == ASIDE_ERR_INVALID ? "`bad_request`" : code));
    }
}

/* The file at path, NUL-terminated (free it), or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return b.failed ? NULL : b.data;
}

static void test_readme_error_table_is_the_call_modules(const char *readme_path)
{
    char *readme = readme_path ? read_file(readme_path) : NULL;
    buf md = {0};
    call_errors_markdown(&md);
    CHECK(readme && md.data && strstr(readme, md.data));
    buf_free(&md);
    free(readme);
}

int main(int argc, char **argv)
{
    RUN(test_query_parameters_are_percent_decoded_and_the_last_one_wins);
    RUN(test_malformed_percent_encoding_is_400);
    RUN(test_more_parameters_than_the_limit_is_400);
    RUN(test_a_body_wins_over_the_query_and_keeps_json_types);
    RUN(test_bad_bodies_are_400);
    RUN(test_write_and_put_bodies_are_values_not_parameters);
    RUN(test_routes_verbs_and_paths_are_checked_first);
    RUN(test_a_bad_type_names_every_type_of_the_registry);
    RUN(test_with_a_token_a_request_must_bring_it);
    RUN(test_the_verb_chooses_the_function_and_head_is_head);
    RUN(test_the_parameter_table_says_who_gets_what);
    RUN(test_statuses_of_library_errors);
    RUN(test_the_envelope_names_the_path);
    RUN(test_library_statuses_answer_as_the_error_table_says);
    int before = check_failures;
    test_readme_error_table_is_the_call_modules(argc > 1 ? argv[1] : NULL);
    printf("%s test_readme_error_table_is_the_call_modules\n",
           check_failures == before ? "ok  " : "FAIL");
    return CHECK_DONE();
}
