/* key.c -- what a key may be.
 *
 * A key names a file under the root of the system of record and, the same way, under the disk
 * tier. It must therefore never leave those roots or surprise a file system: relative, no "."
 * or ".." components, no empty components (which would make two spellings of one file), no NUL
 * or control characters, at most ASIDE_KEY_MAX_BYTES. Each component must be a name the file
 * system takes even with the longest suffix the cache appends (ASIDE_KEY_COMPONENT_MAX_BYTES),
 * so a key accepted never fails later, deep in a write, with "File name too long". The
 * top-level folder ".aside" is the disk tier's own (sidecars, temporary files) and no key may
 * enter it. Symlinks are the file system's business and are checked where a path is opened
 * (sor/local.c). */
#include <string.h>

#include "aside.h"
#include "util/util.h"

#define RESERVED_FOLDER ".aside"

static aside_status check_component(const char *c, size_t len, bool first, aside_error *err)
{
    if (len == 0)
        return error_set(err, ASIDE_ERR_INVALID, "path has an empty component (\"//\" or a "
                                                 "trailing \"/\")");
    if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
        return error_set(err, ASIDE_ERR_INVALID, "path may not contain \".\" or \"..\" "
                                                 "components");
    if (len > ASIDE_KEY_COMPONENT_MAX_BYTES)
        return error_set(err, ASIDE_ERR_INVALID, "path has a component of %zu bytes, more than "
                         "the %d allowed (\"%.24s...\")", len, ASIDE_KEY_COMPONENT_MAX_BYTES, c);
    if (first && len == strlen(RESERVED_FOLDER) && memcmp(c, RESERVED_FOLDER, len) == 0)
        return error_set(err, ASIDE_ERR_INVALID, "path may not start with the reserved folder "
                                                 "\"" RESERVED_FOLDER "\"");
    return ASIDE_OK;
}

aside_status aside_key_check(const char *key, size_t len, aside_error *err)
{
    if (!key || len == 0)
        return error_set(err, ASIDE_ERR_INVALID, "path is empty");
    if (len > ASIDE_KEY_MAX_BYTES)
        return error_set(err, ASIDE_ERR_INVALID, "path is %zu bytes long, more than the %d "
                         "allowed", len, ASIDE_KEY_MAX_BYTES);
    if (key[0] == '/')
        return error_set(err, ASIDE_ERR_INVALID, "path must be relative, not start with \"/\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == 0)
            return error_set(err, ASIDE_ERR_INVALID, "path contains a NUL byte");
        if (c < 0x20 || c == 0x7F)
            return error_set(err, ASIDE_ERR_INVALID, "path contains control character 0x%02x",
                             c);
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || key[i] == '/') {
            aside_status st = check_component(key + start, i - start, start == 0, err);
            if (st != ASIDE_OK)
                return st;
            start = i + 1;
        }
    }
    return ASIDE_OK;
}
