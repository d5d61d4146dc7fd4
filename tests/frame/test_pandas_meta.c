/* test_pandas_meta.c -- the pandas metadata is read by one parser with one set of rules, and a
 * file's dtypes and index come out the same whichever reader loads it.
 *
 * The parser is tested on hand-written metadata. Then pandas_files.py (this folder) writes each
 * case as parquet and as an Arrow IPC file carrying the same "pandas" metadata, with what pandas
 * reads back; the Arrow decoder and the DuckDB parquet loader must both show pandas' dtypes and
 * RangeIndex. The Python with pandas and the script are the two arguments, or
 * ASIDE_TEST_PYTHON and ASIDE_TEST_PANDAS_FILES in the environment (tests/CMakeLists.txt sets
 * them). Without them those tests cannot run, and the program exits with SKIP_CODE, which ctest
 * shows as a skip, after the tests that need no Python. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "check.h"
#include "engine/engine.h"
#include "fixture.h"
#include "frame/pandas_meta.h"

enum { SKIP_CODE = 77 }; /* ctest's SKIP_RETURN_CODE for this test */

static fixture fx;
static char files_dir[PATH_MAX]; /* where pandas_files.py wrote; empty: not written */

/* ---- the parser ------------------------------------------------------------------------- */

static const pandas_meta_column *column_named(const pandas_meta *m, const char *name)
{
    for (size_t i = 0; i < m->column_count; i++) {
        if (strcmp(m->columns[i].name, name) == 0)
            return &m->columns[i];
    }
    return NULL;
}

static void test_extension_dtypes_are_the_ones_pandas_rebuilds(void)
{
    CHECK(strcmp(pandas_meta_extension_dtype("Int64"), "Int64") == 0);
    CHECK(strcmp(pandas_meta_extension_dtype("UInt8"), "UInt8") == 0);
    CHECK(strcmp(pandas_meta_extension_dtype("Float32"), "Float32") == 0);
    CHECK(strcmp(pandas_meta_extension_dtype("boolean"), "boolean") == 0);
    CHECK(strcmp(pandas_meta_extension_dtype("string"), "string") == 0);
    CHECK(strcmp(pandas_meta_extension_dtype("string[pyarrow]"), "string") == 0);
    /* numpy's own dtypes, and names pandas does not know, are no extension */
    CHECK(pandas_meta_extension_dtype("int64") == NULL);
    CHECK(pandas_meta_extension_dtype("datetime64[ns]") == NULL);
    CHECK(pandas_meta_extension_dtype("object") == NULL);
    CHECK(pandas_meta_extension_dtype("Foo") == NULL);
    CHECK(pandas_meta_extension_dtype("stringly") == NULL);
}

static const char typed_meta[] =
    "{\"index_columns\": [{\"kind\": \"range\", \"name\": \"row\", \"start\": 5, "
    "\"stop\": 14, \"step\": 3}],"
    " \"columns\": ["
    "  {\"name\": \"a\", \"field_name\": \"a\", \"pandas_type\": \"int64\","
    "   \"numpy_type\": \"Int64\", \"metadata\": null},"
    "  {\"name\": \"c\", \"field_name\": \"c\", \"pandas_type\": \"categorical\","
    "   \"numpy_type\": \"int8\", \"metadata\": {\"ordered\": true}},"
    "  {\"name\": \"t\", \"field_name\": \"t\", \"pandas_type\": \"datetimetz\","
    "   \"numpy_type\": \"datetime64[ms]\", \"metadata\": {\"timezone\": \"UTC\"}},"
    "  {\"name\": \"p\", \"field_name\": \"p\", \"pandas_type\": \"int64\","
    "   \"numpy_type\": \"int64\", \"metadata\": null},"
    "  {\"name\": \"nameless\", \"pandas_type\": \"int64\", \"numpy_type\": \"Int64\"}]}";

