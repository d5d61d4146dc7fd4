/* sor.c -- the dispatch of the SOR interface, and the callbacks implementation.
 *
 * The callbacks SOR lets a program embedding libaside plug any source in (a database, another
 * service); tests use it to build a slow, counting source for single-flight checks. */
#include <stdlib.h>

#include "sor.h"
#include "util/util.h"

aside_status sor_fetch(sor *s, const char *key, int fd, aside_object_info *info,
                       aside_error *err)
{
    return s->ops->fetch(s, key, fd, info, err);
}

const char *sor_name(const sor *s) { return s->ops->name; }

void sor_destroy(sor *s)
{
    if (s)
        s->ops->destroy(s);
}

typedef struct sor_callbacks {
    sor                 base;
    aside_sor_callbacks callbacks;
} sor_callbacks;

static aside_status callbacks_fetch(sor *s, const char *key, int fd, aside_object_info *info,
                                    aside_error *err)
{
    sor_callbacks *c = (sor_callbacks *)s;
    aside_error inner = {ASIDE_OK, ""};
    aside_status st = c->callbacks.fetch(c->callbacks.ctx, key, fd, info, &inner);
    if (st != ASIDE_OK)
        return error_set(err, st, "%s", inner.message[0] ? inner.message : "fetch failed");
    return ASIDE_OK;
}

static void callbacks_destroy(sor *s) { free(s); }

static const sor_ops callbacks_ops = {"callbacks", callbacks_fetch, callbacks_destroy};

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
