/* test_json_pointer.c -- JSON Pointer (RFC 6901): the RFC's own examples, escapes, syntax
 * errors, get/set/delete on objects and arrays, and documents left unchanged by failed edits;
 * JSON merge patch: every test case of RFC 7386 appendix A. */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "value/value.h"

/* A document from JSON text (any JSON value). */
static json_t *doc_of(const char *text)
{
    json_t *doc = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!doc)
        fprintf(stderr, "test document does not parse: %s\n", text);
    return doc;
}

/* True if doc equals the JSON text (a NULL doc equals nothing). */
static bool doc_is(const json_t *doc, const char *text)
{
    json_t *want = doc_of(text);
    bool same = doc && want && json_equal(doc, want);
    json_decref(want);
    return same;
}

static bool get_is(json_t *doc, const char *pointer, const char *want)
{
    json_t *got = NULL;
    aside_error err;
    return json_pointer_get(doc, pointer, &got, &err) == ASIDE_OK && doc_is(got, want);
}

static aside_status get_status(json_t *doc, const char *pointer)
{
    json_t *got = NULL;
    aside_error err;
    return json_pointer_get(doc, pointer, &got, &err);
}

static aside_status set_text(json_t **doc, const char *pointer, const char *value)
{
    aside_error err;
    return json_pointer_set(doc, pointer, doc_of(value), &err);
}

static aside_status delete_at(json_t **doc, const char *pointer)
{
    aside_error err;
    return json_pointer_delete(doc, pointer, &err);
}

static const char RFC6901_DOC[] =
    "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4,"
    " \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}";

static void test_rfc6901_section5_examples_resolve(void)
{
    json_t *doc = doc_of(RFC6901_DOC);
    CHECK(get_is(doc, "", RFC6901_DOC));
    CHECK(get_is(doc, "/foo", "[\"bar\", \"baz\"]"));
    CHECK(get_is(doc, "/foo/0", "\"bar\""));
    CHECK(get_is(doc, "/", "0"));
    CHECK(get_is(doc, "/a~1b", "1"));
    CHECK(get_is(doc, "/c%d", "2"));
    CHECK(get_is(doc, "/e^f", "3"));
    CHECK(get_is(doc, "/g|h", "4"));
    CHECK(get_is(doc, "/i\\j", "5"));
    CHECK(get_is(doc, "/k\"l", "6"));
    CHECK(get_is(doc, "/ ", "7"));
    CHECK(get_is(doc, "/m~0n", "8"));
    json_decref(doc);
}

static void test_escapes_unescape_in_order(void)
{
    /* "~01" is "~1" (the "~0" is read first), never "/" */
    json_t *doc = doc_of("{\"~1\": \"tilde-one\", \"/\": \"slash\", \"~\": {\"/~\": true}}");
    CHECK(get_is(doc, "/~01", "\"tilde-one\""));
    CHECK(get_is(doc, "/~1", "\"slash\""));
    CHECK(get_is(doc, "/~0/~1~0", "true"));
    json_pointer *p = NULL;
    aside_error err;
    CHECK(json_pointer_parse("/a~1b/~0/", 9, &p, &err) == ASIDE_OK);
    size_t len = 0;
    CHECK(p && json_pointer_count(p) == 3);
    CHECK(p && strcmp(json_pointer_token(p, 0, &len), "a/b") == 0 && len == 3);
    CHECK(p && strcmp(json_pointer_token(p, 1, &len), "~") == 0 && len == 1);
    CHECK(p && strcmp(json_pointer_token(p, 2, &len), "") == 0 && len == 0);
    json_pointer_free(p);
    CHECK(json_pointer_parse("", 0, &p, &err) == ASIDE_OK && json_pointer_count(p) == 0);
    json_pointer_free(p);
    json_decref(doc);
}

