/* test_routes.c -- the route table is whole and is the one source of what it lists: every row
 * has a handler, names and aliases are unique (but the two "head" rows the head rule tells
 * apart), every collection operation has a row, the unknown-function message lists every name,
 * and README's function tables are what the table prints (argv[1]: README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/routes.h"
#include "value/value.h"

static void test_every_row_has_a_name_a_handler_and_a_line_in_the_docs(void)
{
    size_t count = 0;
    const route *rows = routes_table(&count);
    CHECK(count > 50);
    for (size_t i = 0; i < count; i++) {
        CHECK(rows[i].name && *rows[i].name && rows[i].run);
        CHECK(rows[i].doc < ROUTE_DOC_COUNT);
        /* a row without help joins the line of the row before, in the same table */
        CHECK(rows[i].help || (i > 0 && rows[i - 1].doc == rows[i].doc));
        if (rows[i].help)
            CHECK(*rows[i].help);
    }
}

static void test_names_and_aliases_are_unique_but_head(void)
{
    size_t count = 0;
    const route *rows = routes_table(&count);
    for (size_t i = 0; i < count; i++) {
        const char *names[ROUTE_MAX_ALIASES + 1] = {rows[i].name};
        for (size_t k = 0; rows[i].aliases[k]; k++)
            names[k + 1] = rows[i].aliases[k];
        for (size_t n = 0; n <= ROUTE_MAX_ALIASES && names[n]; n++) {
            const route *found = routes_find(names[n], rows[i].frame_head);
            if (found != &rows[i])
                fprintf(stderr, "  %s is also another row's\n", names[n]);
            CHECK(found == &rows[i]);
        }
    }
    const route *telemetry = routes_find("head", false), *first_rows = routes_find("head", true);
    CHECK(telemetry && first_rows && telemetry != first_rows);
    CHECK(telemetry && routes_find("cache_head", false) == telemetry);
    CHECK(routes_find("cache_head", true) == NULL);
    for (size_t i = 0; i < count; i++)
        CHECK(!rows[i].frame_head || strcmp(rows[i].name, "head") == 0);
}

static void test_every_collection_operation_is_a_row_and_only_those_ask_it(void)
{
    for (size_t i = 0; collection_op_name(i); i++) {
        const route *r = routes_find(collection_op_name(i), false);
        if (!r)
            fprintf(stderr, "  no row for %s\n", collection_op_name(i));
        CHECK(r && r->blocking == ROUTE_AS_OPERATION);
    }
    size_t count = 0;
    const route *rows = routes_table(&count);
    for (size_t i = 0; i < count; i++) {
        if (rows[i].blocking != ROUTE_AS_OPERATION)
            continue;
        bool known = false;
        for (size_t k = 0; collection_op_name(k) && !known; k++)
            known = strcmp(collection_op_name(k), rows[i].name) == 0;
        CHECK(known);
    }
}

static void test_the_unknown_function_message_lists_every_row(void)
{
    buf b = {0};
    routes_unknown_message(&b, "explode");
    CHECK(!b.failed && b.data && strstr(b.data, "\"explode\""));
    size_t count = 0;
    const route *rows = routes_table(&count);
    for (size_t i = 0; b.data && i < count; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, " %s,", rows[i].name);
        bool last = i == count - 1 && !rows[i].aliases[0];
        if (!strstr(b.data, needle) && !last)
            fprintf(stderr, "  %s is not listed\n", rows[i].name);
        CHECK(strstr(b.data, needle) || last);
        for (size_t k = 0; rows[i].aliases[k]; k++)
            CHECK(strstr(b.data, rows[i].aliases[k]));
    }
    CHECK(b.data && strstr(b.data, " function_create,"));
    buf_free(&b);
}

/* Every row asks for one scope at least; rows sharing a line of the docs ask the same; the
 * functions the scopes are named after ask for theirs. */
static void test_every_row_says_its_scope(void)
{
    size_t count = 0;
    const route *rows = routes_table(&count);
    for (size_t i = 0; i < count; i++) {
        CHECK(rows[i].access & (ROUTE_READ | ROUTE_WRITE | ROUTE_ADMIN));
        if (!rows[i].help)
            CHECK(rows[i].access == rows[i - 1].access);
    }
    struct {
        const char *name;
        unsigned    access;
    } cases[] = {
        {"read", ROUTE_READ},           {"stats_cache", ROUTE_READ | ROUTE_EVERY_KEY},
        {"put", ROUTE_WRITE},           {"write", ROUTE_WRITE},
        {"update", ROUTE_WRITE},        {"delete", ROUTE_WRITE},
        {"list_push", ROUTE_WRITE},     {"list_range", ROUTE_READ},
        {"function_create", ROUTE_ADMIN}, {"function_register", ROUTE_ADMIN},
        {"function_delete", ROUTE_ADMIN}, {"compact", ROUTE_ADMIN},
        {"reload_spec", ROUTE_ADMIN},   {"evict", ROUTE_ADMIN},
        {"sql", ROUTE_READ | ROUTE_EVERY_KEY | ROUTE_ADMIN_INTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const route *r = routes_find(cases[i].name, false);
        CHECK(r && r->access == cases[i].access);
    }
    CHECK(routes_scopes(NULL, NULL) == TOKENS_READ); /* a user's function */
}

static void test_own_functions_include_every_family(void)
{
    const char *names[] = {"read", "cache_create", "sql", "list_push", "expire", "free",
                           "function_create", "functions", "reload_spec", "head", NULL};
    for (size_t i = 0; names[i]; i++)
        CHECK(routes_has(names[i]));
    CHECK(!routes_has("echo") && !routes_has("READ"));
}

/* The file at path, NUL-terminated (free it), or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return b.failed ? NULL : b.data;
}

static void test_readme_tables_are_what_the_table_prints(const char *readme_path)
{
    char *readme = readme_path ? read_file(readme_path) : NULL;
    CHECK(readme != NULL);
    buf md = {0};
    routes_markdown(&md);
    CHECK(!md.failed && md.data);
    size_t tables = 0;
    for (char *at = md.data; readme && at && *at; tables++) {
        char *end = strstr(at, "\n\n");
        if (end)
            end[1] = '\0'; /* one table, with its last newline */
        if (!strstr(readme, at))
            fprintf(stderr, "  README lacks this table, or has it otherwise:\n%s\n", at);
        CHECK(strstr(readme, at) != NULL);
        at = end ? end + 2 : NULL;
    }
    CHECK(tables == ROUTE_DOC_COUNT);
    buf_free(&md);
    free(readme);
}

int main(int argc, char **argv)
{
    RUN(test_every_row_has_a_name_a_handler_and_a_line_in_the_docs);
    RUN(test_names_and_aliases_are_unique_but_head);
    RUN(test_every_collection_operation_is_a_row_and_only_those_ask_it);
    RUN(test_the_unknown_function_message_lists_every_row);
    RUN(test_own_functions_include_every_family);
    RUN(test_every_row_says_its_scope);
    int before = check_failures;
    test_readme_tables_are_what_the_table_prints(argc > 1 ? argv[1] : NULL);
    printf("%s test_readme_tables_are_what_the_table_prints\n",
           check_failures == before ? "ok  " : "FAIL");
    return CHECK_DONE();
}
