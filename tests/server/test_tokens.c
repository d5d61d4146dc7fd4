/* test_tokens.c -- the tokens file and the tokens in force: a good file gives each line's name,
 * scopes and prefixes; every malformed line (a secret in clear, another hash format, an unknown
 * scope, a repeated name or secret, a prefix leaving the keys) is refused with its line; a
 * secret matches its token only; a reload replaces the set, a bad file keeps it, and a set a
 * call holds outlives a reload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "server/tokens.h"

/* sha256("abc"), the FIPS 180-2 example. */
#define ABC_HASH "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char *hash_line(const char *name, const char *secret, const char *rest)
{
    char hash[TOKENS_HASH_TEXT_BYTES];
    tokens_hash_text(secret, strlen(secret), hash);
    static char line[512];
    snprintf(line, sizeof line, "%s %s %s\n", name, hash, rest);
    return line;
}

static tokens_set *parse(const char *text, aside_error *err)
{
    return tokens_set_parse(text, strlen(text), "tokens", err);
}

static void test_the_hash_is_sha256_in_hex(void)
{
    char text[TOKENS_HASH_TEXT_BYTES];
    tokens_hash_text("abc", 3, text);
    CHECK(strcmp(text, ABC_HASH) == 0);
}

static void test_a_good_file_gives_names_scopes_and_prefixes(void)
{
    char text[2048] = "# name hash scopes prefixes\n\n   \t\n";
    strcat(text, hash_line("reports", "secret-of-reports", "read reports/ shared/  # a comment"));
    strcat(text, hash_line("ops.team-1_x", "secret-of-ops", "read,write,admin\r"));
    strcat(text, hash_line("loader", "secret-of-loader", "write,read"));
    aside_error err;
    tokens_set *s = parse(text, &err);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "  %s\n", err.message);
        return;
    }
    CHECK(tokens_set_count(s) == 3);
    const tokens_entry *e = tokens_set_match(s, "secret-of-reports", 17);
    CHECK(e && strcmp(e->name, "reports") == 0 && e->scopes == TOKENS_READ);
    CHECK(e && e->prefix_count == 2 && strcmp(e->prefixes[1], "shared/") == 0);
    CHECK(e && tokens_entry_allows_key(e, "reports/2024/a.json", 19));
    CHECK(e && !tokens_entry_allows_key(e, "report", 6));
    CHECK(e && !tokens_entry_allows_key(e, "other/reports/a", 15));
    e = tokens_set_match(s, "secret-of-ops", 13);
    CHECK(e && strcmp(e->name, "ops.team-1_x") == 0 && e->scopes == TOKENS_EVERY_SCOPE);
    CHECK(e && e->prefix_count == 0 && tokens_entry_allows_key(e, "anything", 8));
    e = tokens_set_match(s, "secret-of-loader", 16);
    CHECK(e && e->scopes == (TOKENS_READ | TOKENS_WRITE));
    CHECK(!tokens_set_match(s, "secret-of-loade", 15));
    CHECK(!tokens_set_match(s, "secret-of-loaderx", 17));
    CHECK(!tokens_set_match(s, "", 0));
    tokens_set_release(s);
}

static void test_an_empty_file_is_a_set_with_no_token(void)
{
    aside_error err;
    tokens_set *s = parse("# nobody yet\n", &err);
    CHECK(s && tokens_set_count(s) == 0 && !tokens_set_match(s, "x", 1));
    tokens_set_release(s);
}

/* Each text is refused, and the message names its line and says what. */
static void test_every_malformed_line_is_refused_with_its_line(void)
{
    static char good[256];
    snprintf(good, sizeof good, "%s", hash_line("first", "s1", "read"));
    struct {
        const char *line;
        const char *says;
    } cases[] = {
        {"plain my-secret-in-clear read\n", "sha256"},
        {"md5 md5:900150983cd24fb0d6963f7d28e17f72 read\n", "sha256"},
        {"bcrypt $2b$12$abcdefghijklmnopqrstuu5ZTT8dUQ8cnHqoZb4kV1u9ZQ2qUKVyS read\n", "sha256"},
        {"bare ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad read\n",
         "sha256"},
        {"short sha256:ba7816bf8f01cfea read\n", "sha256"},
        {"long " ABC_HASH "00 read\n", "sha256"},
        {"nothex sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad read\n",
         "sha256"},
        {"upper SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad read\n",
         "sha256"},
        {"noscope " ABC_HASH "\n", "name, a hash"},
        {"unknown " ABC_HASH " read,delete\n", "scopes"},
        {"empty " ABC_HASH " read,\n", "scopes"},
        {"first " ABC_HASH " read\n", "another line"},
        {"bad/name " ABC_HASH " read\n", "name"},
        {"abs " ABC_HASH " read /etc/\n", "prefix"},
        {"up " ABC_HASH " read reports/../secret/\n", "prefix"},
        {"dot " ABC_HASH " read ./x\n", "prefix"},
        {"double " ABC_HASH " read a//b\n", "prefix"},
        {"many " ABC_HASH " read a b c d e f g h i j k l m n o p q\n", "prefixes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s# a comment\n%s", good, cases[i].line);
        aside_error err;
        tokens_set *s = parse(text, &err);
        bool ok = !s && strstr(err.message, "tokens:3:") && strstr(err.message, cases[i].says);
        if (!ok)
            fprintf(stderr, "  %s -> %s\n", cases[i].line, s ? "accepted" : err.message);
        CHECK(ok);
        tokens_set_release(s);
    }
    /* the same secret twice, under two names */
    char text[1024];
    snprintf(text, sizeof text, "%s", hash_line("one", "same", "read"));
    strcat(text, hash_line("two", "same", "write"));
    aside_error err;
    tokens_set *s = parse(text, &err);
    CHECK(!s && strstr(err.message, "tokens:2:") && strstr(err.message, "another line"));
    /* a NUL byte */
    const char nul[] = "x sha256:0\0 read\n";
    CHECK(!tokens_set_parse(nul, sizeof nul - 1, "tokens", &err) && strstr(err.message, "NUL"));
}

