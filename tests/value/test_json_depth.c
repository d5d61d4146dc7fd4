/* test_json_depth.c -- the depth limit on JSON (value/json.c, collection.c): measuring depth
 * without recursion, parsing text from outside, what operations may add, and the stack the
 * recursive code of jansson and ours needs at the deepest value the cache may hold. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "value/value.h"

/* Stack of the thread that walks the deepest value. jansson's serialiser takes about 350
 * bytes of stack a level (so 8 MiB overflowed near 27,000 levels), VALUE_JSON_MAX_DEPTH about
 * 700 KiB: this is far below glibc's default thread stack (RLIMIT_STACK, 8 MiB on most
 * systems), which the server's threads use. AddressSanitizer's frames are larger. */
#ifdef __SANITIZE_ADDRESS__
enum { SMALL_STACK_BYTES = 2 << 20 };
#else
enum { SMALL_STACK_BYTES = 1 << 20 };
#endif

/* depth arrays inside one another, built without the parser: [[...[]...]] */
static json_t *nested_arrays(size_t depth)
{
    json_t *v = json_array();
    for (size_t i = 1; v && i < depth; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    return v;
}

/* depth objects {"a": {"a": ... 1}} */
static json_t *nested_objects(size_t depth)
{
    json_t *v = json_integer(1);
    for (size_t i = 0; i < depth; i++) {
        json_t *outer = json_object();
        json_object_set_new(outer, "a", v);
        v = outer;
    }
    return v;
}

static char *arrays_text(size_t depth)
{
    char *text = malloc(2 * depth + 1);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    return text;
}

static bool is_too_deep(aside_status st, const aside_error *err)
{
    return st == ASIDE_ERR_INVALID && strcmp(err->code, "too_deep") == 0;
}

static void test_depth_counts_arrays_and_objects_on_the_deepest_path(void)
{
    aside_error err;
    json_t *scalar = json_integer(1), *flat = json_loads("[1, {}, \"x\"]", 0, NULL);
    json_t *mixed = json_loads("{\"a\": [1, {\"b\": [[]]}], \"c\": {}}", 0, NULL);
    CHECK(value_json_check_depth(scalar, 0, 0, &err) == ASIDE_OK);
    CHECK(is_too_deep(value_json_check_depth(scalar, 1, 0, &err), &err));
    CHECK(value_json_check_depth(flat, 0, 2, &err) == ASIDE_OK);
    CHECK(is_too_deep(value_json_check_depth(flat, 0, 1, &err), &err));
    CHECK(value_json_check_depth(mixed, 0, 5, &err) == ASIDE_OK);
    CHECK(is_too_deep(value_json_check_depth(mixed, 0, 4, &err), &err));
    CHECK(value_json_check_depth(mixed, 3, 8, &err) == ASIDE_OK);
    CHECK(is_too_deep(value_json_check_depth(mixed, 4, 8, &err), &err));
    CHECK(strstr(err.message, "8 levels") != NULL);
    CHECK(value_json_check_depth(NULL, 0, 1, &err) == ASIDE_OK); /* no value: nothing nests */
    json_decref(scalar);
    json_decref(flat);
    json_decref(mixed);
}

static void test_parse_refuses_past_the_limit_and_past_janssons_own(void)
{
    aside_error err;
    json_t *v = NULL;
    char *at = arrays_text(VALUE_JSON_DEFAULT_DEPTH), *past = arrays_text(VALUE_JSON_DEFAULT_DEPTH + 1);
    char *parser_past = arrays_text(JSON_PARSER_MAX_DEPTH + 1);
    CHECK(value_json_parse(at, strlen(at), 0, VALUE_JSON_DEFAULT_DEPTH, &v, &err) == ASIDE_OK);
    json_decref(v);
    CHECK(is_too_deep(value_json_parse(past, strlen(past), 0, VALUE_JSON_DEFAULT_DEPTH, &v, &err),
                      &err) && !v);
    CHECK(is_too_deep(value_json_parse(parser_past, strlen(parser_past), 0,
                                       VALUE_JSON_DEFAULT_DEPTH, &v, &err), &err) && !v);
    CHECK(strstr(err.message, "1000") != NULL);
    CHECK(value_json_parse("[1,", 3, 0, 10, &v, &err) == ASIDE_ERR_BAD_VALUE && !v);
    CHECK(value_kind_json.check(NULL, past, strlen(past), &err) == ASIDE_ERR_INVALID);
    value_context ctx = {.json_max_depth = 2000};
    CHECK(value_kind_json.check(&ctx, past, strlen(past), &err) == ASIDE_OK);
    CHECK(value_kind_list.check(NULL, past, strlen(past), &err) == ASIDE_ERR_INVALID);
    free(at);
    free(past);
    free(parser_past);
}

/* Run op on c with args (text) under limit; its status. */
static aside_status apply(collection *c, const char *op, json_t *args, size_t limit,
                          aside_error *err)
{
    json_t *result = NULL;
    aside_status st = collection_apply(c, op, args, limit, &result, err);
    json_decref(result);
    json_decref(args);
    return st;
}

static void test_operations_refuse_what_would_nest_too_deep_and_change_nothing(void)
{
    aside_error err;
    collection *list = collection_create(ASIDE_TYPE_LIST);
    CHECK(apply(list, "list_push", json_pack("{s:o}", "value", nested_arrays(9)), 10, &err) ==
          ASIDE_OK);
    CHECK(is_too_deep(apply(list, "list_push", json_pack("{s:o}", "value", nested_arrays(10)), 10,
                            &err), &err));
    CHECK(is_too_deep(apply(list, "list_push", json_pack("{s:[i,o]}", "values", 1,
                                                         nested_arrays(10)), 10, &err), &err));
    json_t *now = collection_json(list);
    CHECK(json_array_size(now) == 1);
    json_decref(now);
    collection *doc = collection_create(ASIDE_TYPE_JSON);
    CHECK(apply(doc, "json_set", json_pack("{s:s, s:o}", "pointer", "", "value",
                                           nested_objects(2)), 10, &err) == ASIDE_OK);
    CHECK(apply(doc, "json_set", json_pack("{s:s, s:o}", "pointer", "/a/a", "value",
                                           nested_arrays(8)), 10, &err) == ASIDE_OK);
    CHECK(is_too_deep(apply(doc, "json_set", json_pack("{s:s, s:o}", "pointer", "/a/b", "value",
                                                       nested_arrays(9)), 10, &err), &err));
    CHECK(is_too_deep(apply(doc, "json_merge", json_pack("{s:o}", "patch", nested_objects(11)),
                            10, &err), &err));
    CHECK(apply(doc, "json_merge", json_pack("{s:o}", "patch", nested_objects(10)), 10, &err) ==
          ASIDE_OK);
    collection_free(list);
    collection_free(doc);
}

static void test_arithmetic_past_its_range_is_overflow_and_changes_nothing(void)
{
    aside_error err;
    collection *map = collection_create(ASIDE_TYPE_MAP);
    CHECK(apply(map, "map_increment", json_pack("{s:s, s:f}", "field", "x", "by", 1.7e308), 10,
                &err) == ASIDE_OK);
    CHECK(apply(map, "map_increment", json_pack("{s:s, s:f}", "field", "x", "by", 1.7e308), 10,
                &err) == ASIDE_ERR_INVALID && strcmp(err.code, "overflow") == 0);
    json_t *now = collection_json(map);
    CHECK(json_real_value(json_object_get(now, "x")) == 1.7e308);
    json_decref(now);
    collection *counter = collection_create(ASIDE_TYPE_COUNTER);
    CHECK(apply(counter, "counter_decrement", json_pack("{s:I}", "by", (json_int_t)INT64_MAX), 10,
                &err) == ASIDE_OK);
    CHECK(apply(counter, "counter_decrement", json_pack("{s:i}", "by", 2), 10, &err) ==
              ASIDE_ERR_INVALID && strcmp(err.code, "overflow") == 0);
    collection_free(map);
    collection_free(counter);
}

/* ---- the stack at the deepest value ------------------------------------------------------------ */

/* What the cache does with a value, each recursive in jansson or here: parse its text, dump,
 * copy, compare, merge, make a collection of it, free. */
static void *walk_deepest(void *arg)
{
    bool *ok = arg;
    size_t depth = VALUE_JSON_MAX_DEPTH + VALUE_JSON_RECORD_LEVELS;
    json_t *arrays = nested_arrays(depth), *objects = nested_objects(depth);
    char *text = json_dumps(arrays, JSON_COMPACT);
    json_t *parsed = text ? json_loads(text, 0, NULL) : NULL;
    json_t *copy = json_deep_copy(objects);
    bool equal = copy && json_equal(copy, objects);
    json_t *merged = json_merge_patch(json_object(), objects);
    json_t *top = nested_arrays(VALUE_JSON_MAX_DEPTH);
    collection *c = NULL;
    aside_status st = collection_from_json(ASIDE_TYPE_JSON, top, &c, NULL);
    size_t len = 0;
    char *dumped = c ? collection_dump(c, &len) : NULL;
    *ok = text && parsed && equal && merged && st == ASIDE_OK && dumped;
    free(text);
    free(dumped);
    collection_free(c);
    json_decref(top);
    json_decref(merged);
    json_decref(copy);
    json_decref(parsed);
    json_decref(objects);
    json_decref(arrays);
    return NULL;
}

static void test_the_deepest_value_is_walked_on_a_small_stack(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SMALL_STACK_BYTES);
    pthread_t thread;
    bool ok = false;
    CHECK(pthread_create(&thread, &attr, walk_deepest, &ok) == 0);
    pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    CHECK(ok);
}

