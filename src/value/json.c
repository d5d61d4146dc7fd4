/* json.c -- the JSON type: a document validated when loaded.
 *
 * A ".json" key is parsed once, when it enters the cache, with jansson (any JSON text, scalars
 * included, as RFC 8259 allows; duplicate keys are accepted as most parsers do). A document that
 * does not parse is refused with the parser's line, column and reason, and nothing is cached.
 * The parsed tree is thrown away: the cache keeps the bytes, which it serves as they are, or
 * embeds unchanged in a JSON envelope, since they are known to be valid. */
#include <jansson.h>
#include <string.h>

#include "util/util.h"
#include "value.h"

static bool json_claims_key(const char *key, size_t len)
{
    return value_key_has_suffix(key, len, ".json");
}

static aside_status json_check(const void *data, size_t size, aside_error *err)
{
    json_error_t parse_error;
    json_t *doc = json_loadb(data, size, JSON_DECODE_ANY, &parse_error);
    if (!doc)
        return error_set(err, ASIDE_ERR_BAD_VALUE, "invalid JSON at line %d, column %d: %s",
                         parse_error.line, parse_error.column, parse_error.text);
    json_decref(doc);
    return ASIDE_OK;
}

static const char *json_content_type(const char *key)
{
    (void)key;
    return "application/json";
}

const value_kind value_kind_json = {ASIDE_TYPE_JSON, "json", json_claims_key, json_check,
                                    json_content_type};
