/* test_key.c -- which keys are accepted: relative paths that cannot leave the roots. */
#include <string.h>

#include "aside.h"
#include "check.h"

static aside_status check_text(const char *key) { return aside_key_check(key, strlen(key), NULL); }

static void test_plain_and_nested_paths_are_accepted(void)
{
    CHECK(check_text("file2.json") == ASIDE_OK);
    CHECK(check_text("a/b/c.parquet") == ASIDE_OK);
    CHECK(check_text("name with spaces.csv") == ASIDE_OK);
    CHECK(check_text("a..b/..c/d..") == ASIDE_OK); /* dots inside names are fine */
    CHECK(check_text(".hidden") == ASIDE_OK);
    CHECK(check_text("x/.aside/y") == ASIDE_OK); /* only the top-level folder is reserved */
}

static void test_escaping_and_ambiguous_paths_are_refused(void)
{
    CHECK(check_text("") == ASIDE_ERR_INVALID);
    CHECK(check_text("/etc/passwd") == ASIDE_ERR_INVALID);
    CHECK(check_text("..") == ASIDE_ERR_INVALID);
    CHECK(check_text("../x") == ASIDE_ERR_INVALID);
    CHECK(check_text("a/../../x") == ASIDE_ERR_INVALID);
    CHECK(check_text("a/..") == ASIDE_ERR_INVALID);
    CHECK(check_text("./a") == ASIDE_ERR_INVALID);
    CHECK(check_text("a//b") == ASIDE_ERR_INVALID);
    CHECK(check_text("a/") == ASIDE_ERR_INVALID);
    CHECK(check_text(".aside") == ASIDE_ERR_INVALID);
    CHECK(check_text(".aside/meta/x.meta") == ASIDE_ERR_INVALID);
}

static void test_control_characters_and_nul_are_refused(void)
{
    CHECK(check_text("a\nb") == ASIDE_ERR_INVALID);
    CHECK(check_text("a\x01") == ASIDE_ERR_INVALID);
    CHECK(check_text("a\x7f") == ASIDE_ERR_INVALID);
    CHECK(aside_key_check("a\0b", 3, NULL) == ASIDE_ERR_INVALID);
}

/* A key of 1024 bytes made of components as long as allowed ("kkk.../kkk.../..."). */
static void long_key(char *key, size_t len)
{
    memset(key, 'k', len);
    for (size_t i = ASIDE_KEY_COMPONENT_MAX_BYTES; i < len; i += ASIDE_KEY_COMPONENT_MAX_BYTES + 1)
        key[i] = '/';
}

static void test_length_limit_is_1024_bytes(void)
{
    char key[ASIDE_KEY_MAX_BYTES + 2];
    long_key(key, sizeof key);
    CHECK(aside_key_check(key, ASIDE_KEY_MAX_BYTES, NULL) == ASIDE_OK);
    CHECK(aside_key_check(key, ASIDE_KEY_MAX_BYTES + 1, NULL) == ASIDE_ERR_INVALID);
}

static void test_a_component_longer_than_the_file_system_takes_is_refused(void)
{
    char key[ASIDE_KEY_MAX_BYTES];
    memset(key, 'c', sizeof key);
    key[0] = 'd';
    key[1] = '/';
    size_t most = 2 + ASIDE_KEY_COMPONENT_MAX_BYTES;
    CHECK(aside_key_check(key, most, NULL) == ASIDE_OK);
    aside_error err;
    CHECK(aside_key_check(key, most + 1, &err) == ASIDE_ERR_INVALID);
    CHECK(strstr(err.message, "component") != NULL);
    CHECK(aside_key_check(key + 2, 255, NULL) == ASIDE_ERR_INVALID);   /* NAME_MAX itself */
    CHECK(aside_key_check(key + 2, 1000, NULL) == ASIDE_ERR_INVALID);
    key[most] = '/'; /* a folder as long as allowed, then a file */
    CHECK(aside_key_check(key, most + 4, NULL) == ASIDE_OK);
}

static void test_refusal_explains_itself(void)
{
    aside_error err;
    CHECK(aside_key_check("../x", 4, &err) == ASIDE_ERR_INVALID);
    CHECK(err.status == ASIDE_ERR_INVALID);
    CHECK(strstr(err.message, "..") != NULL);
}

int main(void)
{
    RUN(test_plain_and_nested_paths_are_accepted);
    RUN(test_escaping_and_ambiguous_paths_are_refused);
    RUN(test_control_characters_and_nul_are_refused);
    RUN(test_length_limit_is_1024_bytes);
    RUN(test_a_component_longer_than_the_file_system_takes_is_refused);
    RUN(test_refusal_explains_itself);
    return CHECK_DONE();
}
