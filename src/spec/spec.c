/* spec.c -- the data spec's schema: datasets, views and functions (spec.h).
 *
 * The file is read by ydoc (ydoc.h) into a tree of YAML nodes with their lines and columns;
 * the schema is walked top down here by small functions, one per kind of field, each of which
 * either fills its part of the spec or reports the node at fault and stops. Every list of the
 * schema (datasets, views, functions) is read by ydoc_each, one item reader per kind.
 *
 * Defaults (the "defaults" mapping) are applied while reading, so the spec handed out holds
 * each dataset's settings resolved, and the JSON form shows what is in force. */
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "spec/ydoc.h"
#include "util/util.h"

enum {
    DEFAULT_PRELOAD_THREADS = 4,
    MAX_DTYPE_BYTES = 96,
    MS_PER_SECOND = 1000
};

static const char *const TYPES[] = {"bytes", "json", "frame", NULL};
static const char *const STORAGES[] = {"sd", "s3", NULL};

/* Settings a dataset takes from "defaults" unless it says otherwise. */
typedef struct dataset_defaults {
    const char *type, *storage;
    uint64_t    ttl_ms, revalidate_ms;
    bool        pin, preload;
} dataset_defaults;

/* ---- dtypes ------------------------------------------------------------------------------- */

static bool one_of(const char *text, size_t len, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        if (strlen(names[i]) == len && strncmp(text, names[i], len) == 0)
            return true;
    }
    return false;
}

/* "datetime64[unit]", "datetime64[unit, tz]" or "timedelta64[unit]", canonically spaced. */
static bool time_dtype(const char *dtype, char *canonical, size_t size)
{
    static const char *const units[] = {"s", "ms", "us", "ns", NULL};
    bool datetime = strncmp(dtype, "datetime64[", 11) == 0;
    if (!datetime && strncmp(dtype, "timedelta64[", 12) != 0)
        return false;
    const char *unit = dtype + (datetime ? 11 : 12);
    size_t unit_len = strcspn(unit, ",]");
    const char *rest = unit + unit_len;
    if (!one_of(unit, unit_len, units))
        return false;
    if (strcmp(rest, "]") == 0) {
        snprintf(canonical, size, "%.*s", (int)(rest + 1 - dtype), dtype);
        return true;
    }
    if (!datetime || *rest != ',')
        return false;
    const char *zone = rest + 1;
    while (*zone == ' ')
        zone++;
    size_t zone_len = strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789_+-/:");
    if (zone_len == 0 || strcmp(zone + zone_len, "]") != 0)
        return false;
    snprintf(canonical, size, "datetime64[%.*s, %.*s]", (int)unit_len, unit, (int)zone_len, zone);
    return true;
}

bool spec_dtype_valid(const char *dtype, char *canonical, size_t size)
{
    static const char *const names[] = {
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float32", "float64", "object", "string", "category", "boolean", "Int8", "Int16",
        "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", NULL};
    char scratch[MAX_DTYPE_BYTES];
    if (!canonical) {
        canonical = scratch;
        size = sizeof scratch;
    }
    if (one_of(dtype, strlen(dtype), names)) {
        snprintf(canonical, size, "%s", dtype);
        return true;
    }
    return time_dtype(dtype, canonical, size);
}

/* ---- datasets ----------------------------------------------------------------------------- */

static const char *const MATCH_NAMES[] = {"key", "glob", "prefix"};

