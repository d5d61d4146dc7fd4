/* test_spec.c -- reading the data spec: what a good spec resolves to, and for each kind of
 * mistake, the message and the line and column it points at. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "spec/spec.h"

static spec *load(const char *text, aside_error *err)
{
    spec *s = NULL;
    if (spec_load_text("t.yaml", text, strlen(text), &s, err) != ASIDE_OK)
        return NULL;
    return s;
}

/* text is refused with a message at "t.yaml:line:column:" that mentions needle. */
static bool refused_at(const char *text, int line, int column, const char *needle)
{
    aside_error err;
    spec *s = load(text, &err);
    char where[64];
    snprintf(where, sizeof where, "t.yaml:%d:%d: ", line, column);
    bool ok = !s && err.status == ASIDE_ERR_INVALID && strncmp(err.message, where,
                                                               strlen(where)) == 0 &&
              strstr(err.message, needle) && strcmp(err.code, "bad_spec") == 0;
    if (!ok)
        fprintf(stderr, "  expected %s...%s, got: %s\n", where, needle,
                s ? "(loaded)" : err.message);
    spec_free(s);
    return ok;
}

static const char GOOD[] =
    "version: 1\n"
    "preload_threads: 2\n"
    "defaults: {storage: sd, ttl: 1h}\n"
    "datasets:\n"
    "  - key: sales/2024.parquet\n"
    "    columns: {region: object, amount: float64, day: \"datetime64[ns,UTC]\"}\n"
    "    pin: yes\n"
    "    revalidate: 10m\n"
    "  - glob: \"logs/*.json\"\n"
    "    type: json\n"
    "    ttl: 0\n"
    "  - prefix: raw/2024/\n"
    "    storage: s3\n"
    "    preload: false\n"
    "    ttl: 0\n"
    "views:\n"
    "  - name: totals.parquet\n"
    "    query: SELECT region, sum(amount) AS total FROM \"sales/2024.parquet\" GROUP BY 1\n"
    "functions:\n"
    "  - summarize\n"
    "  - {name: clean, storage: s3}\n";

static void test_a_good_spec_resolves_every_setting_with_its_defaults(void)
{
    aside_error err;
    spec *s = load(GOOD, &err);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "  %s\n", err.message);
        return;
    }
    CHECK(s->version == 1 && s->preload_threads == 2);
    CHECK(s->dataset_count == 3 && s->view_count == 1 && s->function_count == 2);
    const spec_dataset *d = &s->datasets[0];
    CHECK(d->match == SPEC_KEY && strcmp(d->pattern, "sales/2024.parquet") == 0);
    CHECK(d->type == NULL && strcmp(d->storage, "sd") == 0);
    CHECK(d->ttl_ms == 3600000 && d->revalidate_ms == 600000 && d->pin && d->preload);
    CHECK(d->column_count == 3 && strcmp(d->columns[1].name, "amount") == 0);
    CHECK(strcmp(d->columns[2].dtype, "datetime64[ns, UTC]") == 0); /* canonical spacing */
    CHECK(d->line == 5);
    d = &s->datasets[1];
    CHECK(d->match == SPEC_GLOB && strcmp(d->type, "json") == 0 && d->ttl_ms == 0);
    d = &s->datasets[2];
    CHECK(d->match == SPEC_PREFIX && strcmp(d->storage, "s3") == 0 && !d->preload);
    CHECK(strcmp(s->views[0].name, "totals.parquet") == 0 && s->views[0].line == 17);
    CHECK(strstr(s->views[0].query, "GROUP BY 1") != NULL);
    CHECK(strcmp(s->functions[0].name, "summarize") == 0 && s->functions[0].storage == NULL);
    CHECK(strcmp(s->functions[1].storage, "s3") == 0 && s->functions[1].line == 21);
    spec_free(s);
}

