/* test_buf.c -- response building: JSON strings that stay valid whatever bytes go in, base64 as
 * RFC 4648 spells it, and growth. */
#include <string.h>

#include "check.h"
#include "util/util.h"

static bool json_is(const char *in, size_t len, const char *want)
{
    buf b;
    buf_init(&b);
    buf_put_json_string(&b, in, len);
    bool same = !b.failed && strcmp(b.data, want) == 0;
    if (!same)
        fprintf(stderr, "  got %s, want %s\n", b.data, want);
    buf_free(&b);
    return same;
}

static void test_json_strings_escape_quotes_backslashes_and_controls(void)
{
    CHECK(json_is("plain", 5, "\"plain\""));
    CHECK(json_is("a\"b\\c", 5, "\"a\\\"b\\\\c\""));
    CHECK(json_is("\n\t\x01\x7f", 4, "\"\\u000a\\u0009\\u0001\\u007f\""));
    CHECK(json_is("a\0b", 3, "\"a\\u0000b\""));
}

static void test_json_strings_keep_utf8_and_replace_invalid_bytes(void)
{
    CHECK(json_is("caf\xc3\xa9 \xe2\x82\xac", 9, "\"caf\xc3\xa9 \xe2\x82\xac\""));
    CHECK(json_is("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""));
    CHECK(json_is("bad\xff", 4, "\"bad\\ufffd\""));
    CHECK(json_is("\xc3", 1, "\"\\ufffd\""));             /* truncated sequence */
    CHECK(json_is("\xc0\xaf", 2, "\"\\ufffd\\ufffd\""));  /* overlong encoding */
    CHECK(json_is("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"")); /* a surrogate */
}

static bool base64_is(const char *in, const char *want)
{
    buf b;
    buf_init(&b);
    buf_put_base64(&b, in, strlen(in));
    bool same = strcmp(b.data ? b.data : "", want) == 0;
    buf_free(&b);
    return same;
}

static void test_base64_matches_rfc4648_vectors(void)
{
    CHECK(base64_is("", ""));
    CHECK(base64_is("f", "Zg=="));
    CHECK(base64_is("fo", "Zm8="));
    CHECK(base64_is("foo", "Zm9v"));
    CHECK(base64_is("foob", "Zm9vYg=="));
    CHECK(base64_is("fooba", "Zm9vYmE="));
    CHECK(base64_is("foobar", "Zm9vYmFy"));
}

static void test_buffers_grow_and_hand_over_their_bytes(void)
{
    buf b;
    buf_init(&b);
    for (int i = 0; i < 10000; i++)
        buf_put_u64(&b, (uint64_t)i);
    CHECK(!b.failed && b.len == 38890);
    CHECK(memcmp(b.data, "0123456789101112", 16) == 0);
    buf_printf(&b, "-%s-", "end");
    char *taken = buf_take(&b);
    CHECK(taken && strcmp(taken + 38890, "-end-") == 0);
    CHECK(b.data == NULL && b.len == 0);
    free(taken);
}

int main(void)
{
    RUN(test_json_strings_escape_quotes_backslashes_and_controls);
    RUN(test_json_strings_keep_utf8_and_replace_invalid_bytes);
    RUN(test_base64_matches_rfc4648_vectors);
    RUN(test_buffers_grow_and_hand_over_their_bytes);
    return CHECK_DONE();
}