static bool has_wildcard(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* Check the dataset's key, glob or prefix. */
static bool check_pattern(ydoc *r, const yaml_node_t *node, spec_dataset *d)
{
    aside_error why;
    const char *field = MATCH_NAMES[d->match];
    size_t len = strlen(d->pattern);
    if (d->match == SPEC_PREFIX) {
        while (len > 0 && d->pattern[len - 1] == '/')
            len--; /* "raw/2024/" names a folder: the rest must be a valid path */
        if (len == 0) {
            YDOC_FAIL(r, node, "prefix must name a folder or the start of keys, not the whole "
                      "system of record");
            return false;
        }
    }
    if (d->match == SPEC_GLOB && !has_wildcard(d->pattern)) {
        YDOC_FAIL(r, node, "glob \"%s\" has no wildcard (*, ? or [...]): use key", d->pattern);
        return false;
    }
    if (aside_key_check(d->pattern, len, &why) != ASIDE_OK) {
        YDOC_FAIL(r, node, "%s \"%s\" is not a valid key: %s", field, d->pattern, why.message);
        return false;
    }
    return true;
}

/* The one of key, glob, prefix the dataset gives (values[0..2]). */
static bool read_match(ydoc *r, const yaml_node_t *map, yaml_node_t *const *values,
                       spec_dataset *d)
{
    int found = -1;
    for (int i = 0; i < 3; i++) {
        if (!values[i])
            continue;
        if (found >= 0) {
            YDOC_FAIL(r, values[i], "a dataset has one of key, glob or prefix, not both %s and %s",
                      MATCH_NAMES[found], MATCH_NAMES[i]);
            return false;
        }
        found = i;
    }
    if (found < 0) {
        YDOC_FAIL(r, map, "a dataset needs one of key, glob or prefix");
        return false;
    }
    d->match = (spec_match)found;
    return ydoc_text(r, values[found], MATCH_NAMES[found], &d->pattern) &&
           check_pattern(r, values[found], d);
}

static bool read_column(ydoc *r, const yaml_node_t *key, const yaml_node_t *value,
                        spec_column *c)
{
    char canonical[MAX_DTYPE_BYTES];
    const char *name = ydoc_scalar(r, key, "a column's name");
    const char *dtype = name ? ydoc_scalar(r, value, "a column's dtype") : NULL;
    if (!dtype)
        return false;
    if (!spec_dtype_valid(dtype, canonical, sizeof canonical)) {
        YDOC_FAIL(r, value, "column \"%s\": unknown dtype \"%s\" (pandas names such as int64, "
                  "float64, bool, object, string, category, Int64, boolean, datetime64[ns], "
                  "datetime64[ns, UTC], timedelta64[ns])", name, dtype);
        return false;
    }
    c->name = strdup(name);
    c->dtype = strdup(canonical);
    if (!c->name || !c->dtype) {
        YDOC_FAIL(r, key, "out of memory");
        return false;
    }
    return true;
}

/* columns: {name: dtype, ...}, in the order written. */
static bool read_columns(ydoc *r, const yaml_node_t *map, spec_dataset *d)
{
    if (!ydoc_mapping(r, map, "columns"))
        return false;
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (!(d->columns = calloc(n ? n : 1, sizeof *d->columns))) {
        YDOC_FAIL(r, map, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        yaml_node_t *key = ydoc_node(r, p->key);
        if (!read_column(r, key, ydoc_node(r, p->value), &d->columns[d->column_count++]))
            return false;
        for (size_t j = 0; j + 1 < d->column_count; j++) {
            if (strcmp(d->columns[j].name, d->columns[i].name) == 0) {
                YDOC_FAIL(r, key, "column \"%s\" is listed twice", d->columns[i].name);
                return false;
            }
        }
    }
    return true;
}

/* The type the dataset's keys are read as, when its key says it: for the columns check. */
static const char *known_type(const spec_dataset *d)
{
    if (d->type)
        return d->type;
    if (d->match != SPEC_KEY)
        return NULL;
    return aside_value_type_name(aside_value_type_for_key(d->pattern));
}

/* Settings that only make sense together. */
static bool check_dataset(ydoc *r, const yaml_node_t *map, yaml_node_t *const *values,
                          const spec_dataset *d)
{
    const char *type = known_type(d);
    if (d->column_count && type && strcmp(type, "frame") != 0) {
        YDOC_FAIL(r, values[4], "columns are checked on frames, and %s is read as %s: add type: "
                  "frame", d->pattern, type);
        return false;
    }
    if (!d->preload && (d->pin || d->ttl_ms || d->column_count)) {
        YDOC_FAIL(r, map, "%s applies to keys aside preloads: set preload: true, or remove it",
                  d->pin ? "pin" : d->ttl_ms ? "ttl" : "columns");
        return false;
    }
    return true;
}

enum { F_KEY, F_GLOB, F_PREFIX, F_TYPE, F_COLUMNS, F_STORAGE, F_TTL, F_PIN, F_PRELOAD,
       F_REVALIDATE, F_NAME, F_COUNT };

/* A dataset's name: an identifier, not too long (it becomes a label of the server's metrics). */
static bool read_dataset_name(ydoc *r, const yaml_node_t *node, spec_dataset *d)
{
    if (!ydoc_text(r, node, "name", &d->name))
        return false;
    if (!text_is_identifier(d->name) || strlen(d->name) > SPEC_NAME_MAX_BYTES) {
        YDOC_FAIL(r, node, "dataset name \"%.80s\" must be an identifier (letters, digits and _, "
                  "not starting with a digit) of at most %d characters", d->name,
                  SPEC_NAME_MAX_BYTES);
        return false;
    }
    return true;
}

static bool read_dataset(ydoc *r, const yaml_node_t *map, const dataset_defaults *def,
                         spec_dataset *d)
{
    static const char *const known[] = {"key", "glob", "prefix", "type", "columns", "storage",
                                        "ttl", "pin", "preload", "revalidate", "name",
                                        NULL};
    yaml_node_t *v[F_COUNT];
    d->line = ydoc_line(map);
    d->ttl_ms = def->ttl_ms;
    d->revalidate_ms = def->revalidate_ms;
    d->pin = def->pin;
    d->preload = def->preload;
    if (!ydoc_fields(r, map, "a dataset", known, v) || !read_match(r, map, v, d))
        return false;
    d->type = def->type ? strdup(def->type) : NULL;
    d->storage = def->storage ? strdup(def->storage) : NULL;
    if ((def->type && !d->type) || (def->storage && !d->storage)) {
        YDOC_FAIL(r, map, "out of memory");
        return false;
    }
    bool ok = (!v[F_TYPE] || ydoc_choice_copy(r, v[F_TYPE], "type", TYPES, &d->type)) &&
              (!v[F_STORAGE] || ydoc_choice_copy(r, v[F_STORAGE], "storage", STORAGES,
                                                 &d->storage)) &&
              (!v[F_COLUMNS] || read_columns(r, v[F_COLUMNS], d)) &&
              (!v[F_TTL] || ydoc_duration(r, v[F_TTL], "ttl", &d->ttl_ms)) &&
              (!v[F_REVALIDATE] || ydoc_duration(r, v[F_REVALIDATE], "revalidate",
                                                 &d->revalidate_ms)) &&
              (!v[F_PIN] || ydoc_bool(r, v[F_PIN], "pin", &d->pin)) &&
              (!v[F_PRELOAD] || ydoc_bool(r, v[F_PRELOAD], "preload", &d->preload)) &&
              (!v[F_NAME] || read_dataset_name(r, v[F_NAME], d));
    return ok && check_dataset(r, map, v, d);
}

/* defaults: the settings every dataset starts from. */
static bool read_defaults(ydoc *r, const yaml_node_t *map, dataset_defaults *def)
{
    static const char *const known[] = {"type", "storage", "ttl", "pin", "preload",
                                        "revalidate", NULL};
    yaml_node_t *v[6];
    if (!ydoc_fields(r, map, "defaults", known, v))
        return false;
    return (!v[0] || ydoc_choice(r, v[0], "type", TYPES, &def->type)) &&
           (!v[1] || ydoc_choice(r, v[1], "storage", STORAGES, &def->storage)) &&
           (!v[2] || ydoc_duration(r, v[2], "ttl", &def->ttl_ms)) &&
           (!v[3] || ydoc_bool(r, v[3], "pin", &def->pin)) &&
           (!v[4] || ydoc_bool(r, v[4], "preload", &def->preload)) &&
           (!v[5] || ydoc_duration(r, v[5], "revalidate", &def->revalidate_ms));
}

/* The index of an earlier dataset declaring the same keys, or -1. */
static long earlier_dataset(const spec *s, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (s->datasets[j].match == s->datasets[i].match &&
            strcmp(s->datasets[j].pattern, s->datasets[i].pattern) == 0)
            return (long)j;
    }
    return -1;
}

/* What reading an item of "datasets" needs. */
typedef struct datasets_ctx {
    spec                   *spec;
    const dataset_defaults *def;
} datasets_ctx;

static bool read_dataset_item(ydoc *r, const yaml_node_t *item, size_t i, void *ctx)
{
    datasets_ctx *c = ctx;
    spec_dataset *d = &c->spec->datasets[i];
    if (!read_dataset(r, item, c->def, d))
        return false;
    long j = earlier_dataset(c->spec, i);
    if (j >= 0) {
        YDOC_FAIL(r, item, "%s \"%s\" is declared twice (first at line %d)", MATCH_NAMES[d->match],
                  d->pattern, c->spec->datasets[j].line);
        return false;
    }
    for (size_t k = 0; d->name && k < i; k++) {
        if (c->spec->datasets[k].name && strcmp(c->spec->datasets[k].name, d->name) == 0) {
            YDOC_FAIL(r, item, "dataset name \"%s\" is given twice (first at line %d): names "
                      "are unique", d->name, c->spec->datasets[k].line);
            return false;
        }
    }
    return true;
}

static bool read_datasets(ydoc *r, const yaml_node_t *list, const dataset_defaults *def,
                          spec *s)
{
    datasets_ctx ctx = {s, def};
    return ydoc_sequence(r, list, "datasets") &&
           (s->datasets = ydoc_array(r, list, sizeof *s->datasets)) &&
           ydoc_each(r, list, &s->dataset_count, read_dataset_item, &ctx);
}

/* ---- views and functions ------------------------------------------------------------------ */

static bool check_view_name(ydoc *r, const yaml_node_t *node, const spec *s, size_t i)
{
    const spec_view *v = &s->views[i];
    aside_error why;
    if (aside_key_check(v->name, strlen(v->name), &why) != ASIDE_OK) {
        YDOC_FAIL(r, node, "view name \"%s\" is not a valid key: %s", v->name, why.message);
        return false;
    }
    for (size_t j = 0; j < s->dataset_count; j++) {
        if (spec_dataset_matches(&s->datasets[j], v->name)) {
            YDOC_FAIL(r, node, "view name \"%s\" is also a key of the dataset at line %d: a "
                      "view's key holds its result only", v->name, s->datasets[j].line);
            return false;
        }
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(s->views[j].name, v->name) == 0) {
            YDOC_FAIL(r, node, "view \"%s\" is declared twice (first at line %d)", v->name,
                      s->views[j].line);
            return false;
        }
    }
    return true;
}

