/* fuzz_json_pointer.c -- JSON Pointer (RFC 6901) on parsed documents (json_pointer.c).
 *
 * json_get, json_set and json_delete take a pointer and a document from clients. The input is
 * a pointer, a newline, then a JSON document. Each of parse, get, set and delete runs on it,
 * and what the header promises is checked: a value set where the pointer names (not "-") is
 * then found there, equal; a failed edit leaves the document as it was. */
#include <jansson.h>

#include "fuzz.h"
#include "value/value.h"

static void tokens(const char *pointer, size_t len)
{
    json_pointer *p = NULL;
    aside_error err;
    if (json_pointer_parse(pointer, len, &p, &err) != ASIDE_OK)
        return;
    for (size_t i = 0; i < json_pointer_count(p); i++) {
        size_t n = 0;
        const char *t = json_pointer_token(p, i, &n);
        if (strlen(t) > n)
            abort();
    }
    json_pointer_free(p);
}

static int ends_with_dash(const char *pointer)
{
    size_t n = strlen(pointer);
    return n >= 2 && strcmp(pointer + n - 2, "/-") == 0;
}

/* Set a marker where pointer names and read it back. */
static void set_then_get(json_t *doc, const char *pointer)
{
    json_t *copy = json_deep_copy(doc);
    json_t *before = json_deep_copy(doc);
    json_t *marker = json_pack("{s:i}", "fuzz", 1);
    aside_error err;
    if (json_pointer_set(&copy, pointer, json_incref(marker), &err) == ASIDE_OK) {
        json_t *found = NULL;
        if (!ends_with_dash(pointer) &&
            (json_pointer_get(copy, pointer, &found, &err) != ASIDE_OK ||
             !json_equal(found, marker)))
            abort(); /* what was set is not where the pointer names */
    } else if (!json_equal(copy, before)) {
        abort(); /* a failed edit changed the document */
    }
    json_decref(marker);
    json_decref(before);
    json_decref(copy);
}

static void delete_at(json_t *doc, const char *pointer)
{
    json_t *copy = json_deep_copy(doc);
    aside_error err;
    if (json_pointer_delete(&copy, pointer, &err) != ASIDE_OK && !json_equal(copy, doc))
        abort(); /* a failed delete changed the document */
    json_decref(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *pointer = NULL, *text = NULL;
    size_t pointer_len = 0, text_len = 0;
    if (!fuzz_split(data, size, '\n', &pointer, &pointer_len, &text, &text_len))
        return 0;
    tokens(pointer, pointer_len);
    json_t *doc = json_loadb(text, text_len, JSON_DECODE_ANY, NULL);
    if (doc) {
        json_t *found = NULL;
        aside_error err;
        json_pointer_get(doc, pointer, &found, &err);
        set_then_get(doc, pointer);
        delete_at(doc, pointer);
        json_decref(doc);
    }
    free(pointer);
    free(text);
    return 0;
}