static void test_columns_and_range_index_are_read(void)
{
    pandas_meta m;
    CHECK(pandas_meta_parse(typed_meta, &m, NULL) == ASIDE_OK);
    CHECK(m.column_count == 4); /* the column without field_name is left out */
    const pandas_meta_column *a = column_named(&m, "a"), *c = column_named(&m, "c");
    const pandas_meta_column *t = column_named(&m, "t"), *p = column_named(&m, "p");
    CHECK(a && strcmp(a->extension_dtype, "Int64") == 0 && !a->category && !a->timestamp);
    CHECK(c && c->category && c->ordered && !c->extension_dtype);
    CHECK(t && t->timestamp && t->unit == FRAME_MILLI && t->timezone &&
          strcmp(t->timezone, "UTC") == 0);
    CHECK(p && !p->extension_dtype && !p->category && !p->timestamp);
    CHECK(m.has_range_index && m.range_index.start == 5 && m.range_index.step == 3 &&
          m.range_index.name && strcmp(m.range_index.name, "row") == 0);
    pandas_meta_free(&m);
}

/* index_columns text is refused as a RangeIndex: the default one stands. */
static bool no_range_index(const char *index_columns)
{
    char json[512];
    snprintf(json, sizeof json, "{\"index_columns\": %s, \"columns\": []}", index_columns);
    pandas_meta m;
    bool ok = pandas_meta_parse(json, &m, NULL) == ASIDE_OK && !m.has_range_index &&
              m.range_index.start == 0 && m.range_index.step == 1 && !m.range_index.name;
    pandas_meta_free(&m);
    return ok;
}

static void test_a_step_of_zero_and_other_odd_indexes_leave_the_default(void)
{
    CHECK(no_range_index("[{\"kind\": \"range\", \"name\": \"r\", \"start\": 5, \"step\": 0}]"));
    CHECK(no_range_index("[{\"kind\": \"range\", \"start\": 5.5, \"step\": 1}]"));
    CHECK(no_range_index("[{\"kind\": \"range\", \"start\": 5}]"));
    CHECK(no_range_index("[{\"kind\": \"range\", \"start\": 0, \"step\": 1},"
                         " {\"kind\": \"range\", \"start\": 0, \"step\": 1}]"));
    CHECK(no_range_index("[\"__index_level_0__\"]"));
    CHECK(no_range_index("{}"));
    CHECK(!no_range_index("[{\"kind\": \"range\", \"start\": 0, \"step\": -2}]"));
}

static void test_metadata_that_does_not_parse_is_empty(void)
{
    const char *bad[] = {"", "not json", "[1, 2]", "{\"columns\": 7}",
                         "{\"columns\": [7, {\"field_name\": 3}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pandas_meta m;
        CHECK(pandas_meta_parse(bad[i], &m, NULL) == ASIDE_OK && m.column_count == 0 &&
              !m.has_range_index);
        pandas_meta_free(&m);
    }
}

static void test_dtypes_apply_to_fields_by_name_once(void)
{
    pandas_meta m;
    CHECK(pandas_meta_parse(typed_meta, &m, NULL) == ASIDE_OK);
    frame_field fields[3] = {{.name = "p"}, {.name = "a"}, {.name = "c"}};
    CHECK(pandas_meta_apply_dtypes(&m, fields, 3, NULL) == ASIDE_OK);
    CHECK(!fields[0].pandas_dtype && !fields[2].pandas_dtype);
    CHECK(fields[1].pandas_dtype && strcmp(fields[1].pandas_dtype, "Int64") == 0);
    CHECK(pandas_meta_apply_dtypes(&m, fields, 3, NULL) == ASIDE_OK); /* kept, not leaked */
    free(fields[1].pandas_dtype);
    pandas_meta_free(&m);
}

/* ---- both readers of the same files ----------------------------------------------------- */

static json_t *expected_of(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.json", files_dir, name);
    return json_load_file(path, 0, NULL);
}

static frame *decoded_arrow(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.arrow", files_dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    rewind(fp);
    uint8_t *data = malloc((size_t)size);
    frame *f = NULL;
    aside_error err;
    if (data && fread(data, 1, (size_t)size, fp) == (size_t)size &&
        arrow_decode(data, (size_t)size, &f, &err) != ASIDE_OK)
        fprintf(stderr, "  %s: %s\n", path, err.message);
    free(data);
    fclose(fp);
    return f;
}

static frame *loaded_parquet(engine *e, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.parquet", files_dir, name);
    frame *f = NULL;
    aside_error err;
    if (engine_load(e, path, ENGINE_PARQUET, 0, &f, &err) != ASIDE_OK)
        fprintf(stderr, "  %s: %s\n", path, err.message);
    return f;
}