static bool read_view(ydoc *r, const yaml_node_t *map, size_t i, void *ctx)
{
    spec *s = ctx;
    static const char *const known[] = {"name", "query", "storage", NULL};
    yaml_node_t *v[3];
    spec_view *view = &s->views[i];
    view->line = ydoc_line(map);
    if (!ydoc_fields(r, map, "a view", known, v))
        return false;
    if (!v[0] || !v[1]) {
        YDOC_FAIL(r, map, "a view needs %s", v[0] ? "a query" : "a name");
        return false;
    }
    if (!ydoc_text(r, v[0], "name", &view->name) || !check_view_name(r, v[0], s, i) ||
        !ydoc_text(r, v[1], "query", &view->query))
        return false;
    return !v[2] || ydoc_choice_copy(r, v[2], "storage", STORAGES, &view->storage);
}

static bool read_views(ydoc *r, const yaml_node_t *list, spec *s)
{
    return ydoc_sequence(r, list, "views") && (s->views = ydoc_array(r, list, sizeof *s->views)) &&
           ydoc_each(r, list, &s->view_count, read_view, s);
}

static bool check_function_name(ydoc *r, const yaml_node_t *node, const spec *s, size_t i)
{
    const spec_function *f = &s->functions[i];
    if (!text_is_identifier(f->name)) {
        YDOC_FAIL(r, node, "function name \"%s\" must be a Python identifier (letters, digits and "
                  "_, the file NAME.py)", f->name);
        return false;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(s->functions[j].name, f->name) == 0) {
            YDOC_FAIL(r, node, "function \"%s\" is declared twice (first at line %d)", f->name,
                      s->functions[j].line);
            return false;
        }
    }
    return true;
}

