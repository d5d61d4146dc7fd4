/* sor.c -- the dispatch of the SOR interface, listings, and the callbacks implementation.
 *
 * The callbacks SOR lets a program embedding libaside plug any source in (a database, another
 * service); tests use it to build a slow, counting source for single-flight checks. */
#include <stdlib.h>
#include <string.h>

#include "sor.h"
#include "util/util.h"

aside_status sor_fetch(sor *s, const char *key, int fd, const char *if_none_match,
                       aside_object_info *info, aside_error *err)
{
    memset(info, 0, sizeof *info);
    return s->ops->fetch(s, key, fd, if_none_match, info, err);
}

aside_status sor_list(sor *s, const char *prefix, sor_listing *out, aside_error *err)
{
    if (!s->ops->list)
        return error_set(err, ASIDE_ERR_INVALID, "the %s system of record cannot list",
                         s->ops->name);
    return s->ops->list(s, prefix ? prefix : "", out, err);
}

aside_status sor_put(sor *s, const char *key, int fd, uint64_t size, aside_object_info *info,
                     aside_error *err)
{
    memset(info, 0, sizeof *info);
    if (!s->ops->put)
        return error_set(err, ASIDE_ERR_INVALID, "the %s system of record cannot be written",
                         s->ops->name);
    return s->ops->put(s, key, fd, size, info, err);
}

bool sor_listing_add(sor_listing *l, const char *key, size_t key_len, uint64_t size,
                     int64_t mtime_ns)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        aside_object_entry *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return false;
        l->items = items;
        l->cap = cap;
    }
    char *copy = strndup(key, key_len);
    if (!copy)
        return false;
    l->items[l->count++] = (aside_object_entry){copy, size, mtime_ns};
    return true;
}

void aside_object_entries_free(aside_object_entry *entries, size_t count)
{
    for (size_t i = 0; entries && i < count; i++)
        free(entries[i].key);
    free(entries);
}

void sor_destroy(sor *s)
{
    if (s)
        s->ops->destroy(s);
}

uint64_t sor_retries(sor *s)
{
    return s ? atomic_load_explicit(&s->retries, memory_order_relaxed) : 0;
}

typedef struct sor_callbacks {
    sor                 base;
    aside_sor_callbacks callbacks;
} sor_callbacks;

static aside_status callbacks_fetch(sor *s, const char *key, int fd, const char *if_none_match,
                                    aside_object_info *info, aside_error *err)
{
    (void)if_none_match; /* callbacks always send the whole object */
    sor_callbacks *c = (sor_callbacks *)s;
    aside_error inner = {.status = ASIDE_OK};
    aside_status st = c->callbacks.fetch(c->callbacks.ctx, key, fd, info, &inner);
    if (st != ASIDE_OK)
        return error_set(err, st, "%s", inner.message[0] ? inner.message : "fetch failed");
    return ASIDE_OK;
}

static void callbacks_destroy(sor *s) { free(s); }

static const sor_ops callbacks_ops = {"callbacks", callbacks_fetch, NULL, NULL, callbacks_destroy};

sor *sor_callbacks_create(const aside_sor_callbacks *callbacks, aside_error *err)
{
    if (!callbacks->fetch) {
        error_set(err, ASIDE_ERR_INVALID, "system of record callbacks need a fetch function");
        return NULL;
    }
    sor_callbacks *c = calloc(1, sizeof *c);
    if (!c) {
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base.ops = &callbacks_ops;
    c->callbacks = *callbacks;
    return &c->base;
}