static void test_the_smallest_spec_is_a_version(void)
{
    aside_error err;
    spec *s = load("version: 1\n", &err);
    CHECK(s && s->dataset_count == 0 && s->view_count == 0 && s->function_count == 0);
    CHECK(s && s->preload_threads == 4);
    spec_free(s);
    s = load("version: 1\ndatasets:\nviews: []\n", &err);
    CHECK(s && s->dataset_count == 0);
    spec_free(s);
}

static void test_json_shows_the_resolved_spec(void)
{
    aside_error err;
    spec *s = load(GOOD, &err);
    char *json = NULL;
    CHECK(s && spec_to_json(s, &json, &err) == ASIDE_OK && json);
    if (json) {
        CHECK(strstr(json, "\"key\":\"sales/2024.parquet\"") != NULL);
        CHECK(strstr(json, "\"ttl_seconds\":3600") != NULL);
        CHECK(strstr(json, "\"revalidate_seconds\":600") != NULL);
        CHECK(strstr(json, "\"glob\":\"logs/*.json\"") != NULL);
        CHECK(strstr(json, "\"day\":\"datetime64[ns, UTC]\"") != NULL);
        CHECK(strstr(json, "\"name\":\"totals.parquet\"") != NULL);
        CHECK(strstr(json, "\"line\":17") != NULL);
    }
    free(json);
    spec_free(s);
}

static void test_yaml_syntax_errors_point_at_their_line(void)
{
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n   bad: [\n", 4, 4, "invalid YAML"));
    CHECK(refused_at("version: 1\nviews: \"unterminated\n", 3, 1, "invalid YAML"));
    CHECK(refused_at("", 1, 1, "empty"));
    CHECK(refused_at("version: 1\n---\nversion: 1\n", 2, 1, "one YAML document"));
}

static void test_version_is_required_and_must_be_known(void)
{
    CHECK(refused_at("datasets: []\n", 1, 1, "missing field \"version\""));
    CHECK(refused_at("version: 2\n", 1, 10, "version 2 is not known"));
    CHECK(refused_at("version: one\n", 1, 10, "whole number"));
    CHECK(refused_at("- version: 1\n", 1, 1, "must be a mapping"));
}

static void test_unknown_and_duplicate_fields_are_named(void)
{
    CHECK(refused_at("version: 1\ndataset: []\n", 2, 1, "unknown field \"dataset\""));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    tll: 1h\n", 4, 5,
                     "unknown field \"tll\" in a dataset"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    ttl: 1h\n    ttl: 2h\n", 5, 5,
                     "duplicate field \"ttl\" (first at line 4)"));
    CHECK(refused_at("version: 1\ndefaults: {colour: red}\n", 2, 12,
                     "unknown field \"colour\" in defaults"));
}

static void test_a_dataset_names_its_keys_exactly_one_way(void)
{
    CHECK(refused_at("version: 1\ndatasets:\n  - type: json\n", 3, 5,
                     "needs one of key, glob or prefix"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    glob: \"*.json\"\n", 4, 11,
                     "not both key and glob"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: ../etc/passwd\n", 3, 10,
                     "not a valid key"));
    CHECK(refused_at("version: 1\ndatasets:\n  - glob: logs/a.json\n", 3, 11, "no wildcard"));
    CHECK(refused_at("version: 1\ndatasets:\n  - prefix: /\n", 3, 13, "not the whole"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: {a: 1}\n", 3, 10, "single value"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key:\n", 3, 9, "has no value"));
    CHECK(refused_at("version: 1\ndatasets: {key: a}\n", 2, 11, "must be a list"));
}

static void test_settings_of_the_wrong_kind_are_refused(void)
{
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    type: table\n", 4, 11,
                     "type must be one of bytes, json, frame"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    storage: gcs\n", 4, 14,
                     "storage must be one of sd, s3"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    ttl: 1 hour\n", 4, 10,
                     "not a duration"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    revalidate: -5\n", 4, 17,
                     "not a duration"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    pin: maybe\n", 4, 10,
                     "true or false"));
    CHECK(refused_at("version: 1\npreload_threads: 0\n", 2, 18, "from 1 to 64"));
    CHECK(refused_at("version: 1\ndefaults: {ttl: soon}\n", 2, 17, "not a duration"));
}