/* A function: its name alone, or {name, storage}. */
static bool read_function(ydoc *r, const yaml_node_t *item, size_t i, void *ctx)
{
    spec *s = ctx;
    static const char *const known[] = {"name", "storage", NULL};
    spec_function *f = &s->functions[i];
    f->line = ydoc_line(item);
    if (item->type == YAML_SCALAR_NODE)
        return ydoc_text(r, item, "a function's name", &f->name) &&
               check_function_name(r, item, s, i);
    yaml_node_t *v[2];
    if (!ydoc_fields(r, item, "a function", known, v))
        return false;
    if (!v[0]) {
        YDOC_FAIL(r, item, "a function needs a name");
        return false;
    }
    return ydoc_text(r, v[0], "name", &f->name) && check_function_name(r, v[0], s, i) &&
           (!v[1] || ydoc_choice_copy(r, v[1], "storage", STORAGES, &f->storage));
}

static bool read_functions(ydoc *r, const yaml_node_t *list, spec *s)
{
    return ydoc_sequence(r, list, "functions") &&
           (s->functions = ydoc_array(r, list, sizeof *s->functions)) &&
           ydoc_each(r, list, &s->function_count, read_function, s);
}

/* ---- the document ------------------------------------------------------------------------- */

enum { T_VERSION, T_THREADS, T_DEFAULTS, T_DATASETS, T_VIEWS, T_FUNCTIONS, T_READY, T_COUNT };

