/* test_frame.c -- frames in memory: the builder (batches, nulls, categories, units, integers
 * pandas holds as floats), the category set, row slices, and the pandas view (dtypes, df.info()
 * text) of known frames, compared with what pandas prints for the same DataFrame. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frame/category_set.h"
#include "frame/frame.h"

/* ---- the category set ------------------------------------------------------------------- */

static void test_category_codes_are_stable_and_sorted_at_the_end(void)
{
    category_set *s = category_set_create();
    CHECK(category_set_code(s, "pear", 4) == 0);
    CHECK(category_set_code(s, "apple", 5) == 1);
    CHECK(category_set_code(s, "pear", 4) == 0);
    CHECK(category_set_code(s, "", 0) == 2);
    CHECK(category_set_code(s, "app", 3) == 3);
    CHECK(category_set_count(s) == 4);
    uint32_t *remap = NULL;
    frame_batch *d = category_set_sorted(s, &remap);
    CHECK(d && d->rows == 4 && remap);
    if (d && remap) {
        /* sorted: "", "app", "apple", "pear" */
        CHECK(remap[0] == 3 && remap[1] == 2 && remap[2] == 0 && remap[3] == 1);
        const int32_t *offsets = frame_offsets(d, 0);
        const char *bytes = frame_values(d, 0);
        CHECK(offsets[1] - offsets[0] == 0 && memcmp(bytes + offsets[1], "app", 3) == 0 &&
              memcmp(bytes + offsets[3], "pear", 4) == 0 && offsets[4] == 12);
    }
    free(remap);
    frame_dictionary_free(d);
    category_set_free(s);
}

static void test_many_categories_grow_the_table(void)
{
    enum { COUNT = 5000 };
    category_set *s = category_set_create();
    char text[16];
    bool ok = true;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < COUNT; i++) {
            int len = snprintf(text, sizeof text, "v%d", i);
            ok = ok && category_set_code(s, text, (size_t)len) == i;
        }
    }
    CHECK(ok && category_set_count(s) == COUNT);
    category_set_free(s);
}

/* ---- the builder ------------------------------------------------------------------------ */

enum { ROWS = 10 };

static const int64_t ints[ROWS] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const char *const words[ROWS] = {"b", "a", "b", "c", "a", "b", "b", "c", "a", "a"};
static const uint8_t every_third_null[2] = {0xb6, 0x01}; /* rows 0, 3, 6, 9 null */

/* Offsets and bytes of words. */
static void word_buffers(int32_t *offsets, char *bytes)
{
    offsets[0] = 0;
    for (int i = 0; i < ROWS; i++) {
        memcpy(bytes + offsets[i], words[i], strlen(words[i]));
        offsets[i + 1] = offsets[i] + (int32_t)strlen(words[i]);
    }
}

/* A frame of four columns: i int64, n int64 with nulls as float64, s utf8, c category from
 * strings, built in batches of batch_rows. */
static frame *build_known(int64_t batch_rows)
{
    int32_t offsets[ROWS + 1];
    char bytes[ROWS * 2];
    word_buffers(offsets, bytes);
    frame_field fields[4] = {{.name = "i", .type = FRAME_INT64},
                             {.name = "n", .type = FRAME_FLOAT64},
                             {.name = "s", .type = FRAME_UTF8},
                             {.name = "c", .type = FRAME_CATEGORY}};
    aside_error err;
    frame_builder *b = frame_builder_create(fields, 4, batch_rows, &err);
    CHECK(b != NULL);
    if (!b)
        return NULL;
    /* two appends of 6 and 4 rows: batches need not line up with appends */
    for (int64_t first = 0; first < ROWS; first += 6) {
        int64_t n = first == 0 ? 6 : ROWS - 6;
        frame_slice slices[4] = {
            {.length = n, .offset = first, .null_count = -1, .values = ints,
             .slice_type = FRAME_INT64},
            {.length = n, .offset = first, .null_count = -1, .validity = every_third_null,
             .values = ints, .slice_type = FRAME_INT64},
            {.length = n, .offset = first, .null_count = -1, .offsets = offsets,
             .values = bytes, .slice_type = FRAME_UTF8},
            {.length = n, .offset = first, .null_count = -1, .offsets = offsets,
             .values = bytes, .slice_type = FRAME_UTF8}};
        CHECK(frame_builder_append(b, slices, &err) == ASIDE_OK);
    }
    frame_index index = {.start = 0, .step = 1};
    CHECK(frame_builder_set_index(b, &index, &err) == ASIDE_OK);
    return frame_builder_finish(b, &err);
}

