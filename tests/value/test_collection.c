/* test_collection.c -- lists, sets, maps, counters and JSON documents in memory, without the
 * cache: every operation of collection_apply on each type, its answer and the state it leaves;
 * the refusals (wrong type, bad arguments, what is not there), each of which must leave the
 * collection exactly as it was; set algebra; building a collection from JSON; the memory figure
 * following the content. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "value/value.h"

/* A JSON value from text (any JSON value); NULL when it does not parse. */
static json_t *json_of(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        fprintf(stderr, "test JSON does not parse: %s\n", text);
    return v;
}

/* True if v equals the JSON text. */
static bool json_is(const json_t *v, const char *text)
{
    json_t *want = json_of(text);
    bool same = v && want && json_equal(v, want);
    json_decref(want);
    return same;
}

/* Run op with the arguments args_text (JSON object text, or NULL) on c. On success *result_out
 * (may be NULL) receives the answer; err gets the failure. */
static aside_status run(collection *c, const char *op, const char *args_text, json_t **result_out,
                        aside_error *err)
{
    json_t *args = args_text ? json_of(args_text) : NULL;
    json_t *result = NULL;
    aside_error ignored;
    aside_status st = collection_apply(c, op, args, VALUE_JSON_DEFAULT_DEPTH, &result,
                                       err ? err : &ignored);
    json_decref(args);
    if (result_out)
        *result_out = result;
    else
        json_decref(result);
    return st;
}

