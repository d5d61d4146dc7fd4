/* test_engine.c -- DuckDB as the frame engine: files into frames with the dtypes pandas would
 * give them, users' SQL over frames (only a SELECT, bounded), parquet written and read back,
 * and df.describe(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/engine.h"
#include "fixture.h"

static fixture fx;
static engine *eng;

static const char sales_csv[] = "city,units,price,paid\n"
                                "Oslo,3,9.5,true\n"
                                "Lima,1,20.0,false\n"
                                "Oslo,,1.25,true\n"
                                "Pune,4,3.0,false\n";

static frame *load(const char *name, engine_format format, aside_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx.sor, name);
    frame *f = NULL;
    if (engine_load(eng, path, format, 0, &f, err) != ASIDE_OK)
        return NULL;
    return f;
}

/* dtypes of f's columns, space-separated, into out. */
static const char *dtypes_of(const frame *f, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; f && i < f->field_count; i++) {
        char dtype[64];
        frame_pandas_dtype(&f->fields[i], dtype, sizeof dtype);
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? " " : "", dtype);
    }
    return out;
}

/* Row row of a single-batch numeric column, as a double. */
static double number_at(const frame *f, size_t column, int64_t row)
{
    const frame_batch *b = &f->batches[0];
    switch (f->fields[column].type) {
    case FRAME_INT64: return (double)((const int64_t *)frame_values(b, column))[row];
    case FRAME_FLOAT64: return ((const double *)frame_values(b, column))[row];
    default: return NAN;
    }
}

static void test_csv_columns_get_the_dtypes_read_csv_infers(void)
{
    aside_error err;
    char dtypes[256];
    frame *f = load("sales.csv", ENGINE_CSV, &err);
    CHECK(f && f->rows == 4 && f->field_count == 4);
    /* an integer column with a missing value is shown as float64, as pandas holds it */
    CHECK(strcmp(dtypes_of(f, dtypes, sizeof dtypes), "object float64 float64 bool") == 0);
    if (f)
        CHECK(frame_is_null(&f->batches[0], 1, 2) && number_at(f, 1, 3) == 4.0 &&
              f->fields[1].null_count == 1);
    frame_release(f);
}

static void test_json_lines_become_a_frame(void)
{
    static const char lines[] = "{\"k\": \"a\", \"v\": 1}\n{\"k\": \"b\", \"v\": 2}\n";
    write_file(fx.sor, "rows.jsonl", lines, sizeof lines - 1);
    aside_error err;
    char dtypes[128];
    frame *f = load("rows.jsonl", ENGINE_JSONL, &err);
    CHECK(f && f->rows == 2 && strcmp(dtypes_of(f, dtypes, sizeof dtypes), "object int64") == 0);
    frame_release(f);
}

static void test_a_file_that_does_not_parse_is_bad_value(void)
{
    static const char junk[] = "PAR1 this is not parquet";
    write_file(fx.sor, "junk.parquet", junk, sizeof junk - 1);
    aside_error err;
    CHECK(load("junk.parquet", ENGINE_PARQUET, &err) == NULL &&
          err.status == ASIDE_ERR_BAD_VALUE);
}

/* The resolver: "sales.csv" is the loaded frame; any other key is not found. */
static aside_status resolve(void *ctx, const char *key, frame **out, aside_error *err)
{
    if (strcmp(key, "sales.csv") != 0)
        return error_set(err, ASIDE_ERR_NOT_FOUND, "no such key: %s", key);
    *out = frame_retain(ctx);
    return ASIDE_OK;
}

static void test_sql_reads_frames_by_key(void)
{
    aside_error err;
    frame *sales = load("sales.csv", ENGINE_CSV, &err), *out = NULL;
    engine_query q = {.resolve = resolve, .resolve_ctx = sales};
    CHECK(sales && engine_sql(eng, &q, "SELECT city, sum(units) AS units FROM \"sales.csv\" "
                                       "GROUP BY city ORDER BY city", &out, &err) == ASIDE_OK);
    CHECK(out && out->rows == 3 && strcmp(out->fields[1].name, "units") == 0);
    if (out)
        CHECK(number_at(out, 1, 0) == 1 && number_at(out, 1, 1) == 3 &&
              number_at(out, 1, 2) == 4);
    frame_release(out);
    out = NULL;
    CHECK(engine_sql(eng, &q, "SELECT * FROM \"other.csv\"", &out, &err) == ASIDE_ERR_NOT_FOUND);
    frame_release(sales);
}