static double float_at(const frame *f, size_t column, int64_t row)
{
    for (size_t i = 0; i < f->batch_count; i++) {
        if (row < f->batches[i].rows)
            return ((const double *)frame_values(&f->batches[i], column))[row];
        row -= f->batches[i].rows;
    }
    return -1;
}

static void test_the_builder_cuts_batches_and_keeps_every_row(void)
{
    frame *f = build_known(4);
    CHECK(f && f->rows == ROWS && f->batch_count == 3);
    if (!f)
        return;
    CHECK(f->batches[0].rows == 4 && f->batches[1].rows == 4 && f->batches[2].rows == 2);
    CHECK(f->fields[0].null_count == 0 && f->fields[1].null_count == 4);
    /* a column without nulls has no validity buffer; every buffer is aligned */
    for (size_t i = 0; i < f->batch_count; i++) {
        CHECK(frame_validity(&f->batches[i], 0) == NULL);
        for (size_t c = 0; c < f->field_count; c++)
            CHECK(f->batches[i].columns[c].values.offset % FRAME_ALIGN == 0);
    }
    /* integers appended to float64 are doubles, NaN where null */
    CHECK(isnan(float_at(f, 1, 0)) && float_at(f, 1, 1) == 2.0 && isnan(float_at(f, 1, 9)) &&
          float_at(f, 1, 7) == 8.0);
    CHECK(frame_is_null(&f->batches[0], 1, 3) && !frame_is_null(&f->batches[0], 1, 2));
    frame_release(f);
}

static void test_categories_from_strings_are_sorted_with_narrow_codes(void)
{
    frame *f = build_known(4);
    if (!f)
        return;
    const frame_field *c = &f->fields[3];
    CHECK(c->type == FRAME_CATEGORY && c->index_type == FRAME_INT8 && c->dictionary &&
          c->dictionary->rows == 3);
    /* words: b a b c ... with categories a, b, c: codes 1 0 1 2 */
    const int8_t *codes = frame_values(&f->batches[0], 3);
    CHECK(codes[0] == 1 && codes[1] == 0 && codes[2] == 1 && codes[3] == 2);
    const int8_t *last = frame_values(&f->batches[2], 3);
    CHECK(last[0] == 0 && last[1] == 0);
    frame_release(f);
}

static void test_timestamps_of_another_unit_are_converted(void)
{
    const int64_t seconds[3] = {0, 1, -2};
    frame_field field = {.name = "t", .type = FRAME_TIMESTAMP, .unit = FRAME_NANO};
    aside_error err;
    frame_builder *b = frame_builder_create(&field, 1, 0, &err);
    frame_slice slice = {.length = 3, .null_count = 0, .values = seconds,
                         .slice_type = FRAME_TIMESTAMP, .slice_unit = FRAME_SECOND};
    CHECK(b && frame_builder_append(b, &slice, &err) == ASIDE_OK);
    frame *f = b ? frame_builder_finish(b, &err) : NULL;
    CHECK(f != NULL);
    if (f) {
        const int64_t *ns = frame_values(&f->batches[0], 0);
        CHECK(ns[0] == 0 && ns[1] == 1000000000 && ns[2] == -2000000000);
    }
    frame_release(f);
}

static void test_a_slice_of_the_wrong_type_or_a_bad_field_is_refused(void)
{
    frame_field field = {.name = "x", .type = FRAME_INT32};
    aside_error err;
    frame_builder *b = frame_builder_create(&field, 1, 0, &err);
    frame_slice slice = {.length = 1, .values = ints, .slice_type = FRAME_INT64};
    CHECK(b && frame_builder_append(b, &slice, &err) == ASIDE_ERR_INTERNAL);
    frame_builder_destroy(b);
    frame_field bad = {.name = "d", .type = FRAME_DECIMAL, .precision = 40, .scale = 2};
    CHECK(frame_builder_create(&bad, 1, 0, &err) == NULL && err.status == ASIDE_ERR_INVALID);
}