static bool read_version(ydoc *r, const yaml_node_t *root, yaml_node_t *node, spec *s)
{
    long version = 0;
    if (!node) {
        YDOC_FAIL(r, root, "missing field \"version\" (this server reads version: %d)",
                  SPEC_VERSION);
        return false;
    }
    if (!ydoc_int(r, node, "version", 1, 1000, &version))
        return false;
    if (version != SPEC_VERSION) {
        YDOC_FAIL(r, node, "version %ld is not known to this server (it reads version: %d)",
                  version, SPEC_VERSION);
        return false;
    }
    s->version = (int)version;
    return true;
}

static bool read_root(ydoc *r, const yaml_node_t *root, spec *s)
{
    static const char *const known[] = {"version", "preload_threads", "defaults", "datasets",
                                        "views", "functions", "ready_after_preload", NULL};
    yaml_node_t *v[T_COUNT];
    dataset_defaults def = {.preload = true};
    long threads = DEFAULT_PRELOAD_THREADS;
    if (!ydoc_fields(r, root, "the spec", known, v) || !read_version(r, root, v[T_VERSION], s))
        return false;
    if (v[T_THREADS] && !ydoc_int(r, v[T_THREADS], "preload_threads", 1, SPEC_MAX_THREADS,
                                  &threads))
        return false;
    s->preload_threads = (unsigned)threads;
    s->ready_after_preload = true;
    if (v[T_READY] && !ydoc_bool(r, v[T_READY], "ready_after_preload", &s->ready_after_preload))
        return false;
    return (!v[T_DEFAULTS] || read_defaults(r, v[T_DEFAULTS], &def)) &&
           (!v[T_DATASETS] || ydoc_is_null(v[T_DATASETS]) ||
            read_datasets(r, v[T_DATASETS], &def, s)) &&
           (!v[T_VIEWS] || ydoc_is_null(v[T_VIEWS]) || read_views(r, v[T_VIEWS], s)) &&
           (!v[T_FUNCTIONS] || ydoc_is_null(v[T_FUNCTIONS]) ||
            read_functions(r, v[T_FUNCTIONS], s));
}

aside_status spec_load_text(const char *name, const char *text, size_t len, spec **out,
                            aside_error *err)
{
    ydoc r = {.name = name, .error_code = "bad_spec", .err = err};
    yaml_mark_t start = {0, 0, 0};
    char empty[96];
    snprintf(empty, sizeof empty, "the spec is empty (it needs at least \"version: %d\")",
             SPEC_VERSION);
    if (len > SPEC_MAX_BYTES) {
        ydoc_fail(&r, start, "the spec is larger than %d bytes", SPEC_MAX_BYTES);
        return ASIDE_ERR_INVALID;
    }
    if (!ydoc_load(&r, text, len, empty, "a spec is one YAML document: remove the second one"))
        return ASIDE_ERR_INVALID;
    spec *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(name)))
        ydoc_fail(&r, start, "out of memory");
    else
        read_root(&r, ydoc_root(&r), s);
    ydoc_close(&r);
    if (r.failed) {
        spec_free(s);
        return ASIDE_ERR_INVALID;
    }
    *out = s;
    return ASIDE_OK;
}

aside_status spec_load_file(const char *path, spec **out, aside_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, ASIDE_ERR_IO, "%s: cannot open the spec: %s", path,
                         strerror(errno));
    char *text = malloc(SPEC_MAX_BYTES + 1);
    size_t len = text ? fread(text, 1, SPEC_MAX_BYTES + 1, f) : 0;
    bool failed = !text || ferror(f);
    fclose(f);
    aside_status st = failed ? error_set(err, ASIDE_ERR_IO, "%s: cannot read the spec", path)
                             : spec_load_text(path, text, len, out, err);
    free(text);
    return st;
}

/* ---- freeing, comparing, matching ---------------------------------------------------------- */

static void dataset_clear(spec_dataset *d)
{
    free(d->name);
    free(d->pattern);
    free(d->type);
    free(d->storage);
    for (size_t i = 0; i < d->column_count; i++) {
        free(d->columns[i].name);
        free(d->columns[i].dtype);
    }
    free(d->columns);
}

void spec_free(spec *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->dataset_count; i++)
        dataset_clear(&s->datasets[i]);
    for (size_t i = 0; i < s->view_count; i++) {
        free(s->views[i].name);
        free(s->views[i].query);
        free(s->views[i].storage);
    }
    for (size_t i = 0; i < s->function_count; i++) {
        free(s->functions[i].name);
        free(s->functions[i].storage);
    }
    free(s->datasets);
    free(s->views);
    free(s->functions);
    free(s->path);
    free(s);
}

