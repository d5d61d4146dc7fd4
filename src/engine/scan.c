/* scan.c -- aside_frame(key): DuckDB reads a cached frame.
 *
 * Bind finds the frame: the query's local frame when the name is the one it was given, else
 * through the resolver of the query running on this thread (a thread-local scope, because
 * DuckDB binds on the thread that runs the query and the C API has no per-query context). The
 * bind data holds a reference to the frame until DuckDB drops the plan. Scans hand out
 * batch-sized runs of vectors; projection pushdown fills only the columns the query reads.
 *
 * A user may call aside_frame('key') directly: the key is checked like any other, so it can
 * name nothing but a cache key. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static _Thread_local engine_scope *current_scope;

void engine_scope_enter(engine_scope *scope) { current_scope = scope; }

/* The frame named key for the current query, retained; NULL with the reason in the scope. */
static frame *find_frame(const char *key, aside_error *err)
{
    engine_scope *s = current_scope;
    frame *f = NULL;
    if (s && s->local_name && strcmp(s->local_name, key) == 0)
        return frame_retain(s->local);
    if (!s || !s->query || !s->query->resolve) {
        error_set(err, ASIDE_ERR_NOT_FOUND, "no frame named \"%s\"", key);
        return NULL;
    }
    if (s->query->resolve(s->query->resolve_ctx, key, &f, err) != ASIDE_OK)
        return NULL;
    return f;
}

static void release_frame(void *f) { frame_release(f); }

static void frame_bind(duckdb_bind_info info)
{
    duckdb_value param = duckdb_bind_get_parameter(info, 0);
    char *key = duckdb_get_varchar(param);
    duckdb_destroy_value(&param);
    aside_error err = {0};
    frame *f = key ? find_frame(key, &err) : NULL;
    if (!f) {
        if (current_scope && current_scope->failure.status == ASIDE_OK)
            current_scope->failure = err;
        duckdb_bind_set_error(info, err.message[0] ? err.message : "no such frame");
        duckdb_free(key);
        return;
    }
    duckdb_free(key);
    for (size_t i = 0; i < f->field_count; i++) {
        duckdb_logical_type t = convert_logical_type(&f->fields[i]);
        if (!t) {
            duckdb_bind_set_error(info, "out of memory");
            frame_release(f);
            return;
        }
        duckdb_bind_add_result_column(info, f->fields[i].name, t);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_bind_set_bind_data(info, f, release_frame);
    duckdb_bind_set_cardinality(info, (idx_t)f->rows, true);
}

typedef struct scan_state {
    size_t  batch;
    int64_t row;
    idx_t   column_count;
    idx_t  *columns; /* projected field positions */
} scan_state;

static void scan_state_free(void *p)
{
    scan_state *s = p;
    free(s->columns);
    free(s);
}

static void frame_init(duckdb_init_info info)
{
    scan_state *s = calloc(1, sizeof *s);
    idx_t count = duckdb_init_get_column_count(info);
    if (s)
        s->columns = calloc(count ? count : 1, sizeof *s->columns);
    if (!s || !s->columns) {
        free(s);
        duckdb_init_set_error(info, "out of memory");
        return;
    }
    s->column_count = count;
    for (idx_t i = 0; i < count; i++)
        s->columns[i] = duckdb_init_get_column_index(info, i);
    duckdb_init_set_max_threads(info, 1);
    duckdb_init_set_init_data(info, s, scan_state_free);
}

/* A projected column that is no field (DuckDB's row id): its row numbers. */
static void fill_row_ids(duckdb_vector v, int64_t first, idx_t n)
{
    int64_t *out = duckdb_vector_get_data(v);
    for (idx_t i = 0; i < n; i++)
        out[i] = first + (int64_t)i;
}

static void frame_scan(duckdb_function_info info, duckdb_data_chunk out)
{
    const frame *f = duckdb_function_get_bind_data(info);
    scan_state *s = duckdb_function_get_init_data(info);
    while (s->batch < f->batch_count && s->row >= f->batches[s->batch].rows) {
        s->batch++;
        s->row = 0;
    }
    if (s->batch >= f->batch_count) {
        duckdb_data_chunk_set_size(out, 0);
        return;
    }
    const frame_batch *b = &f->batches[s->batch];
    idx_t n = duckdb_vector_size();
    if ((int64_t)n > b->rows - s->row)
        n = (idx_t)(b->rows - s->row);
    for (idx_t i = 0; i < s->column_count; i++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(out, i);
        if (s->columns[i] < f->field_count)
            convert_fill(v, &f->fields[s->columns[i]], b, s->columns[i], s->row, n);
        else
            fill_row_ids(v, s->row, n);
    }
    duckdb_data_chunk_set_size(out, n);
    s->row += (int64_t)n;
}

bool scan_register(duckdb_connection conn, aside_error *err)
{
    duckdb_table_function tf = duckdb_create_table_function();
    duckdb_table_function_set_name(tf, "aside_frame");
    duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_table_function_add_parameter(tf, varchar);
    duckdb_destroy_logical_type(&varchar);
    duckdb_table_function_set_bind(tf, frame_bind);
    duckdb_table_function_set_init(tf, frame_init);
    duckdb_table_function_set_function(tf, frame_scan);
    duckdb_table_function_supports_projection_pushdown(tf, true);
    duckdb_state st = duckdb_register_table_function(conn, tf);
    duckdb_destroy_table_function(&tf);
    if (st == DuckDBError) {
        error_set(err, ASIDE_ERR_INTERNAL, "cannot register aside_frame with DuckDB");
        return false;
    }
    return true;
}

void scan_replacement(duckdb_replacement_scan_info info, const char *table_name, void *data)
{
    (void)data;
    if (aside_key_check(table_name, strlen(table_name), NULL) != ASIDE_OK)
        return;
    duckdb_replacement_scan_set_function_name(info, "aside_frame");
    duckdb_value key = duckdb_create_varchar(table_name);
    duckdb_replacement_scan_add_parameter(info, key);
    duckdb_destroy_value(&key);
}
