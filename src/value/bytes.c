/* bytes.c -- the bytes type: any file, served as it is.
 *
 * It claims no key (it is the fallback), accepts any content, and names a Content-Type from the
 * file's extension so that browsers and HTTP clients treat raw responses sensibly. */
#include <stddef.h>
#include <string.h>

#include "util/util.h"
#include "value.h"

static bool bytes_claims_key(const char *key, size_t len)
{
    (void)key;
    (void)len;
    return false;
}

static aside_status bytes_check(const value_context *ctx, const void *data, size_t size,
                                aside_error *err)
{
    (void)ctx;
    (void)data;
    (void)size;
    (void)err;
    return ASIDE_OK;
}

static const struct {
    const char *suffix;
    const char *content_type;
} content_types[] = {
    {".parquet", "application/vnd.apache.parquet"},
    {".csv", "text/csv; charset=utf-8"},
    {".csv.gz", "application/gzip"},
    {".gz", "application/gzip"},
    {".json", "application/json"},
    {".jsonl", "application/x-ndjson"},
    {".ndjson", "application/x-ndjson"},
    {".txt", "text/plain; charset=utf-8"},
    {".arrow", "application/vnd.apache.arrow.file"},
    {".feather", "application/vnd.apache.arrow.file"},
    {".py", "text/x-python; charset=utf-8"},
};

static const char *bytes_content_type(const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
        if (value_key_has_suffix(key, len, content_types[i].suffix))
            return content_types[i].content_type;
    }
    return "application/octet-stream";
}

const value_kind value_kind_bytes = {ASIDE_TYPE_BYTES, "bytes", bytes_claims_key, bytes_check,
                                     bytes_content_type};