/* f shows the dtypes and RangeIndex pandas read (expected), in the same order. */
static bool shows_as_pandas(const frame *f, json_t *expected, const char *reader)
{
    json_t *dtypes = json_object_get(expected, "dtypes");
    json_t *index = json_object_get(expected, "index");
    bool ok = f && json_object_size(dtypes) == f->field_count;
    const char *column;
    json_t *want;
    size_t i = 0;
    json_object_foreach(dtypes, column, want) {
        char dtype[64];
        if (!ok || i >= f->field_count)
            break;
        frame_pandas_dtype(&f->fields[i], dtype, sizeof dtype);
        if (strcmp(f->fields[i].name, column) != 0 || strcmp(dtype, json_string_value(want))) {
            fprintf(stderr, "  %s: column %s is %s, pandas has %s %s\n", reader,
                    f->fields[i].name, dtype, column, json_string_value(want));
            ok = false;
        }
        i++;
    }
    const char *name = json_string_value(json_object_get(index, "name"));
    if (ok && (f->index.start != json_integer_value(json_object_get(index, "start")) ||
               f->index.step != json_integer_value(json_object_get(index, "step")) ||
               (name ? !f->index.name || strcmp(name, f->index.name) : f->index.name != NULL))) {
        fprintf(stderr, "  %s: index %lld %lld %s differs from pandas'\n", reader,
                (long long)f->index.start, (long long)f->index.step,
                f->index.name ? f->index.name : "(no name)");
        ok = false;
    }
    return ok;
}

static void both_readers_show_as_pandas(const char *name)
{
    engine *e = NULL;
    aside_error err;
    json_t *expected = expected_of(name);
    CHECK(expected != NULL);
    CHECK(engine_open(&(engine_config){0}, &e, &err) == ASIDE_OK);
    frame *from_arrow = decoded_arrow(name);
    frame *from_parquet = e ? loaded_parquet(e, name) : NULL;
    CHECK(shows_as_pandas(from_arrow, expected, "Arrow IPC"));
    CHECK(shows_as_pandas(from_parquet, expected, "parquet"));
    frame_release(from_arrow);
    frame_release(from_parquet);
    engine_close(e);
    json_decref(expected);
}

static void test_a_typed_frame_reads_the_same_from_parquet_and_arrow(void)
{
    both_readers_show_as_pandas("typed");
}

static void test_a_step_of_zero_gives_both_readers_the_default_index(void)
{
    both_readers_show_as_pandas("step_zero");
}

/* ---- main ------------------------------------------------------------------------------- */

static bool write_files(const char *python, const char *script)
{
    char line[3 * PATH_MAX + 16];
    snprintf(files_dir, sizeof files_dir, "%s/files", fx.root);
    mkdir(files_dir, 0755);
    snprintf(line, sizeof line, "'%s' '%s' '%s'", python, script, files_dir);
    return system(line) == 0;
}

int main(int argc, char **argv)
{
    fixture_init(&fx);
    (void)write_file; /* from fixture.h, unused: the files here are written by Python */
    (void)file_size;
    RUN(test_extension_dtypes_are_the_ones_pandas_rebuilds);
    RUN(test_columns_and_range_index_are_read);
    RUN(test_a_step_of_zero_and_other_odd_indexes_leave_the_default);
    RUN(test_metadata_that_does_not_parse_is_empty);
    RUN(test_dtypes_apply_to_fields_by_name_once);
    const char *python = argc >= 3 ? argv[1] : getenv("ASIDE_TEST_PYTHON");
    const char *script = argc >= 3 ? argv[2] : getenv("ASIDE_TEST_PANDAS_FILES");
    bool skipped = !python || !script || access(python, X_OK) != 0;
    if (skipped) {
        printf("skip: the files written by pandas (no Python given, or not executable)\n");
    } else {
        CHECK(write_files(python, script));
        RUN(test_a_typed_frame_reads_the_same_from_parquet_and_arrow);
        RUN(test_a_step_of_zero_gives_both_readers_the_default_index);
    }
    fixture_done(&fx);
    int status = CHECK_DONE();
    return status == EXIT_SUCCESS && skipped ? SKIP_CODE : status;
}
