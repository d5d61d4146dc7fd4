/* engine_internal.h -- what the engine's files share; not for other modules (see engine.h).
 *
 * convert.c maps types and moves rows between DuckDB vectors and frame columns; engine.c opens
 * the databases, loads files and runs queries; scan.c is the aside_frame table function;
 * watchdog.c interrupts queries past their deadlines; spill.c keeps DuckDB's spill folders. */
#ifndef ASIDE_ENGINE_INTERNAL_H
#define ASIDE_ENGINE_INTERNAL_H

#include <duckdb.h>
#include <pthread.h>

#include "engine.h"

/* True if a column of this type becomes a frame column as it is (else it is cast to VARCHAR). */
bool convert_supported(duckdb_logical_type type);
/* The frame field for a DuckDB column; false when out of memory. Clear it with
 * frame_field_clear(). */
bool convert_field(duckdb_logical_type type, const char *name, frame_field *out);

/* Buffers a column's conversions reuse from chunk to chunk. */
typedef struct convert_scratch {
    buf offsets, values;
} convert_scratch;
void convert_scratch_free(convert_scratch *s);

/* A slice viewing n rows of vector v (of DuckDB type type), to append to field; false when
 * out of memory. Valid until the chunk is destroyed or scratch reused. */
bool convert_vector(duckdb_vector v, duckdb_logical_type type, const frame_field *field,
                    idx_t n, convert_scratch *scratch, frame_slice *out);

/* The DuckDB type a frame field is scanned as (the caller destroys it); NULL when out of
 * memory. */
duckdb_logical_type convert_logical_type(const frame_field *f);
/* Copy rows [row, row + n) of a batch's column into vector v of convert_logical_type(f). */
void convert_fill(duckdb_vector v, const frame_field *f, const frame_batch *b, size_t column,
                  int64_t row, idx_t n);

/* The frames a query on this thread may read besides those the resolver finds. */
typedef struct engine_scope {
    const engine_query *query; /* NULL: only the local frame */
    const char *local_name;    /* a name the query knows a frame by, or NULL */
    frame      *local;
    aside_error failure;       /* why the last frame could not be had (status OK: none) */
} engine_scope;

/* Make scope the current thread's for the duration of a query (NULL to end it). */
void engine_scope_enter(engine_scope *scope);
/* Register aside_frame in db (through a connection of it); false with err set on failure. */
bool scan_register(duckdb_connection conn, aside_error *err);
/* The replacement scan for the query database: any unknown table becomes aside_frame(name). */
void scan_replacement(duckdb_replacement_scan_info info, const char *table_name, void *data);


/* The watchdog: a thread that interrupts the queries added to it once past their deadlines. */
typedef struct watchdog watchdog;
/* A query being watched (owned by its caller, in the list while added). */
typedef struct engine_watch {
    duckdb_connection    conn;
    int64_t              deadline_ms; /* monotonic; moved on as it is interrupted again */
    struct engine_watch *next;
} engine_watch;
aside_status watchdog_start(watchdog **out, aside_error *err);
void         watchdog_stop(watchdog *w);
void         watchdog_add(watchdog *w, engine_watch *q);
/* Take q out: after this, q's connection is never interrupted again. */
void         watchdog_remove(watchdog *w, engine_watch *q);

/* The spill folder name under root (PATH_MAX bytes at path): created if missing, emptied. */
aside_status spill_prepare(const char *root, const char *name, char *path, size_t size,
                           aside_error *err);
/* Bytes the spill folders hold on disk (an empty path is skipped). */
uint64_t     spill_bytes(const char *const *paths, size_t count);

#endif