static void test_columns_need_known_dtypes_on_frames_that_are_preloaded(void)
{
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.parquet\n"
                     "    columns: {x: int64, y: float}\n", 4, 28, "unknown dtype \"float\""));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.parquet\n"
                     "    columns: {x: \"datetime64[ps]\"}\n", 4, 18, "unknown dtype"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n    columns: {x: int64}\n", 4, 14,
                     "add type: frame"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.parquet\n"
                     "    columns: {x: int64, x: int8}\n", 4, 25, "listed twice"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.parquet\n    preload: no\n    pin: yes\n",
                     3, 5, "pin applies to keys aside preloads"));
    aside_error err;
    spec *s = load("version: 1\ndatasets:\n  - key: a.json\n    type: frame\n"
                   "    columns: {x: Int64, t: 'datetime64[us, America/New_York]'}\n"
                   "  - glob: '*.csv'\n    columns: {y: category}\n", &err);
    CHECK(s != NULL); /* a glob's keys are checked one by one when loaded */
    spec_free(s);
}

static void test_duplicates_and_collisions_point_at_the_second(void)
{
    CHECK(refused_at("version: 1\ndatasets:\n  - key: a.json\n  - key: b.json\n  - key: a.json\n",
                     5, 5, "declared twice (first at line 3)"));
    CHECK(refused_at("version: 1\ndatasets:\n  - key: t.parquet\nviews:\n"
                     "  - name: t.parquet\n    query: SELECT 1\n", 5, 11,
                     "also a key of the dataset at line 3"));
    CHECK(refused_at("version: 1\ndatasets:\n  - prefix: out/\nviews:\n"
                     "  - name: out/t.parquet\n    query: SELECT 1\n", 5, 11,
                     "also a key of the dataset at line 3"));
    CHECK(refused_at("version: 1\nviews:\n  - {name: v, query: SELECT 1}\n"
                     "  - {name: v, query: SELECT 2}\n", 4, 12, "declared twice"));
    CHECK(refused_at("version: 1\nviews:\n  - name: v\n", 3, 5, "needs a query"));
    CHECK(refused_at("version: 1\nfunctions: [ok, not-ok]\n", 2, 17, "Python identifier"));
    CHECK(refused_at("version: 1\nfunctions:\n  - f\n  - name: f\n", 4, 11,
                     "declared twice (first at line 3)"));
}

static void test_dtype_names_are_pandas_own(void)
{
    char canonical[96];
    static const char *const good[] = {"int64", "uint8", "float32", "bool", "object", "string",
                                       "category", "Int64", "UInt16", "Float64", "boolean",
                                       "datetime64[ns]", "datetime64[s]", "timedelta64[ms]",
                                       "datetime64[us, Europe/Paris]", NULL};
    for (size_t i = 0; good[i]; i++)
        CHECK(spec_dtype_valid(good[i], canonical, sizeof canonical));
    static const char *const bad[] = {"int", "float", "str", "Int128", "datetime64",
                                      "datetime64[ns", "timedelta64[ns, UTC]",
                                      "datetime64[ns, ]", "datetime64[ns, UTC]x", NULL};
    for (size_t i = 0; bad[i]; i++)
        CHECK(!spec_dtype_valid(bad[i], canonical, sizeof canonical));
    CHECK(spec_dtype_valid("datetime64[ns,   UTC]", canonical, sizeof canonical));
    CHECK(strcmp(canonical, "datetime64[ns, UTC]") == 0);
}

