/* test_json_validate.c -- checking JSON text without a tree (value/json.c,
 * value_json_validate): it takes exactly what jansson's parser takes (JSON_DECODE_ANY), on
 * hand-written cases and on mutations of them, and refuses nesting past its limit. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "value/value.h"

static const char *const cases[] = {
    "", " ", "0", "-0", "01", "-", "1.", "1.5", ".5", "1e5", "1E+5", "1e-5", "1e", "1.5e+",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "1e400", "-1e400", "1e-400", "true", "false", "null", "tru",
    "nulll", "True", "\"\"", "\"a\"", "\"a", "\"\\u0000\"", "\"\\u0041\"", "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83dx\"", "\"\\ud83d\\u0041\"",
    "\"\\x\"", "\"\\\"\"", "\"\\/\\b\\f\\n\\r\\t\"", "\"\\u12\"", "\"\\uzzzz\"",
    "\"\xc3\xa9\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
    "\"\t\"", "\"a\nb\"", "[]", "[ ]", "[1]", "[1,]", "[,1]", "[1 2]", "[1,2]", "[[[]]]",
    "[[]", "[]]", "{}", "{ }", "{\"a\":1}", "{\"a\" : 1 , \"b\" : [true]}", "{\"a\"}",
    "{\"a\":}", "{\"a\":1,}", "{1:2}", "{\"a\":1 \"b\":2}", "{\"a\":1]", "[1}", "{\"a\":{}}",
    "[{}, [], {\"x\": [null]}]", " [1] ", "[1] x", "1 2", "\"a\" \"b\"", "{\"a\":1}}",
    "[\"\\u0000\"]", "{\"\\u0000\":1}", "[-]", "[-1.5e3]", "[1.5E-3, 0.0, -0]", "\r\n[1]\t",
    "[1]\x00", "\x00", "[\"a\x01\"]", "{\"a\":1,\"a\":2}", "[1.7976931348623157e308]",
    "[1.8e308]",
};

static bool jansson_takes(const char *s, size_t len)
{
    json_error_t e;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &e);
    json_decref(v);
    return v != NULL;
}

static bool we_take(const char *s, size_t len)
{
    aside_error err;
    aside_status st = value_json_validate(s, len, 100, &err);
    CHECK(st == ASIDE_OK || st == ASIDE_ERR_BAD_VALUE);
    if (st == ASIDE_ERR_BAD_VALUE)
        CHECK(strncmp(err.message, "invalid JSON at line ", 21) == 0);
    return st == ASIDE_OK;
}

static void agree(const char *s, size_t len)
{
    bool j = jansson_takes(s, len), w = we_take(s, len);
    if (j && !w && memchr(s, 0, len))
        return; /* jansson's number scanner passes over a NUL byte after a number; we refuse it */
    if (j != w) {
        fprintf(stderr, "disagree on");
        for (size_t k = 0; k < len; k++)
            fprintf(stderr, " %02x", (unsigned char)s[k]);
        fprintf(stderr, ": jansson %d, check %d\n", j, w);
    }
    CHECK(j == w);
}

static void test_cases_as_jansson(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        agree(cases[i], strlen(cases[i]));
    agree("[1]\0", 4);
    agree("\"a\0b\"", 5);
}

/* Each case with one byte changed, deleted or doubled, from a fixed seed. */
static void test_mutations_as_jansson(void)
{
    static const char alphabet[] = "[]{}\",:\\u0123456789.eE+-tfnrl \x00\x7f\xc3\xa9\xff\xed";
    unsigned seed = 12345;
    char buf[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = strlen(cases[i]);
        for (int round = 0; round < 200 && len > 0 && len + 1 < sizeof buf; round++) {
            memcpy(buf, cases[i], len);
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len, n = len;
            char b = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
            switch ((seed >> 16) % 3) {
            case 0: buf[at] = b; break;
            case 1: memmove(buf + at, buf + at + 1, len - at - 1); n--; break;
            default: memmove(buf + at + 1, buf + at, len - at); buf[at] = b; n++; break;
            }
            agree(buf, n);
        }
    }
}

static void test_depth_limit(void)
{
    aside_error err;
    char deep[64] = "";
    for (int i = 0; i < 10; i++)
        strcat(deep, "[");
    for (int i = 0; i < 10; i++)
        strcat(deep, "]");
    CHECK(value_json_validate(deep, 20, 10, &err) == ASIDE_OK);
    CHECK(value_json_validate(deep, 20, 9, &err) == ASIDE_ERR_INVALID);
    CHECK(strcmp(err.code, "too_deep") == 0);
    CHECK(value_json_validate("{\"a\":{\"b\":1}}", 13, 2, &err) == ASIDE_OK);
    CHECK(value_json_validate("{\"a\":{\"b\":1}}", 13, 1, &err) == ASIDE_ERR_INVALID);
    CHECK(value_json_validate("1", 1, 1, &err) == ASIDE_OK);
}

static void test_line_and_column(void)
{
    aside_error err;
    CHECK(value_json_validate("[1,\n 2,\n x]", 11, 10, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(strstr(err.message, "line 3") != NULL);
}

int main(void)
{
    RUN(test_cases_as_jansson);
    RUN(test_mutations_as_jansson);
    RUN(test_depth_limit);
    RUN(test_line_and_column);
    return CHECK_DONE();
}
