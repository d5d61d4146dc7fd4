/* fuzz_s3_list.c -- the S3 ListObjectsV2 page reader (s3_parse_list_page, sor.h).
 *
 * A listing page comes from S3 or whatever answers at the configured endpoint: untrusted XML.
 * The input is one page. Every key listed must be one aside accepts (aside_key_check), and the
 * continuation token must fit its buffer, NUL-terminated. */
#include <string.h>

#include "aside.h"
#include "fuzz.h"
#include "sor/sor.h"

enum { TOKEN_BYTES = 2048 }; /* as s3_list's */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sor_listing listing = {0};
    char next[TOKEN_BYTES];
    aside_error err;
    s3_parse_list_page((const char *)data, size, "data/", &listing, next, sizeof next, &err);
    if (strnlen(next, sizeof next) == sizeof next)
        abort(); /* the token must be terminated */
    for (size_t i = 0; i < listing.count; i++) {
        const char *key = listing.items[i].key;
        if (aside_key_check(key, strlen(key), NULL) != ASIDE_OK)
            abort(); /* the reader lets through only keys aside can serve */
    }
    aside_object_entries_free(listing.items, listing.count);
    return 0;
}