static void test_memory_bytes_count_what_the_frame_holds(void)
{
    frame *f = build_known(0);
    if (!f)
        return;
    CHECK(f->memory_bytes == frame_memory_bytes(f));
    uint64_t bodies = 0;
    for (size_t i = 0; i < f->batch_count; i++)
        bodies += f->batches[i].body_bytes;
    CHECK(f->memory_bytes > bodies + f->fields[3].dictionary->body_bytes);
    frame_release(f);
}

static void test_a_row_slice_keeps_dtypes_and_index(void)
{
    frame *f = build_known(4);
    aside_error err;
    frame *s = f ? frame_slice_rows(f, 3, 4, &err) : NULL;
    CHECK(s && s->rows == 4 && s->index.start == 3 && s->index.step == 1);
    if (s) {
        char dtype[32];
        frame_pandas_dtype(&s->fields[1], dtype, sizeof dtype);
        CHECK(strcmp(dtype, "float64") == 0);
        frame_pandas_dtype(&s->fields[3], dtype, sizeof dtype);
        CHECK(strcmp(dtype, "category") == 0);
        CHECK(isnan(float_at(s, 1, 0)) && float_at(s, 1, 1) == 5.0);
    }
    frame *past = f ? frame_slice_rows(f, 20, 5, &err) : NULL;
    CHECK(past && past->rows == 0);
    frame_release(past);
    frame_release(s);
    frame_release(f);
}

/* ---- the pandas view -------------------------------------------------------------------- */