static void test_malformed_pointers_are_invalid_with_a_reason(void)
{
    static const char *bad[] = {"foo", "a/b", "/~", "/a~2", "/~a", "/ok/~", "/x~~0", " /a"};
    json_t *doc = doc_of("{\"foo\": 1}");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *got = doc;
        aside_error err = {0};
        CHECK(json_pointer_get(doc, bad[i], &got, &err) == ASIDE_ERR_INVALID);
        CHECK(got == NULL);
        CHECK(strncmp(err.message, "bad JSON pointer: ", 18) == 0);
    }
    static char sentinel;
    json_pointer *p = (json_pointer *)&sentinel; /* parse must clear it on failure */
    aside_error err;
    CHECK(json_pointer_parse("/a\0b", 4, &p, &err) == ASIDE_ERR_INVALID && p == NULL);
    CHECK(json_pointer_parse("/\xff", 2, &p, &err) == ASIDE_ERR_INVALID && p == NULL);
    CHECK(json_pointer_parse("/\xc3\xa9", 3, &p, &err) == ASIDE_OK); /* é is fine */
    json_pointer_free(p);
    json_decref(doc);
}

static void test_missing_members_and_elements_are_not_found(void)
{
    json_t *doc = doc_of("{\"a\": {\"b\": [10, 20]}, \"s\": \"text\", \"n\": null}");
    CHECK(get_status(doc, "/x") == ASIDE_ERR_NOT_FOUND);
    CHECK(get_status(doc, "/a/x") == ASIDE_ERR_NOT_FOUND);
    CHECK(get_status(doc, "/a/b/2") == ASIDE_ERR_NOT_FOUND);
    CHECK(get_status(doc, "/a/b/99999999999999999999999") == ASIDE_ERR_NOT_FOUND);
    CHECK(get_status(doc, "/a/b/-") == ASIDE_ERR_NOT_FOUND); /* "-" names no element to read */
    CHECK(get_status(doc, "/x/y") == ASIDE_ERR_NOT_FOUND);
    CHECK(get_is(doc, "/a/b/1", "20"));
    CHECK(get_is(doc, "/n", "null"));
    json_t *got = NULL;
    aside_error err;
    CHECK(json_pointer_get(doc, "/s/0", &got, &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "cannot descend into a string") != NULL);
    CHECK(json_pointer_get(doc, "/a/x", &got, &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "/a/x") != NULL);
    CHECK(json_pointer_get(NULL, "/a", &got, &err) == ASIDE_ERR_NOT_FOUND);
    json_decref(doc);
}

static void test_array_indices_are_digits_without_leading_zeros(void)
{
    json_t *doc = doc_of("{\"a\": [\"x\", \"y\"], \"o\": {\"01\": \"member\"}}");
    CHECK(get_is(doc, "/a/0", "\"x\""));
    CHECK(get_status(doc, "/a/00") == ASIDE_ERR_INVALID);
    CHECK(get_status(doc, "/a/01") == ASIDE_ERR_INVALID);
    CHECK(get_status(doc, "/a/+1") == ASIDE_ERR_INVALID);
    CHECK(get_status(doc, "/a/-1") == ASIDE_ERR_INVALID);
    CHECK(get_status(doc, "/a/1.0") == ASIDE_ERR_INVALID);
    CHECK(get_status(doc, "/a/") == ASIDE_ERR_INVALID);
    CHECK(get_status(doc, "/a/x") == ASIDE_ERR_INVALID);
    CHECK(get_is(doc, "/o/01", "\"member\"")); /* in an object, "01" is just a name */
    json_t *before = json_deep_copy(doc);
    CHECK(set_text(&doc, "/a/01", "1") == ASIDE_ERR_INVALID);
    CHECK(delete_at(&doc, "/a/01") == ASIDE_ERR_INVALID);
    CHECK(json_equal(doc, before));
    json_decref(before);
    json_decref(doc);
}

static void test_set_adds_and_replaces_object_members(void)
{
    json_t *doc = doc_of("{\"a\": {\"b\": 1}}");
    CHECK(set_text(&doc, "/a/b", "2") == ASIDE_OK);
    CHECK(set_text(&doc, "/a/c", "[true]") == ASIDE_OK);
    CHECK(set_text(&doc, "/new", "{}") == ASIDE_OK);
    CHECK(set_text(&doc, "/new/x~1y", "\"slash\"") == ASIDE_OK);
    CHECK(set_text(&doc, "/", "\"empty name\"") == ASIDE_OK);
    CHECK(doc_is(doc, "{\"a\": {\"b\": 2, \"c\": [true]}, \"new\": {\"x/y\": \"slash\"},"
                      " \"\": \"empty name\"}"));
    json_decref(doc);
}