/* A deep value is measured without recursion: a 64 KiB stack is enough for a million levels. */
static void *measure_very_deep(void *arg)
{
    bool *ok = arg;
    json_t *v = nested_arrays(1000000);
    aside_error err;
    *ok = is_too_deep(value_json_check_depth(v, 0, VALUE_JSON_MAX_DEPTH, &err), &err);
    /* freeing it is recursive in jansson: unwind it by hand, from the outside in */
    while (json_array_size(v) > 0) {
        json_t *inner = json_incref(json_array_get(v, 0));
        json_decref(v);
        v = inner;
    }
    json_decref(v);
    return NULL;
}

static void test_depth_is_measured_without_recursion(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    pthread_t thread;
    bool ok = false;
    CHECK(pthread_create(&thread, &attr, measure_very_deep, &ok) == 0);
    pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    CHECK(ok);
}

int main(void)
{
    RUN(test_depth_counts_arrays_and_objects_on_the_deepest_path);
    RUN(test_parse_refuses_past_the_limit_and_past_janssons_own);
    RUN(test_operations_refuse_what_would_nest_too_deep_and_change_nothing);
    RUN(test_arithmetic_past_its_range_is_overflow_and_changes_nothing);
    RUN(test_the_deepest_value_is_walked_on_a_small_stack);
    RUN(test_depth_is_measured_without_recursion);
    return CHECK_DONE();
}
