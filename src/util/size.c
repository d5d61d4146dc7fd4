/* size.c -- byte sizes as operators write them: "512MiB", "4G", "1.5GB", "25%".
 *
 * Binary units (K, KiB, M, MiB, ...) are powers of 1024, decimal ones (KB, MB, ...) powers of
 * 1000; units are case-insensitive. A percentage is of a whole the caller supplies (RAM, free
 * disk space). Anything else is refused with the text that was given, never guessed at. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aside.h"
#include "util.h"

static const struct {
    const char *unit;
    double      factor;
} units[] = {
    {"", 1},         {"b", 1},
    {"k", 1024.0},   {"kib", 1024.0},   {"kb", 1e3},
    {"m", 1048576.0}, {"mib", 1048576.0}, {"mb", 1e6},
    {"g", 1073741824.0}, {"gib", 1073741824.0}, {"gb", 1e9},
    {"t", 1099511627776.0}, {"tib", 1099511627776.0}, {"tb", 1e12},
    {"%", -1},
};

aside_status aside_parse_size(const char *text, uint64_t whole, uint64_t *out, aside_error *err)
{
    if (!text || !*text)
        return error_set(err, ASIDE_ERR_INVALID, "empty size");
    char *end = NULL;
    double number = strtod(text, &end);
    if (end == text || !isfinite(number) || number < 0)
        return error_set(err, ASIDE_ERR_INVALID, "\"%s\" is not a size (e.g. 512MiB, 4GiB, 25%%)",
                         text);
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].unit) != 0)
            continue;
        double bytes = units[i].factor < 0 ? (double)whole * number / 100.0
                                           : number * units[i].factor;
        if (bytes >= 18446744073709551615.0 || (units[i].factor < 0 && number > 100))
            return error_set(err, ASIDE_ERR_INVALID, "size \"%s\" is out of range", text);
        *out = (uint64_t)bytes;
        return ASIDE_OK;
    }
    return error_set(err, ASIDE_ERR_INVALID, "unknown unit in size \"%s\" (use B, KiB, MiB, GiB, "
                     "TiB, KB, MB, GB, TB or %%)", text);
}
