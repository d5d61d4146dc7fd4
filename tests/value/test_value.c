/* test_value.c -- value types by key name, validation at load, Content-Types, and the life of
 * reference-counted values (in memory and in files). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "value/value.h"

static void test_keys_choose_their_type_by_extension(void)
{
    CHECK(aside_value_type_for_key("file2.json") == ASIDE_TYPE_JSON);
    CHECK(aside_value_type_for_key("dir/UPPER.JSON") == ASIDE_TYPE_JSON);
    CHECK(aside_value_type_for_key("file1.snappy.parquet") == ASIDE_TYPE_FRAME);
    CHECK(aside_value_type_for_key("t.csv.gz") == ASIDE_TYPE_FRAME);
    CHECK(aside_value_type_for_key("t.Feather") == ASIDE_TYPE_FRAME);
    CHECK(aside_value_type_for_key("t.jsonl") == ASIDE_TYPE_FRAME);
    CHECK(aside_value_type_for_key("parquet") == ASIDE_TYPE_BYTES);
    CHECK(aside_value_type_for_key("json") == ASIDE_TYPE_BYTES);
    aside_value_type parsed = ASIDE_TYPE_BYTES;
    CHECK(aside_value_type_parse("frame", &parsed) == ASIDE_OK && parsed == ASIDE_TYPE_FRAME);
    CHECK(aside_value_type_parse("dataframe", &parsed) == ASIDE_ERR_INVALID);
    CHECK(aside_value_type_for_key("a.json.gz") == ASIDE_TYPE_BYTES);
    CHECK(strcmp(aside_value_type_name(ASIDE_TYPE_JSON), "json") == 0);
}

static void test_json_values_are_validated_with_a_located_reason(void)
{
    const value_kind *json = value_kind_of(ASIDE_TYPE_JSON);
    aside_error err;
    CHECK(json->check(NULL, "{\"a\": [1, 2]}", 13, &err) == ASIDE_OK);
    CHECK(json->check(NULL, "42", 2, &err) == ASIDE_OK); /* any JSON text, as RFC 8259 allows */
    CHECK(json->check(NULL, "{\"a\": }", 7, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(strstr(err.message, "line 1") != NULL);
    CHECK(json->check(NULL, "", 0, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(json->check(NULL, "[1] [2]", 7, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(value_kind_of(ASIDE_TYPE_BYTES)->check(NULL, "\xff\x00", 2, &err) == ASIDE_OK);
}

static void test_content_types_follow_the_extension(void)
{
    const value_kind *bytes = value_kind_of(ASIDE_TYPE_BYTES);
    CHECK(strcmp(bytes->content_type("x.parquet"), "application/vnd.apache.parquet") == 0);
    CHECK(strncmp(bytes->content_type("x.csv"), "text/csv", 8) == 0);
    CHECK(strcmp(bytes->content_type("x.unknown"), "application/octet-stream") == 0);
    CHECK(strcmp(value_kind_of(ASIDE_TYPE_JSON)->content_type("x.json"), "application/json") ==
          0);
}

static void test_memory_values_live_until_the_last_release(void)
{
    char *data = malloc(3);
    memcpy(data, "abc", 3);
    aside_value *v = value_from_memory(ASIDE_TYPE_BYTES, data, 3);
    CHECK(v && aside_value_size(v) == 3 && aside_value_fd(v) == -1);
    aside_value *again = aside_value_retain(v);
    aside_value_release(v);
    CHECK(memcmp(aside_value_data(again), "abc", 3) == 0); /* still alive: one reference left */
    aside_value_release(again);
    aside_value_release(NULL);
}

static void test_file_values_own_their_descriptor(void)
{
    char path[] = "/tmp/aside-value-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5);
    unlink(path);
    aside_value *v = value_from_file(ASIDE_TYPE_BYTES, fd, 5);
    CHECK(v && aside_value_data(v) == NULL && aside_value_fd(v) == fd);
    char got[5];
    CHECK(pread(aside_value_fd(v), got, 5, 0) == 5 && memcmp(got, "hello", 5) == 0);
    aside_value_release(v);
    CHECK(fcntl(fd, F_GETFD) == -1); /* closed with the value */
}

int main(void)
{
    RUN(test_keys_choose_their_type_by_extension);
    RUN(test_json_values_are_validated_with_a_located_reason);
    RUN(test_content_types_follow_the_extension);
    RUN(test_memory_values_live_until_the_last_release);
    RUN(test_file_values_own_their_descriptor);
    return CHECK_DONE();
}