static void test_only_a_select_runs_and_files_are_out_of_reach(void)
{
    aside_error err;
    frame *out = NULL;
    engine_query q = {.resolve = resolve};
    char sql[PATH_MAX + 64];
    CHECK(engine_sql(eng, &q, "CREATE TABLE t (a INT)", &out, &err) == ASIDE_ERR_INVALID &&
          strcmp(err.code, "bad_query") == 0 && !out);
    CHECK(engine_sql(eng, &q, "SELECT 1; SELECT 2", &out, &err) == ASIDE_ERR_INVALID && !out);
    snprintf(sql, sizeof sql, "SELECT * FROM read_csv('%s/sales.csv')", fx.sor);
    CHECK(engine_sql(eng, &q, sql, &out, &err) != ASIDE_OK && !out);
}

static void test_a_result_past_its_bound_is_too_large(void)
{
    aside_error err;
    frame *out = NULL;
    engine_query q = {.resolve = resolve, .result_limit_bytes = 64 * 1024};
    CHECK(engine_sql(eng, &q, "SELECT range AS n FROM range(1000000)", &out, &err) ==
              ASIDE_ERR_TOO_LARGE && !out);
}

static void test_sql_over_a_local_frame_needs_no_resolver(void)
{
    aside_error err;
    frame *sales = load("sales.csv", ENGINE_CSV, &err), *out = NULL;
    engine_query q = {0};
    CHECK(sales && engine_sql_local(eng, &q, "df", sales, "SELECT count(*) AS n FROM df", &out,
                                    &err) == ASIDE_OK);
    CHECK(out && out->rows == 1 && number_at(out, 0, 0) == 4);
    frame_release(out);
    frame_release(sales);
}

static void test_parquet_written_reads_back_the_same(void)
{
    aside_error err;
    char path[PATH_MAX], before[256], after[256];
    frame *sales = load("sales.csv", ENGINE_CSV, &err);
    snprintf(path, sizeof path, "%s/sales.parquet", fx.sor);
    CHECK(sales && engine_write_parquet(eng, sales, path, &err) == ASIDE_OK);
    frame *back = load("sales.parquet", ENGINE_PARQUET, &err);
    CHECK(back && back->rows == 4);
    CHECK(strcmp(dtypes_of(sales, before, sizeof before), dtypes_of(back, after, sizeof after))
          == 0);
    frame_release(back);
    frame_release(sales);
}

static void test_describe_gives_pandas_statistics(void)
{
    aside_error err;
    frame *sales = load("sales.csv", ENGINE_CSV, &err), *d = NULL;
    CHECK(sales && engine_describe(eng, sales, false, 0, &d, &err) == ASIDE_OK);
    /* the numeric columns, units and price, with count mean std min 25% 50% 75% max */
    CHECK(d && d->field_count == 2 && d->rows == 8 && d->index.labels);
    if (d && d->index.labels && d->rows == 8) {
        CHECK(strcmp(d->index.labels[0], "count") == 0 && strcmp(d->index.labels[1], "mean") == 0
              && strcmp(d->index.labels[7], "max") == 0);
        CHECK(number_at(d, 0, 0) == 3 && fabs(number_at(d, 0, 1) - 8.0 / 3) < 1e-12 &&
              number_at(d, 0, 7) == 4);
    }
    frame_release(d);
    d = NULL;
    CHECK(engine_describe(eng, sales, true, 0, &d, &err) == ASIDE_OK && d && d->field_count == 4);
    frame_release(d);
    frame_release(sales);
}

int main(void)
{
    fixture_init(&fx);
    (void)file_size; /* from fixture.h, unused here */
    write_file(fx.sor, "sales.csv", sales_csv, sizeof sales_csv - 1);
    aside_error err;
    engine_config cfg = {.memory_limit_bytes = 256u << 20, .threads = 1};
    if (engine_open(&cfg, &eng, &err) != ASIDE_OK) {
        fprintf(stderr, "engine_open: %s\n", err.message);
        return EXIT_FAILURE;
    }
    RUN(test_csv_columns_get_the_dtypes_read_csv_infers);
    RUN(test_json_lines_become_a_frame);
    RUN(test_a_file_that_does_not_parse_is_bad_value);
    RUN(test_sql_reads_frames_by_key);
    RUN(test_only_a_select_runs_and_files_are_out_of_reach);
    RUN(test_a_result_past_its_bound_is_too_large);
    RUN(test_sql_over_a_local_frame_needs_no_resolver);
    RUN(test_parquet_written_reads_back_the_same);
    RUN(test_describe_gives_pandas_statistics);
    engine_close(eng);
    fixture_done(&fx);
    return CHECK_DONE();
}