static void test_set_replaces_elements_and_appends_at_the_end_or_dash(void)
{
    json_t *doc = doc_of("[1, 2]");
    CHECK(set_text(&doc, "/0", "\"one\"") == ASIDE_OK);
    CHECK(set_text(&doc, "/2", "3") == ASIDE_OK);  /* index == size appends */
    CHECK(set_text(&doc, "/-", "4") == ASIDE_OK);  /* so does "-" */
    CHECK(set_text(&doc, "/9", "9") == ASIDE_ERR_NOT_FOUND);
    CHECK(doc_is(doc, "[\"one\", 2, 3, 4]"));
    json_decref(doc);
}

static void test_set_of_the_empty_pointer_replaces_or_creates_the_document(void)
{
    json_t *doc = doc_of("{\"a\": 1}");
    CHECK(set_text(&doc, "", "[1, 2, 3]") == ASIDE_OK);
    CHECK(doc_is(doc, "[1, 2, 3]"));
    json_decref(doc);
    json_t *none = NULL;
    CHECK(set_text(&none, "", "\"created\"") == ASIDE_OK);
    CHECK(doc_is(none, "\"created\""));
    json_decref(none);
    json_t *still_none = NULL;
    CHECK(set_text(&still_none, "/a", "1") == ASIDE_ERR_NOT_FOUND && still_none == NULL);
}

static void test_failed_sets_leave_the_document_unchanged(void)
{
    static const char *fails[] = {"/missing/x", "/s/x", "/n/x", "/arr/5", "/arr/x/y",
                                  "/arr/01", "/~2", "no-slash"};
    json_t *doc = doc_of("{\"s\": \"text\", \"n\": 5, \"arr\": [{\"k\": 1}]}");
    json_t *before = json_deep_copy(doc);
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        aside_error err = {0};
        json_t *value = json_string("v"); /* taken over even when the set fails */
        CHECK(json_pointer_set(&doc, fails[i], value, &err) != ASIDE_OK);
        CHECK(err.message[0] != '\0');
        CHECK(json_equal(doc, before));
    }
    aside_error err;
    CHECK(json_pointer_set(&doc, "/s/x", json_true(), &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "a string") != NULL);
    json_decref(before);
    json_decref(doc);
}

static void test_delete_removes_members_and_elements(void)
{
    json_t *doc = doc_of("{\"a\": [1, 2, 3], \"b\": {\"c\": 1, \"d\": 2}, \"e~\": 0}");
    CHECK(delete_at(&doc, "/a/1") == ASIDE_OK);
    CHECK(delete_at(&doc, "/b/c") == ASIDE_OK);
    CHECK(delete_at(&doc, "/e~0") == ASIDE_OK);
    CHECK(doc_is(doc, "{\"a\": [1, 3], \"b\": {\"d\": 2}}"));
    json_decref(doc);
}

static void test_failed_deletes_leave_the_document_unchanged(void)
{
    json_t *doc = doc_of("{\"a\": [1, 2], \"s\": \"t\"}");
    json_t *before = json_deep_copy(doc);
    CHECK(delete_at(&doc, "/x") == ASIDE_ERR_NOT_FOUND);
    CHECK(delete_at(&doc, "/a/2") == ASIDE_ERR_NOT_FOUND);
    CHECK(delete_at(&doc, "/a/-") == ASIDE_ERR_NOT_FOUND);
    CHECK(delete_at(&doc, "/x/y") == ASIDE_ERR_NOT_FOUND);
    CHECK(delete_at(&doc, "/s/0") == ASIDE_ERR_NOT_FOUND);
    CHECK(delete_at(&doc, "/a/~") == ASIDE_ERR_INVALID);
    aside_error err;
    CHECK(json_pointer_delete(&doc, "", &err) == ASIDE_ERR_INVALID);
    CHECK(strstr(err.message, "whole document") != NULL);
    CHECK(json_equal(doc, before));
    json_decref(before);
    json_decref(doc);
}

static void test_long_pointers_are_quoted_shortened_in_messages(void)
{
    char pointer[2001];
    for (size_t i = 0; i < sizeof pointer - 1; i++)
        pointer[i] = i % 2 ? 'x' : '/';
    pointer[sizeof pointer - 1] = '\0';
    json_t *doc = doc_of("{}");
    json_t *got = NULL;
    aside_error err;
    CHECK(json_pointer_get(doc, pointer, &got, &err) == ASIDE_ERR_NOT_FOUND);
    CHECK(strlen(err.message) < sizeof err.message);
    pointer[1] = '~';
    CHECK(json_pointer_get(doc, pointer, &got, &err) == ASIDE_ERR_INVALID);
    CHECK(strstr(err.message, "...") != NULL);
    json_decref(doc);
}

