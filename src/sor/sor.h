/* sor.h -- systems of record: where values come from.
 *
 * A system of record (SOR) is the source of truth the cache loads from on a miss. It is an
 * interface with one job today, fetch: copy an object into a file descriptor (the disk tier's
 * temporary file), so that a large object streams to disk and never needs to fit in memory.
 *
 * Implementations: a local or network directory (local.c, the "sd" storage) and callbacks that
 * a program embedding libaside supplies (callbacks.c). S3 comes next behind the same interface.
 * A SOR is safe to call from many threads at once. */
#ifndef ASIDE_SOR_H
#define ASIDE_SOR_H

#include "aside.h"

typedef struct sor sor;

typedef struct sor_ops {
    const char *name;
    aside_status (*fetch)(sor *s, const char *key, int fd, aside_object_info *info,
                          aside_error *err);
    void (*destroy)(sor *s);
} sor_ops;

/* Every implementation starts with this header. */
struct sor {
    const sor_ops *ops;
};

/* A SOR over the directory root (which must exist). NULL with a reason on failure. */
sor *sor_local_create(const char *root, aside_error *err);
/* A SOR calling back into the embedding program; callbacks is copied. */
sor *sor_callbacks_create(const aside_sor_callbacks *callbacks, aside_error *err);

/* Copy the object named key (a checked key) into fd, positioned at 0, and describe it.
 * ASIDE_ERR_NOT_FOUND when the SOR has no such object; ASIDE_ERR_INVALID when the key resolves
 * outside the SOR (a symlink); ASIDE_ERR_SOR or ASIDE_ERR_IO on failure. */
aside_status sor_fetch(sor *s, const char *key, int fd, aside_object_info *info,
                       aside_error *err);
const char  *sor_name(const sor *s);
void         sor_destroy(sor *s);

#endif
