/* category_set.c -- distinct strings with provisional codes, then sorted.
 *
 * The strings are kept once each, back to back in one buffer (bytes), with offsets[code] and
 * offsets[code + 1] bounding the string of a code: no allocation per category. Lookups go
 * through an open-addressing table (linear probing, xxh3 of the bytes) whose slots hold
 * code + 1, 0 marking an empty slot; the table doubles when it would pass half full, so probes
 * stay short, and rehashing reads the strings from the buffer, not from stored hashes (the
 * table is 4 bytes a slot). Sorting happens once, at the end, over an array of codes. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "category_set.h"

enum {
    FIRST_SLOTS = 1024,   /* a power of two: slots are found by masking the hash */
    FIRST_CATEGORIES = 256
};

struct category_set {
    buf       bytes;
    int64_t  *offsets; /* count + 1 */
    size_t    count, capacity;
    uint32_t *slots;   /* code + 1; 0 empty */
    size_t    slot_count;
};

category_set *category_set_create(void) { return calloc(1, sizeof(category_set)); }

void category_set_free(category_set *s)
{
    if (!s)
        return;
    buf_free(&s->bytes);
    free(s->offsets);
    free(s->slots);
    free(s);
}

size_t category_set_count(const category_set *s) { return s->count; }

static const char *category_bytes(const category_set *s, size_t code, size_t *len)
{
    *len = (size_t)(s->offsets[code + 1] - s->offsets[code]);
    return s->bytes.data + s->offsets[code];
}

static bool grow_slots(category_set *s)
{
    size_t slot_count = s->slot_count ? s->slot_count * 2 : FIRST_SLOTS;
    uint32_t *slots = calloc(slot_count, sizeof *slots);
    if (!slots)
        return false;
    for (size_t code = 0; code < s->count; code++) {
        size_t len;
        const char *v = category_bytes(s, code, &len);
        size_t at = XXH3_64bits(v, len) & (slot_count - 1);
        while (slots[at])
            at = (at + 1) & (slot_count - 1);
        slots[at] = (uint32_t)code + 1;
    }
    free(s->slots);
    s->slots = slots;
    s->slot_count = slot_count;
    return true;
}

/* Room for one more category's offset. */
static bool reserve_offsets(category_set *s)
{
    if (s->count + 2 <= s->capacity)
        return true;
    size_t capacity = s->capacity ? s->capacity * 2 : FIRST_CATEGORIES;
    int64_t *offsets = realloc(s->offsets, capacity * sizeof *offsets);
    if (!offsets)
        return false;
    s->offsets = offsets;
    s->capacity = capacity;
    return true;
}

int64_t category_set_code(category_set *s, const char *v, size_t len)
{
    if ((s->count + 1) * 2 > s->slot_count && !grow_slots(s))
        return -1;
    size_t at = XXH3_64bits(v, len) & (s->slot_count - 1);
    for (; s->slots[at]; at = (at + 1) & (s->slot_count - 1)) {
        size_t code = s->slots[at] - 1, known_len;
        const char *known = category_bytes(s, code, &known_len);
        if (known_len == len && memcmp(known, v, len) == 0)
            return (int64_t)code;
    }
    if (!reserve_offsets(s))
        return -1;
    if (s->count == 0)
        s->offsets[0] = 0;
    buf_append(&s->bytes, v, len);
    if (s->bytes.failed)
        return -1;
    s->offsets[s->count + 1] = (int64_t)s->bytes.len;
    s->slots[at] = (uint32_t)s->count + 1;
    return (int64_t)s->count++;
}

static int compare_categories(const void *a, const void *b, void *set)
{
    const category_set *s = set;
    size_t lx, ly;
    const char *x = category_bytes(s, *(const uint32_t *)a, &lx);
    const char *y = category_bytes(s, *(const uint32_t *)b, &ly);
    int c = memcmp(x, y, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

frame_batch *category_set_sorted(const category_set *s, uint32_t **remap)
{
    size_t n = s->count ? s->count : 1;
    uint32_t *order = malloc(n * sizeof *order);
    const char **values = malloc(n * sizeof *values);
    size_t *lengths = malloc(n * sizeof *lengths);
    frame_batch *dictionary = NULL;
    *remap = malloc(n * sizeof **remap);
    if (order && values && lengths && *remap) {
        for (uint32_t i = 0; i < s->count; i++)
            order[i] = i;
        qsort_r(order, s->count, sizeof *order, compare_categories, (void *)s);
        for (size_t i = 0; i < s->count; i++) {
            (*remap)[order[i]] = (uint32_t)i;
            values[i] = category_bytes(s, order[i], &lengths[i]);
        }
        dictionary = frame_dictionary_create(values, lengths, s->count);
    }
    free(order);
    free(values);
    free(lengths);
    if (!dictionary) {
        free(*remap);
        *remap = NULL;
    }
    return dictionary;
}