/* op succeeds and answers the JSON text want. */
static bool answers(collection *c, const char *op, const char *args_text, const char *want)
{
    json_t *result = NULL;
    aside_status st = run(c, op, args_text, &result, NULL);
    bool right = st == ASIDE_OK && json_is(result, want);
    if (!right) {
        char *got = result ? json_dumps(result, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        fprintf(stderr, "  %s %s: status %s, answer %s, wanted %s\n", op,
                args_text ? args_text : "(no arguments)", aside_status_name(st),
                got ? got : "(none)", want);
        free(got);
    }
    json_decref(result);
    return right;
}

/* The content of c equals the JSON text want. */
static bool holds(const collection *c, const char *want)
{
    json_t *content = collection_json(c);
    bool same = json_is(content, want);
    json_decref(content);
    return same;
}

/* op fails with status want (and, when code is not NULL, that error code), and c's content and
 * memory figure are what they were before. */
static bool refused(collection *c, const char *op, const char *args_text, aside_status want,
                    const char *code)
{
    size_t before_len = 0, after_len = 0;
    char *before = collection_dump(c, &before_len);
    uint64_t before_bytes = collection_memory_bytes(c);
    aside_error err;
    memset(&err, 0, sizeof err);
    json_t *result = NULL;
    aside_status st = run(c, op, args_text, &result, &err);
    char *after = collection_dump(c, &after_len);
    bool right = st == want && before && after && before_len == after_len &&
                 memcmp(before, after, before_len) == 0 &&
                 collection_memory_bytes(c) == before_bytes && err.message[0] &&
                 (!code || strcmp(err.code, code) == 0);
    if (!right)
        fprintf(stderr, "  %s %s: status %s (wanted %s), code \"%s\", before %s, after %s\n", op,
                args_text ? args_text : "(no arguments)", aside_status_name(st),
                aside_status_name(want), err.code, before ? before : "?", after ? after : "?");
    json_decref(result);
    free(before);
    free(after);
    return right;
}

/* A collection of type built from the JSON text content. */
static collection *made(aside_value_type type, const char *content)
{
    json_t *v = json_of(content);
    collection *c = NULL;
    if (collection_from_json(type, v, &c, NULL) != ASIDE_OK)
        fprintf(stderr, "collection_from_json refused %s\n", content);
    json_decref(v);
    return c;
}

static const char DIGITS[] = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";

/* ---- lists -------------------------------------------------------------------------------- */

static void test_list_push_at_both_ends_answers_the_new_length(void)
{
    collection *c = collection_create(ASIDE_TYPE_LIST);
    CHECK(collection_type(c) == ASIDE_TYPE_LIST && holds(c, "[]"));
    CHECK(answers(c, "list_push", "{\"value\": \"b\"}", "1"));
    CHECK(answers(c, "list_push", "{\"value\": \"c\", \"end\": \"back\"}", "2"));
    CHECK(answers(c, "list_push", "{\"value\": \"a\", \"end\": \"front\"}", "3"));
    CHECK(answers(c, "list_push", "{\"values\": [\"d\", \"e\"]}", "5"));
    CHECK(holds(c, "[\"a\", \"b\", \"c\", \"d\", \"e\"]"));
    /* several values at the front go in one after the other, as deque.extendleft does */
    CHECK(answers(c, "list_push", "{\"values\": [1, 2], \"end\": \"front\"}", "7"));
    CHECK(holds(c, "[2, 1, \"a\", \"b\", \"c\", \"d\", \"e\"]"));
    /* any JSON value is an element, its type kept; an empty array pushes nothing */
    CHECK(answers(c, "list_push", "{\"values\": [null, {\"k\": [1]}, 1.5, true]}", "11"));
    CHECK(answers(c, "list_push", "{\"values\": []}", "11"));
    CHECK(answers(c, "list_index", "{\"index\": -3}", "{\"k\": [1]}"));
    CHECK(answers(c, "list_length", NULL, "11"));
    collection_free(c);
}

static void test_list_pop_takes_from_either_end_with_and_without_count(void)
{
    collection *c = made(ASIDE_TYPE_LIST, "[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]");
    CHECK(answers(c, "list_pop", NULL, "\"f\""));
    CHECK(answers(c, "list_pop", "{\"end\": \"back\"}", "\"e\""));
    CHECK(answers(c, "list_pop", "{\"end\": \"front\"}", "\"a\""));
    CHECK(holds(c, "[\"b\", \"c\", \"d\"]"));
    /* with a count: an array in the order taken, up to count of them */
    CHECK(answers(c, "list_pop", "{\"count\": 2}", "[\"d\", \"c\"]"));
    CHECK(answers(c, "list_pop", "{\"count\": 5, \"end\": \"front\"}", "[\"b\"]"));
    CHECK(holds(c, "[]"));
    CHECK(answers(c, "list_pop", "{\"count\": 3}", "[]"));
    CHECK(refused(c, "list_pop", NULL, ASIDE_ERR_NOT_FOUND, "empty"));
    CHECK(refused(c, "list_pop", "{\"end\": \"front\"}", ASIDE_ERR_NOT_FOUND, "empty"));
    collection_free(c);
}

static void test_list_pop_count_must_be_a_positive_integer(void)
{
    collection *c = made(ASIDE_TYPE_LIST, "[1, 2, 3]");
    CHECK(refused(c, "list_pop", "{\"count\": 0}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_pop", "{\"count\": -1}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_pop", "{\"count\": \"2\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_pop", "{\"count\": 1.5}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_pop", "{\"end\": \"middle\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_pop", "{\"end\": 1}", ASIDE_ERR_INVALID, NULL));
    CHECK(holds(c, "[1, 2, 3]"));
    collection_free(c);
}

/* One slice case: arguments, and what Python's DIGITS[start:stop] is. */
typedef struct slice_case {
    const char *args;
    const char *want;
} slice_case;

static const slice_case SLICES[] = {
    {NULL, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"},
    {"{\"start\": 2, \"stop\": 5}", "[2, 3, 4]"},
    {"{\"start\": 7}", "[7, 8, 9]"},
    {"{\"stop\": 3}", "[0, 1, 2]"},
    {"{\"start\": -3}", "[7, 8, 9]"},
    {"{\"stop\": -7}", "[0, 1, 2]"},
    {"{\"start\": -2, \"stop\": -1}", "[8]"},
    {"{\"start\": -100, \"stop\": 2}", "[0, 1]"},
    {"{\"start\": 8, \"stop\": 100}", "[8, 9]"},
    {"{\"start\": 100, \"stop\": 200}", "[]"},
    {"{\"start\": -200, \"stop\": -100}", "[]"},
    {"{\"start\": 5, \"stop\": 2}", "[]"},
    {"{\"start\": -1, \"stop\": -5}", "[]"},
    {"{\"start\": 0, \"stop\": 0}", "[]"},
    {"{\"start\": null, \"stop\": null}", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"},
};

static void test_list_range_has_python_slice_semantics(void)
{
    collection *c = made(ASIDE_TYPE_LIST, DIGITS);
    for (size_t i = 0; i < sizeof SLICES / sizeof SLICES[0]; i++)
        CHECK(answers(c, "list_range", SLICES[i].args, SLICES[i].want));
    CHECK(holds(c, DIGITS)); /* a read changes nothing */
    CHECK(refused(c, "list_range", "{\"start\": \"a\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_range", "{\"stop\": 1.5}", ASIDE_ERR_INVALID, NULL));
    collection_free(c);
}

static void test_list_trim_keeps_the_python_slice(void)
{
    for (size_t i = 0; i < sizeof SLICES / sizeof SLICES[0]; i++) {
        collection *c = made(ASIDE_TYPE_LIST, DIGITS);
        json_t *want = json_of(SLICES[i].want);
        char length[32];
        snprintf(length, sizeof length, "%zu", json_array_size(want));
        CHECK(answers(c, "list_trim", SLICES[i].args, length));
        CHECK(holds(c, SLICES[i].want));
        json_decref(want);
        collection_free(c);
    }
    collection *c = made(ASIDE_TYPE_LIST, DIGITS);
    CHECK(refused(c, "list_trim", "{\"start\": \"x\"}", ASIDE_ERR_INVALID, NULL));
    collection_free(c);
}

static void test_list_index_counts_negatives_from_the_end(void)
{
    collection *c = made(ASIDE_TYPE_LIST, DIGITS);
    CHECK(answers(c, "list_index", "{\"index\": 0}", "0"));
    CHECK(answers(c, "list_index", "{\"index\": 9}", "9"));
    CHECK(answers(c, "list_index", "{\"index\": -1}", "9"));
    CHECK(answers(c, "list_index", "{\"index\": -10}", "0"));
    CHECK(refused(c, "list_index", "{\"index\": 10}", ASIDE_ERR_NOT_FOUND, "out_of_range"));
    CHECK(refused(c, "list_index", "{\"index\": -11}", ASIDE_ERR_NOT_FOUND, "out_of_range"));
    CHECK(refused(c, "list_index", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_index", "{\"index\": \"1\"}", ASIDE_ERR_INVALID, NULL));
    collection_free(c);
    c = collection_create(ASIDE_TYPE_LIST);
    CHECK(refused(c, "list_index", "{\"index\": 0}", ASIDE_ERR_NOT_FOUND, "out_of_range"));
    CHECK(refused(c, "list_index", "{\"index\": -1}", ASIDE_ERR_NOT_FOUND, "out_of_range"));
    collection_free(c);
}

static void test_list_push_with_bad_arguments_changes_nothing(void)
{
    collection *c = made(ASIDE_TYPE_LIST, "[1]");
    CHECK(refused(c, "list_push", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_push", "{}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_push", "{\"values\": 5}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_push", "{\"values\": {\"a\": 1}}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_push", "{\"value\": 1, \"values\": [2]}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "list_push", "{\"value\": 1, \"end\": \"side\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(holds(c, "[1]"));
    collection_free(c);
}

/* ---- sets --------------------------------------------------------------------------------- */

static void test_set_add_and_remove_count_what_changed(void)
{
    collection *c = collection_create(ASIDE_TYPE_SET);
    CHECK(answers(c, "set_add", "{\"value\": 1}", "1"));
    CHECK(answers(c, "set_add", "{\"value\": 1}", "0"));
    /* duplicates within one call count once; 2 and "2" are different members */
    CHECK(answers(c, "set_add", "{\"values\": [2, 2, \"2\", 1]}", "2"));
    CHECK(answers(c, "set_size", NULL, "3"));
    CHECK(answers(c, "set_remove", "{\"values\": [1, 5, 1]}", "1"));
    CHECK(answers(c, "set_remove", "{\"value\": 5}", "0"));
    CHECK(answers(c, "set_members", NULL, "[\"2\", 2]"));
    CHECK(refused(c, "set_add", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "set_add", "{\"values\": \"x\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "set_remove", "{}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "set_contains", "{}", ASIDE_ERR_INVALID, NULL));
    collection_free(c);
}

static void test_set_members_are_sorted_by_their_json_text(void)
{
    collection *c = collection_create(ASIDE_TYPE_SET);
    CHECK(answers(c, "set_add",
                  "{\"values\": [\"b\", 10, 9, {\"a\": 1}, [1], null, true, \"a\"]}", "8"));
    /* by text: "\"a\"" < "\"b\"" < "10" < "9" < "[1]" < "null" < "true" < "{\"a\":1}" */
    CHECK(answers(c, "set_members", NULL,
                  "[\"a\", \"b\", 10, 9, [1], null, true, {\"a\": 1}]"));
    CHECK(holds(c, "[\"a\", \"b\", 10, 9, [1], null, true, {\"a\": 1}]"));
    collection_free(c);
}

static void test_set_members_are_equal_whatever_the_order_of_their_keys(void)
{
    collection *c = collection_create(ASIDE_TYPE_SET);
    CHECK(answers(c, "set_add", "{\"value\": {\"b\": 1, \"a\": [2, {\"d\": 0, \"c\": 1}]}}", "1"));
    CHECK(answers(c, "set_add", "{\"value\": {\"a\": [2, {\"c\": 1, \"d\": 0}], \"b\": 1}}", "0"));
    CHECK(answers(c, "set_contains", "{\"value\": {\"a\": [2, {\"c\": 1, \"d\": 0}], \"b\": 1}}",
                  "true"));
    CHECK(answers(c, "set_contains", "{\"value\": {\"a\": [2], \"b\": 1}}", "false"));
    CHECK(answers(c, "set_contains", "{\"value\": \"1\"}", "false"));
    CHECK(answers(c, "set_size", NULL, "1"));
    CHECK(answers(c, "set_remove", "{\"value\": {\"b\": 1, \"a\": [2, {\"d\": 0, \"c\": 1}]}}", "1"));
    CHECK(answers(c, "set_size", NULL, "0"));
    collection_free(c);
}

static void test_set_algebra_unions_intersects_and_subtracts(void)
{
    collection *a = made(ASIDE_TYPE_SET, "[1, 2, 3]");
    collection *b = made(ASIDE_TYPE_SET, "[2, 3, 4]");
    collection *c = made(ASIDE_TYPE_SET, "[3, 5]");
    collection *none = collection_create(ASIDE_TYPE_SET);
    const collection *abc[] = {a, b, c};
    const collection *ab[] = {a, b};
    const collection *ba[] = {b, a};
    const collection *a_none[] = {a, none};
    json_t *r = NULL;
    CHECK(collection_set_algebra(abc, 3, "union", &r, NULL) == ASIDE_OK &&
          json_is(r, "[1, 2, 3, 4, 5]"));
    json_decref(r);
    CHECK(collection_set_algebra(abc, 3, "intersection", &r, NULL) == ASIDE_OK &&
          json_is(r, "[3]"));
    json_decref(r);
    CHECK(collection_set_algebra(ab, 2, "intersection", &r, NULL) == ASIDE_OK &&
          json_is(r, "[2, 3]"));
    json_decref(r);
    CHECK(collection_set_algebra(ab, 2, "difference", &r, NULL) == ASIDE_OK && json_is(r, "[1]"));
    json_decref(r);
    CHECK(collection_set_algebra(ba, 2, "difference", &r, NULL) == ASIDE_OK && json_is(r, "[4]"));
    json_decref(r);
    CHECK(collection_set_algebra(abc, 3, "difference", &r, NULL) == ASIDE_OK && json_is(r, "[1]"));
    json_decref(r);
    /* an empty operand: the union and difference are the other, the intersection empty */
    CHECK(collection_set_algebra(a_none, 2, "union", &r, NULL) == ASIDE_OK &&
          json_is(r, "[1, 2, 3]"));
    json_decref(r);
    CHECK(collection_set_algebra(a_none, 2, "intersection", &r, NULL) == ASIDE_OK &&
          json_is(r, "[]"));
    json_decref(r);
    CHECK(collection_set_algebra(a_none, 2, "difference", &r, NULL) == ASIDE_OK &&
          json_is(r, "[1, 2, 3]"));
    json_decref(r);
    CHECK(collection_set_algebra(abc, 1, "union", &r, NULL) == ASIDE_OK &&
          json_is(r, "[1, 2, 3]"));
    json_decref(r);
    CHECK(collection_set_algebra(abc, 0, "union", &r, NULL) == ASIDE_OK && json_is(r, "[]"));
    json_decref(r);
    /* the operands are left as they were */
    CHECK(holds(a, "[1, 2, 3]") && holds(b, "[2, 3, 4]") && holds(c, "[3, 5]"));
    collection_free(a);
    collection_free(b);
    collection_free(c);
    collection_free(none);
}

/* ---- maps --------------------------------------------------------------------------------- */

static void test_map_set_get_delete_all_and_length(void)
{
    collection *c = collection_create(ASIDE_TYPE_MAP);
    CHECK(answers(c, "map_set", "{\"field\": \"a\", \"value\": 1}", "1"));
    CHECK(answers(c, "map_set", "{\"field\": \"a\", \"value\": [1, 2]}", "0"));
    CHECK(answers(c, "map_set", "{\"fields\": {\"b\": \"two\", \"c\": null, \"a\": {\"x\": 1}}}",
                  "2"));
    CHECK(answers(c, "map_get", "{\"field\": \"a\"}", "{\"x\": 1}"));
    CHECK(answers(c, "map_get", "{\"field\": \"c\"}", "null"));
    CHECK(refused(c, "map_get", "{\"field\": \"z\"}", ASIDE_ERR_NOT_FOUND, "no_field"));
    CHECK(answers(c, "map_length", NULL, "3"));
    CHECK(answers(c, "map_all", NULL, "{\"a\": {\"x\": 1}, \"b\": \"two\", \"c\": null}"));
    CHECK(answers(c, "map_delete", "{\"field\": \"b\"}", "1"));
    CHECK(answers(c, "map_delete", "{\"field\": \"b\"}", "0"));
    CHECK(answers(c, "map_delete", "{\"fields\": [\"c\", \"zz\"]}", "1"));
    CHECK(holds(c, "{\"a\": {\"x\": 1}}"));
    CHECK(answers(c, "map_length", NULL, "1"));
    collection_free(c);
}

static void test_map_bad_arguments_change_nothing(void)
{
    collection *c = made(ASIDE_TYPE_MAP, "{\"a\": 1, \"s\": \"text\"}");
    CHECK(refused(c, "map_set", "{\"field\": \"a\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_set", "{\"value\": 1}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_set", "{\"field\": 5, \"value\": 1}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_set", "{\"fields\": [1, 2]}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_get", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_get", "{\"field\": 1}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_delete", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_delete", "{\"fields\": \"a\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_increment", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "map_increment", "{\"field\": \"a\", \"by\": \"2\"}", ASIDE_ERR_INVALID,
                  NULL));
    CHECK(holds(c, "{\"a\": 1, \"s\": \"text\"}"));
    collection_free(c);
}

static void test_map_increment_keeps_integers_and_adds_reals(void)
{
    collection *c = made(ASIDE_TYPE_MAP, "{\"s\": \"text\", \"l\": [1], \"big\": 9223372036854775807}");
    CHECK(answers(c, "map_increment", "{\"field\": \"n\"}", "1"));
    CHECK(answers(c, "map_increment", "{\"field\": \"n\", \"by\": 41}", "42"));
    CHECK(answers(c, "map_increment", "{\"field\": \"n\", \"by\": -50}", "-8"));
    CHECK(answers(c, "map_increment", "{\"field\": \"n\", \"by\": 0.5}", "-7.5"));
    CHECK(answers(c, "map_increment", "{\"field\": \"f\", \"by\": 0.25}", "0.25"));
    CHECK(answers(c, "map_get", "{\"field\": \"n\"}", "-7.5"));
    json_t *n = NULL;
    CHECK(run(c, "map_increment", "{\"field\": \"i\", \"by\": 2}", &n, NULL) == ASIDE_OK &&
          json_is_integer(n));
    json_decref(n);
    /* a field that holds no number is of the wrong type; an overflow is refused */
    CHECK(refused(c, "map_increment", "{\"field\": \"s\"}", ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(c, "map_increment", "{\"field\": \"l\", \"by\": 1}", ASIDE_ERR_WRONG_TYPE,
                  NULL));
    CHECK(refused(c, "map_increment", "{\"field\": \"big\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(answers(c, "map_get", "{\"field\": \"big\"}", "9223372036854775807"));
    collection_free(c);
}

/* ---- counters ----------------------------------------------------------------------------- */

static void test_counter_increments_and_decrements(void)
{
    collection *c = collection_create(ASIDE_TYPE_COUNTER);
    CHECK(answers(c, "counter_get", NULL, "0"));
    CHECK(answers(c, "counter_increment", NULL, "1"));
    CHECK(answers(c, "counter_increment", "{\"by\": 41}", "42"));
    CHECK(answers(c, "counter_decrement", NULL, "41"));
    CHECK(answers(c, "counter_decrement", "{\"by\": 50}", "-9"));
    CHECK(answers(c, "counter_increment", "{\"by\": -1}", "-10"));
    CHECK(answers(c, "counter_get", NULL, "-10"));
    CHECK(holds(c, "-10"));
    CHECK(refused(c, "counter_increment", "{\"by\": 1.5}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "counter_increment", "{\"by\": \"1\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "counter_decrement", "{\"by\": true}", ASIDE_ERR_INVALID, NULL));
    collection_free(c);
}

static void test_counter_overflow_is_refused_and_changes_nothing(void)
{
    collection *c = made(ASIDE_TYPE_COUNTER, "9223372036854775806");
    CHECK(answers(c, "counter_increment", NULL, "9223372036854775807"));
    CHECK(refused(c, "counter_increment", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "counter_decrement", "{\"by\": -1}", ASIDE_ERR_INVALID, NULL));
    CHECK(holds(c, "9223372036854775807"));
    collection_free(c);
    c = made(ASIDE_TYPE_COUNTER, "-9223372036854775807");
    CHECK(answers(c, "counter_decrement", NULL, "-9223372036854775808"));
    CHECK(refused(c, "counter_decrement", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "counter_increment", "{\"by\": -9223372036854775807}", ASIDE_ERR_INVALID,
                  NULL));
    CHECK(holds(c, "-9223372036854775808"));
    collection_free(c);
}

/* ---- JSON documents ----------------------------------------------------------------------- */

static void test_json_document_get_set_delete_and_merge_by_pointer(void)
{
    collection *c = collection_create(ASIDE_TYPE_JSON);
    CHECK(holds(c, "null"));
    CHECK(answers(c, "json_set", "{\"pointer\": \"\", \"value\": {\"a\": {\"b\": [1, 2]}}}",
                  "{\"result\": \"success\"}"));
    CHECK(answers(c, "json_get", "{\"pointer\": \"/a/b/1\"}", "2"));
    CHECK(answers(c, "json_get", NULL, "{\"a\": {\"b\": [1, 2]}}"));
    CHECK(answers(c, "json_set", "{\"pointer\": \"/a/b/-\", \"value\": 3}",
                  "{\"result\": \"success\"}"));
    CHECK(answers(c, "json_set", "{\"pointer\": \"/a/c\", \"value\": \"new\"}",
                  "{\"result\": \"success\"}"));
    CHECK(answers(c, "json_delete", "{\"pointer\": \"/a/b/0\"}", "{\"result\": \"success\"}"));
    CHECK(holds(c, "{\"a\": {\"b\": [2, 3], \"c\": \"new\"}}"));
    CHECK(answers(c, "json_merge", "{\"patch\": {\"a\": {\"c\": null, \"d\": true}, \"e\": 1}}",
                  "{\"a\": {\"b\": [2, 3], \"d\": true}, \"e\": 1}"));
    CHECK(holds(c, "{\"a\": {\"b\": [2, 3], \"d\": true}, \"e\": 1}"));
    /* a patch that is no object replaces the document */
    CHECK(answers(c, "json_merge", "{\"patch\": [1]}", "[1]"));
    CHECK(holds(c, "[1]"));
    collection_free(c);
}

static void test_json_document_errors_change_nothing(void)
{
    collection *c = made(ASIDE_TYPE_JSON, "{\"a\": {\"b\": [1, 2]}, \"s\": \"x\"}");
    CHECK(refused(c, "json_get", "{\"pointer\": \"/zz\"}", ASIDE_ERR_NOT_FOUND,
                  "no_such_pointer"));
    CHECK(refused(c, "json_get", "{\"pointer\": \"/a/b/2\"}", ASIDE_ERR_NOT_FOUND,
                  "no_such_pointer"));
    CHECK(refused(c, "json_get", "{\"pointer\": \"a\"}", ASIDE_ERR_INVALID, "bad_pointer"));
    CHECK(refused(c, "json_get", "{\"pointer\": \"/a/~2\"}", ASIDE_ERR_INVALID, "bad_pointer"));
    CHECK(refused(c, "json_get", "{\"pointer\": 5}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "json_set", "{\"pointer\": \"/q/r\", \"value\": 1}", ASIDE_ERR_NOT_FOUND,
                  "no_such_pointer"));
    CHECK(refused(c, "json_set", "{\"pointer\": \"/s/t\", \"value\": 1}", ASIDE_ERR_NOT_FOUND,
                  NULL));
    CHECK(refused(c, "json_set", "{\"pointer\": \"/a/b/5\", \"value\": 1}", ASIDE_ERR_NOT_FOUND,
                  NULL));
    CHECK(refused(c, "json_set", "{\"pointer\": \"/a\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "json_delete", "{\"pointer\": \"/a/x\"}", ASIDE_ERR_NOT_FOUND,
                  "no_such_pointer"));
    CHECK(refused(c, "json_delete", "{\"pointer\": \"\"}", ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "json_delete", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(c, "json_merge", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(holds(c, "{\"a\": {\"b\": [1, 2]}, \"s\": \"x\"}"));
    collection_free(c);
}

/* ---- what every type refuses -------------------------------------------------------------- */

static void test_an_operation_for_another_type_is_wrong_type_and_changes_nothing(void)
{
    collection *list = made(ASIDE_TYPE_LIST, "[1, 2]");
    collection *set = made(ASIDE_TYPE_SET, "[1, 2]");
    collection *map = made(ASIDE_TYPE_MAP, "{\"a\": 1}");
    collection *counter = made(ASIDE_TYPE_COUNTER, "7");
    collection *doc = made(ASIDE_TYPE_JSON, "{\"a\": 1}");
    CHECK(refused(list, "set_add", "{\"value\": 3}", ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(list, "map_set", "{\"field\": \"a\", \"value\": 3}", ASIDE_ERR_WRONG_TYPE,
                  NULL));
    CHECK(refused(list, "json_set", "{\"pointer\": \"/0\", \"value\": 3}",
                  ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(set, "list_push", "{\"value\": 3}", ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(set, "list_pop", NULL, ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(map, "counter_increment", NULL, ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(map, "set_remove", "{\"value\": \"a\"}", ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(counter, "list_push", "{\"value\": 1}", ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(counter, "map_increment", "{\"field\": \"a\"}", ASIDE_ERR_WRONG_TYPE, NULL));
    CHECK(refused(doc, "map_set", "{\"field\": \"b\", \"value\": 2}", ASIDE_ERR_WRONG_TYPE,
                  NULL));
    CHECK(refused(doc, "list_range", NULL, ASIDE_ERR_WRONG_TYPE, NULL));
    /* an unknown operation is a bad argument, whatever the type */
    CHECK(refused(list, "list_shuffle", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(refused(map, "", NULL, ASIDE_ERR_INVALID, NULL));
    CHECK(holds(list, "[1, 2]") && holds(set, "[1, 2]") && holds(map, "{\"a\": 1}") &&
          holds(counter, "7") && holds(doc, "{\"a\": 1}"));
    collection_free(list);
    collection_free(set);
    collection_free(map);
    collection_free(counter);
    collection_free(doc);
}

static void test_operation_table_names_each_operation_with_its_type(void)
{
    aside_value_type type = ASIDE_TYPE_BYTES;
    bool writes = false;
    CHECK(collection_op_info("list_push", &type, &writes) && type == ASIDE_TYPE_LIST && writes);
    CHECK(collection_op_info("list_range", &type, &writes) && type == ASIDE_TYPE_LIST &&
          !writes);
    CHECK(collection_op_info("set_members", &type, &writes) && type == ASIDE_TYPE_SET &&
          !writes);
    CHECK(collection_op_info("map_increment", &type, &writes) && type == ASIDE_TYPE_MAP &&
          writes);
    CHECK(collection_op_info("counter_get", &type, &writes) && type == ASIDE_TYPE_COUNTER &&
          !writes);
    CHECK(collection_op_info("json_merge", &type, &writes) && type == ASIDE_TYPE_JSON && writes);
    CHECK(!collection_op_info("list_shuffle", &type, &writes));
    size_t count = 0;
    while (collection_op_name(count) && count < 1000)
        count++;
    CHECK(count == 27); /* 24 on one collection, 3 over several sets */
    size_t algebra = 0;
    for (size_t i = 0; i < count; i++) {
        bool several = collection_is_set_algebra(collection_op_name(i));
        algebra += several;
        CHECK(several != collection_op_info(collection_op_name(i), &type, &writes));
    }
    CHECK(algebra == 3 && collection_is_set_algebra("set_union") &&
          !collection_is_set_algebra("set_add") && !collection_is_set_algebra(NULL));
}

/* ---- building from JSON, the memory figure ------------------------------------------------ */

static void test_from_json_checks_the_shape_of_each_type(void)
{
    static const struct {
        aside_value_type type;
        const char      *content;
        bool             ok;
    } cases[] = {
        {ASIDE_TYPE_LIST, "[1, \"a\", null]", true},  {ASIDE_TYPE_LIST, "{}", false},
        {ASIDE_TYPE_LIST, "\"[1]\"", false},          {ASIDE_TYPE_SET, "[1, 1, 2]", true},
        {ASIDE_TYPE_SET, "{\"a\": 1}", false},        {ASIDE_TYPE_MAP, "{\"a\": [1]}", true},
        {ASIDE_TYPE_MAP, "[[\"a\", 1]]", false},      {ASIDE_TYPE_MAP, "null", false},
        {ASIDE_TYPE_COUNTER, "-12", true},            {ASIDE_TYPE_COUNTER, "1.5", false},
        {ASIDE_TYPE_COUNTER, "\"12\"", false},        {ASIDE_TYPE_COUNTER, "[12]", false},
        {ASIDE_TYPE_JSON, "\"any\"", true},           {ASIDE_TYPE_JSON, "null", true},
        {ASIDE_TYPE_JSON, "{\"a\": [1]}", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json_of(cases[i].content);
        collection *c = NULL;
        aside_error err;
        aside_status st = collection_from_json(cases[i].type, v, &c, &err);
        CHECK(cases[i].ok ? st == ASIDE_OK && c && collection_type(c) == cases[i].type
                          : st == ASIDE_ERR_BAD_VALUE && c == NULL);
        if (st != (cases[i].ok ? ASIDE_OK : ASIDE_ERR_BAD_VALUE))
            fprintf(stderr, "  from_json(%s, %s): %s\n", aside_value_type_name(cases[i].type),
                    cases[i].content, aside_status_name(st));
        collection_free(c);
        json_decref(v);
    }
    /* a set from an array with repeats keeps each member once; the source is copied */
    json_t *v = json_of("[3, 1, 3, 2]");
    collection *c = NULL;
    CHECK(collection_from_json(ASIDE_TYPE_SET, v, &c, NULL) == ASIDE_OK);
    json_array_append_new(v, json_integer(9));
    CHECK(holds(c, "[1, 2, 3]"));
    collection_free(c);
    json_decref(v);
    /* a document shares the caller's tree (one tree, not two, of a large document) */
    v = json_of("{\"a\": {\"b\": 1}}");
    CHECK(collection_from_json(ASIDE_TYPE_JSON, v, &c, NULL) == ASIDE_OK);
    CHECK(holds(c, "{\"a\": {\"b\": 1}}"));
    json_t *root = collection_json(c);
    CHECK(root == v);
    json_decref(root);
    collection_free(c);
    json_decref(v);
}

static void test_dump_is_compact_json_text_of_the_content(void)
{
    collection *c = made(ASIDE_TYPE_SET, "[\"b\", \"a\"]");
    size_t len = 0;
    char *text = collection_dump(c, &len);
    CHECK(text && len == strlen(text) && strcmp(text, "[\"a\",\"b\"]") == 0);
    free(text);
    collection_free(c);
    c = made(ASIDE_TYPE_COUNTER, "5");
    text = collection_dump(c, &len);
    CHECK(text && strcmp(text, "5") == 0 && len == 1);
    free(text);
    collection_free(c);
}

static void test_memory_figure_grows_with_pushes_and_shrinks_with_pops(void)
{
    collection *c = collection_create(ASIDE_TYPE_LIST);
    uint64_t empty = collection_memory_bytes(c);
    CHECK(empty > 0);
    uint64_t last = empty;
    int grew = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(run(c, "list_push", "{\"value\": \"0123456789012345678901234567890123456789\"}",
                  NULL, NULL) == ASIDE_OK);
        grew += collection_memory_bytes(c) > last;
        last = collection_memory_bytes(c);
    }
    CHECK(grew == 100);
    CHECK(last >= empty + 100 * 40); /* at least the elements' text */
    int shrank = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(run(c, "list_pop", i % 2 ? NULL : "{\"end\": \"front\"}", NULL, NULL) == ASIDE_OK);
        shrank += collection_memory_bytes(c) < last;
        last = collection_memory_bytes(c);
    }
    CHECK(shrank == 100);
    CHECK(last == empty);
    /* a trim and a pop with a count give back what their elements took */
    CHECK(run(c, "list_push", "{\"values\": [1, 2, 3, 4, 5, 6]}", NULL, NULL) == ASIDE_OK);
    CHECK(run(c, "list_trim", "{\"start\": 1, \"stop\": 4}", NULL, NULL) == ASIDE_OK);
    CHECK(run(c, "list_pop", "{\"count\": 10}", NULL, NULL) == ASIDE_OK);
    CHECK(collection_memory_bytes(c) == empty);
    collection_free(c);
}

static void test_memory_figure_follows_sets_maps_and_documents(void)
{
    collection *set = collection_create(ASIDE_TYPE_SET);
    uint64_t empty = collection_memory_bytes(set);
    CHECK(run(set, "set_add", "{\"values\": [\"aaaaaaaaaaaaaaaaaaaa\", 2, 3]}", NULL, NULL) ==
          ASIDE_OK);
    CHECK(collection_memory_bytes(set) > empty + 20);
    CHECK(run(set, "set_add", "{\"value\": 2}", NULL, NULL) == ASIDE_OK);
    uint64_t full = collection_memory_bytes(set);
    CHECK(run(set, "set_add", "{\"value\": 3}", NULL, NULL) == ASIDE_OK);
    CHECK(collection_memory_bytes(set) == full); /* a member already there takes nothing more */
    CHECK(run(set, "set_remove", "{\"values\": [\"aaaaaaaaaaaaaaaaaaaa\", 2, 3]}", NULL, NULL) ==
          ASIDE_OK);
    CHECK(collection_memory_bytes(set) == empty);
    collection_free(set);

    collection *map = collection_create(ASIDE_TYPE_MAP);
    empty = collection_memory_bytes(map);
    CHECK(run(map, "map_set", "{\"field\": \"f\", \"value\": \"0123456789\"}", NULL, NULL) ==
          ASIDE_OK);
    uint64_t one = collection_memory_bytes(map);
    CHECK(one > empty + 10);
    /* replacing a value with a longer one grows, with a shorter one shrinks */
    CHECK(run(map, "map_set", "{\"field\": \"f\", \"value\": \"01234567890123456789\"}", NULL,
              NULL) == ASIDE_OK);
    CHECK(collection_memory_bytes(map) == one + 10);
    CHECK(run(map, "map_set", "{\"field\": \"f\", \"value\": \"0123456789\"}", NULL, NULL) ==
          ASIDE_OK);
    CHECK(collection_memory_bytes(map) == one);
    CHECK(run(map, "map_delete", "{\"field\": \"f\"}", NULL, NULL) == ASIDE_OK);
    CHECK(collection_memory_bytes(map) == empty);
    collection_free(map);

    collection *doc = collection_create(ASIDE_TYPE_JSON);
    empty = collection_memory_bytes(doc);
    CHECK(run(doc, "json_set", "{\"pointer\": \"\", \"value\": {\"a\": \"0123456789012345678901234567890123456789\"}}",
              NULL, NULL) == ASIDE_OK);
    uint64_t big = collection_memory_bytes(doc);
    CHECK(big > empty + 40);
    CHECK(run(doc, "json_delete", "{\"pointer\": \"/a\"}", NULL, NULL) == ASIDE_OK);
    CHECK(collection_memory_bytes(doc) < big - 40);
    collection_free(doc);
}

/* A map built from JSON and one built by operations to the same content take the same figure,
 * and emptying either gives back the figure of an empty map. */
static void test_memory_figure_does_not_depend_on_how_a_map_was_built(void)
{
    collection *built = collection_create(ASIDE_TYPE_MAP);
    CHECK(run(built, "map_set", "{\"fields\": {\"a\": 1, \"b\": \"two\"}}", NULL, NULL) ==
          ASIDE_OK);
    collection *loaded = made(ASIDE_TYPE_MAP, "{\"a\": 1, \"b\": \"two\"}");
    CHECK(collection_memory_bytes(built) == collection_memory_bytes(loaded));
    CHECK(run(loaded, "map_delete", "{\"fields\": [\"a\", \"b\"]}", NULL, NULL) == ASIDE_OK);
    collection *empty = collection_create(ASIDE_TYPE_MAP);
    CHECK(collection_memory_bytes(loaded) == collection_memory_bytes(empty));
    collection_free(built);
    collection_free(loaded);
    collection_free(empty);
}

int main(void)
{
    RUN(test_list_push_at_both_ends_answers_the_new_length);
    RUN(test_list_pop_takes_from_either_end_with_and_without_count);
    RUN(test_list_pop_count_must_be_a_positive_integer);
    RUN(test_list_range_has_python_slice_semantics);
    RUN(test_list_trim_keeps_the_python_slice);
    RUN(test_list_index_counts_negatives_from_the_end);
    RUN(test_list_push_with_bad_arguments_changes_nothing);
    RUN(test_set_add_and_remove_count_what_changed);
    RUN(test_set_members_are_sorted_by_their_json_text);
    RUN(test_set_members_are_equal_whatever_the_order_of_their_keys);
    RUN(test_set_algebra_unions_intersects_and_subtracts);
    RUN(test_map_set_get_delete_all_and_length);
    RUN(test_map_bad_arguments_change_nothing);
    RUN(test_map_increment_keeps_integers_and_adds_reals);
    RUN(test_counter_increments_and_decrements);
    RUN(test_counter_overflow_is_refused_and_changes_nothing);
    RUN(test_json_document_get_set_delete_and_merge_by_pointer);
    RUN(test_json_document_errors_change_nothing);
    RUN(test_an_operation_for_another_type_is_wrong_type_and_changes_nothing);
    RUN(test_operation_table_names_each_operation_with_its_type);
    RUN(test_from_json_checks_the_shape_of_each_type);
    RUN(test_dump_is_compact_json_text_of_the_content);
    RUN(test_memory_figure_grows_with_pushes_and_shrinks_with_pops);
    RUN(test_memory_figure_follows_sets_maps_and_documents);
    RUN(test_memory_figure_does_not_depend_on_how_a_map_was_built);
    return CHECK_DONE();
}