/* ---- merge patch ------------------------------------------------------------------------- */

static bool merge_gives(const char *target, const char *patch, const char *want)
{
    json_t *p = doc_of(patch);
    json_t *patch_before = json_deep_copy(p);
    json_t *result = json_merge_patch(doc_of(target), p);
    bool ok = doc_is(result, want) && json_equal(p, patch_before); /* the patch is borrowed */
    json_decref(result);
    json_decref(patch_before);
    json_decref(p);
    return ok;
}

static void test_rfc7386_appendix_a_cases(void)
{
    CHECK(merge_gives("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"));
    CHECK(merge_gives("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"));
    CHECK(merge_gives("{\"a\":\"b\"}", "{\"a\":null}", "{}"));
    CHECK(merge_gives("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"));
    CHECK(merge_gives("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"));
    CHECK(merge_gives("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"));
    CHECK(merge_gives("{\"a\": {\"b\": \"c\"}}", "{\"a\": {\"b\": \"d\", \"c\": null}}",
                      "{\"a\": {\"b\": \"d\"}}"));
    CHECK(merge_gives("{\"a\": [{\"b\":\"c\"}]}", "{\"a\": [1]}", "{\"a\": [1]}"));
    CHECK(merge_gives("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"));
    CHECK(merge_gives("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"));
    CHECK(merge_gives("{\"a\":\"foo\"}", "null", "null"));
    CHECK(merge_gives("{\"a\":\"foo\"}", "\"bar\"", "\"bar\""));
    CHECK(merge_gives("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"));
    CHECK(merge_gives("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"));
    CHECK(merge_gives("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"));
}

static void test_rfc7386_section3_example(void)
{
    CHECK(merge_gives("{\"title\": \"Goodbye!\", \"author\": {\"givenName\": \"John\","
                      " \"familyName\": \"Doe\"}, \"tags\": [\"example\", \"sample\"],"
                      " \"content\": \"This will be unchanged\"}",
                      "{\"title\": \"Hello!\", \"phoneNumber\": \"+01-123-456-7890\","
                      " \"author\": {\"familyName\": null}, \"tags\": [\"example\"]}",
                      "{\"title\": \"Hello!\", \"author\": {\"givenName\": \"John\"},"
                      " \"tags\": [\"example\"], \"content\": \"This will be unchanged\","
                      " \"phoneNumber\": \"+01-123-456-7890\"}"));
}

static void test_merge_into_no_value_and_result_independent_of_patch(void)
{
    json_t *patch = doc_of("{\"a\": {\"b\": [1]}, \"gone\": null}");
    json_t *result = json_merge_patch(NULL, patch);
    CHECK(doc_is(result, "{\"a\": {\"b\": [1]}}"));
    /* the result shares nothing with the patch: changing one leaves the other */
    json_array_append_new(json_object_get(json_object_get(result, "a"), "b"), json_integer(2));
    CHECK(doc_is(patch, "{\"a\": {\"b\": [1]}, \"gone\": null}"));
    json_decref(result);
    json_decref(patch);
}

int main(void)
{
    RUN(test_rfc6901_section5_examples_resolve);
    RUN(test_escapes_unescape_in_order);
    RUN(test_malformed_pointers_are_invalid_with_a_reason);
    RUN(test_missing_members_and_elements_are_not_found);
    RUN(test_array_indices_are_digits_without_leading_zeros);
    RUN(test_set_adds_and_replaces_object_members);
    RUN(test_set_replaces_elements_and_appends_at_the_end_or_dash);
    RUN(test_set_of_the_empty_pointer_replaces_or_creates_the_document);
    RUN(test_failed_sets_leave_the_document_unchanged);
    RUN(test_delete_removes_members_and_elements);
    RUN(test_failed_deletes_leave_the_document_unchanged);
    RUN(test_long_pointers_are_quoted_shortened_in_messages);
    RUN(test_rfc7386_appendix_a_cases);
    RUN(test_rfc7386_section3_example);
    RUN(test_merge_into_no_value_and_result_independent_of_patch);
    return CHECK_DONE();
}