static void test_dtypes_are_the_ones_pandas_shows(void)
{
    static const struct {
        frame_field field;
        const char *dtype;
    } cases[] = {
        {{.type = FRAME_BOOL}, "bool"},
        {{.type = FRAME_INT8}, "int8"},
        {{.type = FRAME_UINT64}, "uint64"},
        {{.type = FRAME_FLOAT32}, "float32"},
        {{.type = FRAME_UTF8}, "object"},
        {{.type = FRAME_DATE32}, "object"},
        {{.type = FRAME_TIMESTAMP, .unit = FRAME_NANO}, "datetime64[ns]"},
        {{.type = FRAME_TIMESTAMP, .unit = FRAME_MICRO, .timezone = "UTC"}, "datetime64[us, UTC]"},
        {{.type = FRAME_CATEGORY, .index_type = FRAME_INT8}, "category"},
        {{.type = FRAME_INT64, .pandas_dtype = "Int64"}, "Int64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char dtype[64];
        frame_pandas_dtype(&cases[i].field, dtype, sizeof dtype);
        if (strcmp(dtype, cases[i].dtype) != 0)
            fprintf(stderr, "  case %zu: %s, pandas shows %s\n", i, dtype, cases[i].dtype);
        CHECK(strcmp(dtype, cases[i].dtype) == 0);
    }
}

/* What pandas 2 prints for df.info() of
 *   pd.DataFrame({"i": range(1, 11), "n": [nan, 2, 3, nan, 5, 6, nan, 8, 9, nan],
 *                 "s": list("babcabbcaa"), "c": pd.Categorical(list("babcabbcaa"))}) */
static const char known_info[] =
    "<class 'pandas.core.frame.DataFrame'>\n"
    "RangeIndex: 10 entries, 0 to 9\n"
    "Data columns (total 4 columns):\n"
    " #   Column  Non-Null Count  Dtype   \n"
    "---  ------  --------------  -----   \n"
    " 0   i       10 non-null     int64   \n"
    " 1   n       6 non-null      float64 \n"
    " 2   s       10 non-null     object  \n"
    " 3   c       10 non-null     category\n"
    "dtypes: category(1), float64(1), int64(1), object(1)\n"
    "memory usage: 514.0+ bytes\n";

static void test_info_text_is_what_pandas_prints(void)
{
    frame *f = build_known(4);
    if (!f)
        return;
    buf b = {0};
    frame_pandas_info_text(f, &b);
    bool same = !b.failed && b.len == strlen(known_info) && memcmp(b.data, known_info, b.len) == 0;
    if (!same)
        fprintf(stderr, "  got:\n%.*s", (int)b.len, b.data);
    CHECK(same);
    buf_free(&b);
    frame_release(f);
}

/* What pandas 3 prints for the same frame written to Parquet and read back: str strings
 * counted in Arrow (8 offset bytes a row and the characters), categories a str Index. */
static const char known_info_3[] =
    "<class 'pandas.DataFrame'>\n"
    "RangeIndex: 10 entries, 0 to 9\n"
    "Data columns (total 4 columns):\n"
    " #   Column  Non-Null Count  Dtype   \n"
    "---  ------  --------------  -----   \n"
    " 0   i       10 non-null     int64   \n"
    " 1   n       6 non-null      float64 \n"
    " 2   s       10 non-null     str     \n"
    " 3   c       10 non-null     category\n"
    "dtypes: category(1), float64(1), int64(1), str(1)\n"
    "memory usage: 419.0 bytes\n";

static void test_info_text_is_what_pandas_3_prints(void)
{
    frame *f = build_known(4);
    if (!f)
        return;
    buf b = {0};
    frame_pandas_info_text_as(f, FRAME_PANDAS_3, &b);
    bool same = !b.failed && b.len == strlen(known_info_3) &&
                memcmp(b.data, known_info_3, b.len) == 0;
    if (!same)
        fprintf(stderr, "  got:\n%.*s", (int)b.len, b.data);
    CHECK(same);
    buf_reset(&b);
    frame_pandas_info_text_as(f, FRAME_PANDAS_2, &b);
    CHECK(!b.failed && b.len == strlen(known_info) && memcmp(b.data, known_info, b.len) == 0);
    char dtype[16];
    frame_pandas_dtype_as(&f->fields[2], FRAME_PANDAS_3, dtype, sizeof dtype);
    CHECK(strcmp(dtype, "str") == 0);
    frame_pandas_dtype_as(&f->fields[2], FRAME_PANDAS_2, dtype, sizeof dtype);
    CHECK(strcmp(dtype, "object") == 0);
    frame_pandas major = FRAME_PANDAS_3;
    CHECK(frame_pandas_parse("2", &major) && major == FRAME_PANDAS_2);
    CHECK(!frame_pandas_parse("4", &major) && !frame_pandas_parse("", &major));
    buf_free(&b);
    frame_release(f);
}

/* Found by fuzz_arrow: the earliest nanosecond timestamps overflowed while their fraction of a
 * second was computed (undefined behaviour; UBSan reports it). */
static void test_the_extreme_timestamps_print_without_overflow(void)
{
    buf b;
    buf_init(&b);
    frame_put_timestamp(&b, INT64_MIN, FRAME_NANO, false, 'T');
    CHECK(b.data && strcmp(b.data, "1677-09-21T00:12:43.145224192") == 0);
    buf_reset(&b);
    frame_put_timestamp(&b, INT64_MAX, FRAME_NANO, true, ' ');
    CHECK(b.data && strcmp(b.data, "2262-04-11 23:47:16.854775807+00:00") == 0);
    buf_reset(&b);
    frame_put_timestamp(&b, -1, FRAME_MILLI, false, 'T');
    CHECK(b.data && strcmp(b.data, "1969-12-31T23:59:59.999") == 0);
    buf_free(&b);
}

int main(void)
{
    RUN(test_category_codes_are_stable_and_sorted_at_the_end);
    RUN(test_many_categories_grow_the_table);
    RUN(test_the_builder_cuts_batches_and_keeps_every_row);
    RUN(test_categories_from_strings_are_sorted_with_narrow_codes);
    RUN(test_timestamps_of_another_unit_are_converted);
    RUN(test_a_slice_of_the_wrong_type_or_a_bad_field_is_refused);
    RUN(test_memory_bytes_count_what_the_frame_holds);
    RUN(test_a_row_slice_keeps_dtypes_and_index);
    RUN(test_dtypes_are_the_ones_pandas_shows);
    RUN(test_info_text_is_what_pandas_prints);
    RUN(test_info_text_is_what_pandas_3_prints);
    RUN(test_the_extreme_timestamps_print_without_overflow);
    return CHECK_DONE();
}