/* Equal strings, NULL equal to NULL only. */
static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool spec_dataset_equal(const spec_dataset *a, const spec_dataset *b)
{
    if (a->match != b->match || !same(a->pattern, b->pattern) || !same(a->type, b->type) ||
        !same(a->storage, b->storage) || a->ttl_ms != b->ttl_ms ||
        a->revalidate_ms != b->revalidate_ms || a->pin != b->pin || a->preload != b->preload ||
        a->column_count != b->column_count)
        return false;
    for (size_t i = 0; i < a->column_count; i++) {
        if (!same(a->columns[i].name, b->columns[i].name) ||
            !same(a->columns[i].dtype, b->columns[i].dtype))
            return false;
    }
    return true;
}

bool spec_view_equal(const spec_view *a, const spec_view *b)
{
    return same(a->name, b->name) && same(a->query, b->query) && same(a->storage, b->storage);
}

bool spec_function_equal(const spec_function *a, const spec_function *b)
{
    return same(a->name, b->name) && same(a->storage, b->storage);
}

bool spec_dataset_matches(const spec_dataset *d, const char *key)
{
    switch (d->match) {
    case SPEC_KEY:
        return strcmp(d->pattern, key) == 0;
    case SPEC_GLOB:
        return fnmatch(d->pattern, key, FNM_PATHNAME) == 0;
    case SPEC_PREFIX:
        return strncmp(d->pattern, key, strlen(d->pattern)) == 0;
    }
    return false;
}

const char *spec_dataset_list_prefix(const spec_dataset *d, size_t *len)
{
    *len = d->match == SPEC_GLOB ? strcspn(d->pattern, "*?[\\") : strlen(d->pattern);
    return d->pattern;
}

/* ---- JSON --------------------------------------------------------------------------------- */

/* A duration in seconds: whole when it is, else with its milliseconds; null for never. */
static json_t *seconds_json(uint64_t ms)
{
    if (!ms)
        return json_null();
    if (ms % MS_PER_SECOND == 0)
        return json_integer((json_int_t)(ms / MS_PER_SECOND));
    return json_real((double)ms / MS_PER_SECOND);
}

static json_t *text_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *dataset_json(const spec_dataset *d)
{
    json_t *columns = json_object();
    for (size_t i = 0; columns && i < d->column_count; i++)
        json_object_set_new(columns, d->columns[i].name, json_string(d->columns[i].dtype));
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:i}", "name",
                     text_or_null(d->name), MATCH_NAMES[d->match], d->pattern, "type", text_or_null(d->type), "storage",
                     text_or_null(d->storage), "columns", columns ? columns : json_null(),
                     "ttl_seconds", seconds_json(d->ttl_ms), "revalidate_seconds",
                     seconds_json(d->revalidate_ms), "pin", d->pin, "preload", d->preload,
                     "line", d->line);
}

static json_t *view_json(const spec_view *v)
{
    return json_pack("{s:s, s:s, s:o, s:i}", "name", v->name, "query", v->query, "storage",
                     text_or_null(v->storage), "line", v->line);
}

static json_t *function_json(const spec_function *f)
{
    return json_pack("{s:s, s:o, s:i}", "name", f->name, "storage", text_or_null(f->storage),
                     "line", f->line);
}

aside_status spec_to_json(const spec *s, char **json, aside_error *err)
{
    json_t *datasets = json_array(), *views = json_array(), *functions = json_array();
    for (size_t i = 0; datasets && i < s->dataset_count; i++)
        json_array_append_new(datasets, dataset_json(&s->datasets[i]));
    for (size_t i = 0; views && i < s->view_count; i++)
        json_array_append_new(views, view_json(&s->views[i]));
    for (size_t i = 0; functions && i < s->function_count; i++)
        json_array_append_new(functions, function_json(&s->functions[i]));
    json_t *doc = datasets && views && functions
                      ? json_pack("{s:i, s:i, s:b, s:O, s:O, s:O}", "version", s->version,
                                  "preload_threads", (int)s->preload_threads,
                                  "ready_after_preload", s->ready_after_preload, "datasets",
                                  datasets, "views", views, "functions", functions)
                      : NULL;
    json_decref(datasets);
    json_decref(views);
    json_decref(functions);
    *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return *json ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}
