/* engine.h -- DuckDB, the frame engine: reading files into frames, SQL over cached frames.
 *
 * Two in-memory DuckDB databases, each with a memory limit derived from the cache's budget:
 *   - the loader reads files of the disk tier (parquet, CSV, JSON) with fixed queries built
 *     here, the only SQL that ever touches a file, and writes parquet exports;
 *   - the query database runs users' SQL with external access disabled and its configuration
 *     locked: no file, URL, extension or setting is reachable from it.
 * Frames are never copied into DuckDB: both databases read them through the table function
 * aside_frame(key), which streams a frame's batches into DuckDB vectors. In users' SQL a table
 * named by a cache key ("sales.parquet") is replaced by aside_frame('sales.parquet') (a
 * replacement scan), and the engine asks its resolver for the frame, which loads it
 * cache-aside. The frame stays referenced until the query is done, so eviction cannot pull it
 * away mid-scan.
 *
 * Results stream out of DuckDB chunk by chunk into a frame_builder, so a result's size is
 * checked as it grows and a query over the bound stops early.
 *
 * What a query may use: each database has a memory limit, a number of threads and a folder it
 * spills to, with a limit of its own (engine_config); past them a query fails with
 * ASIDE_ERR_TOO_LARGE. A query's deadline holds even inside one long piece of DuckDB's work:
 * a watchdog thread interrupts it from outside (watchdog.c). */
#ifndef ASIDE_ENGINE_H
#define ASIDE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "aside.h"
#include "frame/frame.h"

typedef struct engine engine;

/* Finds the frame named key for a query (loading it if need be): ASIDE_OK and *out retained,
 * or a status with err set. ctx is the one given per query. */
typedef aside_status (*engine_resolver)(void *ctx, const char *key, frame **out,
                                        aside_error *err);

typedef struct engine_config {
    uint64_t    memory_limit_bytes; /* for each database; 0: DuckDB's default (80% of RAM) */
    unsigned    threads;            /* for each database; 0: DuckDB's default (the cores) */
    /* The folder DuckDB spills to when a query outgrows its memory: each database gets a
     * folder of its own in it, emptied at open. NULL: no spilling (such a query fails). */
    const char *spill_dir;
    uint64_t    spill_limit_bytes; /* for each database's folder; 0 with spill_dir: none */
} engine_config;

aside_status engine_open(const engine_config *cfg, engine **out, aside_error *err);
void         engine_close(engine *e);

/* Bytes DuckDB's spill folders hold now (0 without a spill folder). */
uint64_t     engine_spill_bytes(engine *e);

/* File formats the loader reads. */
typedef enum engine_format {
    ENGINE_PARQUET = 0,
    ENGINE_CSV,
    ENGINE_CSV_GZIP,
    ENGINE_JSON_ARRAY, /* one JSON array of records */
    ENGINE_JSONL       /* one record per line */
} engine_format;

/* Read the file at path into a new frame. For parquet, the Arrow schema and pandas metadata a
 * writer stored are honoured (time zones, units, categoricals, the index). A frame whose
 * bytes would pass limit_bytes (0: none) stops with ASIDE_ERR_TOO_LARGE; a file that does not
 * parse gets ASIDE_ERR_BAD_VALUE with DuckDB's reason. */
aside_status engine_load(engine *e, const char *path, engine_format format,
                         uint64_t limit_bytes, frame **out, aside_error *err);

/* A query's context: how it finds frames, and the bound of its result. */
typedef struct engine_query {
    engine_resolver resolve;
    void           *resolve_ctx;
    uint64_t        result_limit_bytes; /* 0: none */
    unsigned        timeout_ms;         /* interrupted past this (ASIDE_ERR_TIMEOUT); 0: none */
} engine_query;

/* Run one user SELECT statement in the locked database; *out receives the result frame.
 * ASIDE_ERR_INVALID with DuckDB's message when it fails (err->code "bad_query"), the
 * resolver's status when a frame it names cannot be had, ASIDE_ERR_TOO_LARGE past the bound. */
aside_status engine_sql(engine *e, const engine_query *q, const char *sql, frame **out,
                        aside_error *err);

/* engine_sql where the frame local is known to the query as name (the frame a function was
 * asked about), so it is read as it is, without asking the resolver. */
aside_status engine_sql_local(engine *e, const engine_query *q, const char *name, frame *local,
                              const char *sql, frame **out, aside_error *err);

/* The query text reading the frame named key: aside_frame('key'), quoted for SQL, into b. */
void engine_frame_sql(buf *b, const char *key);
/* An SQL identifier, quoted ("a""b"), into b. */
void engine_quote_identifier(buf *b, const char *name);

/* Write f as a parquet file at path (snappy), through the loader database. */
aside_status engine_write_parquet(engine *e, frame *f, const char *path, aside_error *err);

/* pandas' df.describe() of f as a frame of statistics (index labels count, mean, ...): numeric
 * columns, or with include_all every column (count, unique, top, freq for the others). */
aside_status engine_describe(engine *e, frame *f, bool include_all, unsigned timeout_ms,
                             frame **out, aside_error *err);

#endif