static void test_datasets_match_their_keys(void)
{
    spec_dataset glob = {.match = SPEC_GLOB, .pattern = "logs/*.json"};
    spec_dataset prefix = {.match = SPEC_PREFIX, .pattern = "raw/2024/"};
    spec_dataset key = {.match = SPEC_KEY, .pattern = "a.csv"};
    CHECK(spec_dataset_matches(&glob, "logs/x.json"));
    CHECK(!spec_dataset_matches(&glob, "logs/sub/x.json")); /* "*" stays within a folder */
    CHECK(!spec_dataset_matches(&glob, "logs/x.csv"));
    CHECK(spec_dataset_matches(&prefix, "raw/2024/deep/x.bin"));
    CHECK(!spec_dataset_matches(&prefix, "raw/2023/x.bin"));
    CHECK(spec_dataset_matches(&key, "a.csv") && !spec_dataset_matches(&key, "a.csv.gz"));
    size_t len = 0;
    spec_dataset_list_prefix(&glob, &len);
    CHECK(len == strlen("logs/"));
    spec_dataset_list_prefix(&prefix, &len);
    CHECK(len == strlen("raw/2024/"));
}

static void test_equal_compares_every_setting(void)
{
    aside_error err;
    spec *a = load(GOOD, &err), *b = load(GOOD, &err);
    CHECK(a && b && spec_dataset_equal(&a->datasets[0], &b->datasets[0]));
    if (a && b) {
        b->datasets[0].ttl_ms++;
        CHECK(!spec_dataset_equal(&a->datasets[0], &b->datasets[0]));
        CHECK(spec_view_equal(&a->views[0], &b->views[0]));
        CHECK(!spec_function_equal(&a->functions[0], &b->functions[1]));
    }
    spec_free(a);
    spec_free(b);
}

static void test_files_are_read_and_a_missing_one_is_an_io_error(void)
{
    char path[] = "/tmp/test_spec_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char text[] = "version: 1\ndatasets:\n  - key: x.json\n    ttl: 90\n";
    CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    close(fd);
    spec *s = NULL;
    aside_error err;
    CHECK(spec_load_file(path, &s, &err) == ASIDE_OK && s && s->datasets[0].ttl_ms == 90000);
    CHECK(s && strcmp(s->path, path) == 0);
    spec_free(s);
    unlink(path);
    s = NULL;
    CHECK(spec_load_file(path, &s, &err) == ASIDE_ERR_IO && !s);
    CHECK(strstr(err.message, path) != NULL);
}

/* The example in the repository (examples/spec.yaml) is a valid spec. */
static void test_the_example_spec_loads(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *tests = strstr(path, "/tests/spec/");
    if (!tests) {
        fprintf(stderr, "  cannot find the repository from %s\n", __FILE__);
        CHECK(tests != NULL);
        return;
    }
    snprintf(tests, sizeof path - (size_t)(tests - path), "/examples/spec.yaml");
    spec *s = NULL;
    aside_error err;
    CHECK(spec_load_file(path, &s, &err) == ASIDE_OK);
    if (!s) {
        fprintf(stderr, "  %s\n", err.message);
        return;
    }
    CHECK(s->dataset_count == 3 && s->view_count == 1 && s->function_count == 1);
    spec_free(s);
}

int main(void)
{
    RUN(test_a_good_spec_resolves_every_setting_with_its_defaults);
    RUN(test_the_smallest_spec_is_a_version);
    RUN(test_json_shows_the_resolved_spec);
    RUN(test_yaml_syntax_errors_point_at_their_line);
    RUN(test_version_is_required_and_must_be_known);
    RUN(test_unknown_and_duplicate_fields_are_named);
    RUN(test_a_dataset_names_its_keys_exactly_one_way);
    RUN(test_settings_of_the_wrong_kind_are_refused);
    RUN(test_columns_need_known_dtypes_on_frames_that_are_preloaded);
    RUN(test_duplicates_and_collisions_point_at_the_second);
    RUN(test_dtype_names_are_pandas_own);
    RUN(test_datasets_match_their_keys);
    RUN(test_equal_compares_every_setting);
    RUN(test_files_are_read_and_a_missing_one_is_an_io_error);
    RUN(test_the_example_spec_loads);
    return CHECK_DONE();
}