static void test_a_file_that_cannot_be_read_is_refused_naming_it(void)
{
    aside_error err;
    CHECK(!tokens_set_load("/no-such-folder/tokens", &err));
    CHECK(strstr(err.message, "/no-such-folder/tokens"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_a_reload_replaces_the_set_and_a_bad_file_keeps_it(void)
{
    char path[] = "/tmp/aside-test-tokens-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    write_file(path, hash_line("old", "old-secret", "read"));
    aside_error err;
    tokens *t = tokens_create(path, &err);
    CHECK(t != NULL);
    if (!t)
        return;
    char worker[TOKENS_SECRET_TEXT_BYTES];
    CHECK(tokens_add_random(t, "(functions)", TOKENS_READ | TOKENS_WRITE, worker, &err) ==
          ASIDE_OK);
    CHECK(strlen(worker) == TOKENS_SECRET_TEXT_BYTES - 1);
    tokens_set *held = tokens_acquire(t);
    CHECK(tokens_set_match(held, "old-secret", 10));
    CHECK(tokens_set_match(held, worker, strlen(worker)));

    write_file(path, hash_line("new", "new-secret", "write"));
    CHECK(tokens_reload(t, &err) == ASIDE_OK);
    tokens_set *now = tokens_acquire(t);
    CHECK(!tokens_set_match(now, "old-secret", 10));
    const tokens_entry *e = tokens_set_match(now, "new-secret", 10);
    CHECK(e && strcmp(e->name, "new") == 0 && e->scopes == TOKENS_WRITE);
    e = tokens_set_match(now, worker, strlen(worker)); /* the workers' token stays */
    CHECK(e && strcmp(e->name, "(functions)") == 0);
    /* the set a call held before is whole */
    e = tokens_set_match(held, "old-secret", 10);
    CHECK(e && strcmp(e->name, "old") == 0);
    tokens_set_release(held);

    write_file(path, "new sha256:nothex read\n");
    CHECK(tokens_reload(t, &err) != ASIDE_OK && strstr(err.message, ":1:"));
    tokens_set *kept = tokens_acquire(t);
    CHECK(kept == now && tokens_set_match(kept, "new-secret", 10));
    tokens_set_release(kept);
    tokens_set_release(now);

    write_file(path, hash_line("(functions)", "x", "read"));
    CHECK(tokens_reload(t, &err) != ASIDE_OK); /* not a name a file may give */
    tokens_destroy(t);
    unlink(path);
}

static void test_hash_token_prints_the_line_of_a_secret(void)
{
    char in_text[] = "abcdefghijklmnop\n";
    FILE *in = fmemopen(in_text, strlen(in_text), "r");
    char out_text[256] = "";
    FILE *out = fmemopen(out_text, sizeof out_text, "w");
    CHECK(in && out && tokens_print_hash(in, out) == 0);
    fclose(in);
    fclose(out);
    char want[TOKENS_HASH_TEXT_BYTES];
    tokens_hash_text("abcdefghijklmnop", 16, want);
    CHECK(strncmp(out_text, want, strlen(want)) == 0 && out_text[strlen(want)] == '\n');
    char short_text[] = "short\n";
    in = fmemopen(short_text, strlen(short_text), "r");
    out = fmemopen(out_text, sizeof out_text, "w");
    CHECK(in && out && tokens_print_hash(in, out) == 1);
    fclose(in);
    fclose(out);
}

int main(void)
{
    RUN(test_the_hash_is_sha256_in_hex);
    RUN(test_a_good_file_gives_names_scopes_and_prefixes);
    RUN(test_an_empty_file_is_a_set_with_no_token);
    RUN(test_every_malformed_line_is_refused_with_its_line);
    RUN(test_a_file_that_cannot_be_read_is_refused_naming_it);
    RUN(test_a_reload_replaces_the_set_and_a_bad_file_keeps_it);
    RUN(test_hash_token_prints_the_line_of_a_secret);
    return CHECK_DONE();
}
