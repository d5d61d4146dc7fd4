/* spec.h -- the data spec: a YAML file declaring what a server holds.
 *
 * A spec names datasets to preload (a key, a glob or a prefix of the system of record, with
 * their storage, type, expected columns and dtypes, time to live, pin and revalidation
 * interval), SQL views to materialise as frames, and users' functions to register. This module
 * only reads and checks the file: it never touches a cache. docs/spec.md describes the schema.
 * This header is the module's public one; inside it, ydoc.h (the YAML reader: nodes, positions,
 * messages) serves the schema (spec.c) and no one else.
 *
 * Every problem is reported as "PATH:LINE:COLUMN: message", LINE and COLUMN counting from 1 and
 * pointing at the YAML node at fault, so an operator can go straight to it. Loading stops at the
 * first problem; a spec that loads is complete and consistent (no unknown field, no duplicate,
 * every key valid, every dtype one pandas names). */
#ifndef ASIDE_SPEC_H
#define ASIDE_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"

enum {
    SPEC_VERSION = 1,           /* the only version this build reads */
    SPEC_MAX_BYTES = 4 << 20,   /* a larger file is refused */
    SPEC_MAX_THREADS = 64,      /* preload_threads may ask for up to this many */
    SPEC_NAME_MAX_BYTES = 64    /* a dataset's name is at most this long */
};

/* How a dataset names its keys. */
typedef enum spec_match {
    SPEC_KEY = 0, /* exactly one key */
    SPEC_GLOB,    /* keys matching a shell pattern (fnmatch, "*" stays within a folder) */
    SPEC_PREFIX   /* every key whose text starts with the prefix */
} spec_match;

/* A column a frame must have, with its pandas dtype ("float64", "datetime64[ns, UTC]"). */
typedef struct spec_column {
    char *name;
    char *dtype; /* canonical spelling: "datetime64[ns, UTC]" whatever the spacing written */
} spec_column;

typedef struct spec_dataset {
    char        *name;     /* an identifier, unique in the spec, or NULL: telemetry counts the
                              reads of the dataset's keys under it (hits, misses, bytes) */
    spec_match   match;
    char        *pattern;  /* the key, the glob or the prefix */
    char        *type;     /* "bytes", "json", "frame", or NULL: by the key's name */
    char        *storage;  /* "sd", "s3", or NULL: the server's default */
    spec_column *columns;  /* checked when a frame is loaded; may be empty */
    size_t       column_count;
    uint64_t     ttl_ms;        /* a preloaded key expires this long after loading; 0: never */
    uint64_t     revalidate_ms; /* cached keys are revalidated this often; 0: never */
    bool         pin;           /* preloaded keys are pinned in memory */
    bool         preload;       /* loaded at start (and on a reload that adds or changes it) */
    int          line;          /* where the dataset is declared */
} spec_dataset;

/* A frame computed by SQL over other keys and kept under name. */
typedef struct spec_view {
    char *name;    /* a cache key */
    char *query;   /* one SELECT; cached frames are tables named by their keys */
    char *storage; /* where the query's inputs are read from on a miss; NULL: the default */
    int   line;
} spec_view;

/* A user's function to register from the system of record's function folder. */
typedef struct spec_function {
    char *name;    /* a Python identifier: the file NAME.py */
    char *storage; /* NULL: the default */
    int   line;
} spec_function;

typedef struct spec {
    char          *path; /* as given to the loader, for messages */
    int            version;
    unsigned       preload_threads; /* threads loading datasets (default 4) */
    bool           ready_after_preload; /* /ready waits for the start's preload (default
                                           true) */
    spec_dataset  *datasets;
    size_t         dataset_count;
    spec_view     *views;
    size_t         view_count;
    spec_function *functions;
    size_t         function_count;
} spec;

/* Read and check the spec file at path. On success returns ASIDE_OK and sets *out, which the
 * caller frees with spec_free(). On failure sets nothing and returns ASIDE_ERR_INVALID (a bad
 * spec: err says "path:line:column: what") or ASIDE_ERR_IO (the file cannot be read). */
aside_status spec_load_file(const char *path, spec **out, aside_error *err);

/* spec_load_file on text (len bytes) already in memory; name stands for the path in
 * messages. */
aside_status spec_load_text(const char *name, const char *text, size_t len, spec **out,
                            aside_error *err);

/* Free a spec and everything it owns. NULL is ignored. */
void spec_free(spec *s);

/* The spec as a JSON object (every setting resolved, defaults applied, durations in seconds,
 * each item with its line): ASIDE_OK and *json, which the caller frees with free(). */
aside_status spec_to_json(const spec *s, char **json, aside_error *err);

/* True when a and b declare the same thing the same way (every field but the line, and a
 * dataset's name: it changes no loading, only the label its reads are counted under). */
bool spec_dataset_equal(const spec_dataset *a, const spec_dataset *b);
bool spec_view_equal(const spec_view *a, const spec_view *b);
bool spec_function_equal(const spec_function *a, const spec_function *b);

/* True if key is one of the dataset's keys: the key itself, a match of the glob, or a key
 * starting with the prefix. */
bool spec_dataset_matches(const spec_dataset *d, const char *key);

/* The text a listing of the system of record must start with to find the dataset's keys: the
 * key, the prefix, or a glob's part before its first wildcard. Points into d->pattern; *len
 * receives its length. */
const char *spec_dataset_list_prefix(const spec_dataset *d, size_t *len);

/* True if dtype is a pandas dtype name a spec accepts; canonical (may be NULL) receives its
 * canonical spelling (size bytes). */
bool spec_dtype_valid(const char *dtype, char *canonical, size_t size);

#endif
