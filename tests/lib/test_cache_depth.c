/* test_cache_depth.c -- the cache holds JSON no deeper than its limit (json_max_depth): what
 * aside_op and aside_put refuse, what a restart replays at the limit, and a journal whose
 * records were damaged into deep ones, which replay skips without crashing. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cache_test.h"
#include "store/store.h"
#include "value/value.h"

static char *arrays_text(size_t depth)
{
    char *text = malloc(2 * depth + 1);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    return text;
}

/* {"value": <depth arrays>} */
static char *value_args(size_t depth)
{
    char *inner = arrays_text(depth);
    size_t len = strlen(inner) + 16;
    char *args = malloc(len);
    snprintf(args, len, "{\"value\": %s}", inner);
    free(inner);
    return args;
}

static aside_cache *open_limited(fixture *f, unsigned depth)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f->cache;
    cfg.sor_dir = f->sor;
    cfg.memory_limit_bytes = 1 << 24;
    cfg.disk_limit_bytes = 1 << 24;
    cfg.json_max_depth = depth;
    aside_cache *c = NULL;
    aside_error err;
    if (aside_cache_open(&cfg, &c, &err) != ASIDE_OK) {
        fprintf(stderr, "open failed: %s\n", err.message);
        exit(1);
    }
    return c;
}

static bool too_deep(aside_status st, const aside_error *err)
{
    return st == ASIDE_ERR_INVALID && strcmp(err->code, "too_deep") == 0;
}

static void test_a_limit_past_the_most_is_refused_at_open(void)
{
    fixture f;
    fixture_init(&f);
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = f.cache;
    cfg.sor_dir = f.sor;
    cfg.json_max_depth = VALUE_JSON_MAX_DEPTH + 1;
    aside_cache *c = NULL;
    aside_error err;
    CHECK(aside_cache_open(&cfg, &c, &err) == ASIDE_ERR_INVALID && !c);
    fixture_done(&f);
}

static void test_operations_and_puts_hold_the_limit_and_a_restart_keeps_what_was_taken(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_limited(&f, 50);
    aside_error err;
    char *at = value_args(49), *past = value_args(50), *doc = arrays_text(51);
    CHECK(op_status(c, "l", "list_push", at, &err) == ASIDE_OK);
    CHECK(too_deep(op_status(c, "l", "list_push", past, &err), &err));
    aside_read_options options = {.type = "list"};
    CHECK(too_deep(aside_put(c, "p", &options, doc, strlen(doc), &err), &err));
    options.type = "json";
    CHECK(too_deep(aside_put(c, "p.json", &options, doc, strlen(doc), &err), &err));
    CHECK(op_status(c, "\xff\xfe", "list_push", "{\"value\": 1}", &err) == ASIDE_ERR_INVALID &&
          strcmp(err.code, "bad_utf8") == 0);
    aside_cache_close(c);
    c = open_limited(&f, 50);
    CHECK(op_answers(c, "l", "list_length", NULL, "1"));
    aside_cache_close(c);
    /* a lower limit later: what the journal holds still replays, and stays readable */
    c = open_limited(&f, 10);
    CHECK(op_answers(c, "l", "list_length", NULL, "1"));
    CHECK(too_deep(op_status(c, "l", "list_push", at, &err), &err));
    aside_cache_close(c);
    free(at);
    free(past);
    free(doc);
    fixture_done(&f);
}

static void no_visit(void *ctx, const char *payload, size_t len)
{
    (void)ctx, (void)payload, (void)len;
}

/* Append text as one record to the journal of the cache at root (closed). */
static void append_record(const char *root, const char *text)
{
    journal *j = NULL;
    aside_error err;
    CHECK(journal_open(root, ASIDE_FSYNC_NEVER, no_visit, NULL, &j, &err) == ASIDE_OK);
    if (j)
        CHECK(journal_append(j, text, strlen(text), NULL, &err) == ASIDE_OK);
    journal_close(j);
}

static void test_replay_skips_records_damaged_into_deep_ones(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_limited(&f, 0);
    CHECK(op_status(c, "kept", "list_push", "{\"value\": 1}", NULL) == ASIDE_OK);
    aside_cache_close(c);
    size_t deep = JSON_PARSER_MAX_DEPTH - 4, deeper = JSON_PARSER_MAX_DEPTH + 100;
    char *within = arrays_text(deep), *beyond = arrays_text(deeper);
    size_t size = strlen(beyond) + 128;
    char *record = malloc(size);
    snprintf(record, size, "{\"k\": \"op\", \"o\": \"list_push\", \"a\": {\"value\": %s}}", within);
    append_record(f.cache, record);
    snprintf(record, size, "{\"k\": \"snap\", \"t\": \"json\", \"v\": %s, \"x\": 0}", within);
    append_record(f.cache, record);
    snprintf(record, size, "{\"k\": \"set\", \"o\": \"json_set\", \"a\": {\"pointer\": \"\", "
             "\"value\": %s}}", beyond);
    append_record(f.cache, record);
    append_record(f.cache, "{\"k\": \"after\", \"o\": \"counter_increment\", \"a\": {}}");
    CHECK(file_size(f.cache, ".aside/journal") > (long)(2 * deep + 2 * deeper));
    c = open_limited(&f, 0);
    CHECK(op_answers(c, "kept", "list_range", NULL, "[1]"));
    CHECK(op_answers(c, "after", "counter_get", NULL, "1"));
    CHECK(op_answers(c, "op", "list_length", NULL, "0"));
    aside_value *v = NULL;
    CHECK(aside_get(c, "snap", &v, NULL, NULL) == ASIDE_ERR_NOT_FOUND);
    CHECK(aside_get(c, "set", &v, NULL, NULL) == ASIDE_ERR_NOT_FOUND);
    aside_cache_close(c);
    free(record);
    free(within);
    free(beyond);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_a_limit_past_the_most_is_refused_at_open);
    RUN(test_operations_and_puts_hold_the_limit_and_a_restart_keeps_what_was_taken);
    RUN(test_replay_skips_records_damaged_into_deep_ones);
    return CHECK_DONE();
}
