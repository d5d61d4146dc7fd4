/* test_s3_parse.c -- what the S3 system of record reads from outside: ListObjectsV2 pages
 * (s3_parse_list_page) and the credential chain's files and metadata answers
 * (cred_parse_profile, cred_parse_temporary). No S3 and no network: the parsers alone, on the
 * kinds of input their fuzzers (tests/fuzz) start from, and on inputs the fuzzers found. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sor/sor.h"

static const char page_head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name>";

/* Parse page (text after page_head) with the prefix "data/". */
static aside_status parse(const char *rest, sor_listing *out, char *next, size_t next_size)
{
    char page[4096];
    snprintf(page, sizeof page, "%s%s</ListBucketResult>", page_head, rest);
    aside_error err;
    return s3_parse_list_page(page, strlen(page), "data/", out, next, next_size, &err);
}

static void test_a_page_lists_keys_relative_to_the_prefix_with_size_and_time(void)
{
    sor_listing l = {0};
    char next[64];
    CHECK(parse("<IsTruncated>false</IsTruncated><Contents><Key>data/a&amp;b.json</Key>"
                "<LastModified>2024-05-01T12:34:56.000Z</LastModified><Size>12</Size></Contents>"
                "<Contents><Key>data/dir/</Key><Size>0</Size></Contents>",
                &l, next, sizeof next) == ASIDE_OK);
    CHECK(l.count == 1); /* the folder marker "dir/" is not a key */
    CHECK(l.count == 1 && strcmp(l.items[0].key, "a&b.json") == 0);
    CHECK(l.count == 1 && l.items[0].size == 12);
    CHECK(l.count == 1 && l.items[0].mtime_ns == 1714566896LL * 1000000000);
    CHECK(next[0] == '\0');
    aside_object_entries_free(l.items, l.count);
}

static void test_a_truncated_page_gives_its_token_and_one_without_a_token_fails(void)
{
    sor_listing l = {0};
    char next[64];
    CHECK(parse("<IsTruncated>true</IsTruncated>"
                "<NextContinuationToken>t/k==</NextContinuationToken>",
                &l, next, sizeof next) == ASIDE_OK);
    CHECK(strcmp(next, "t/k==") == 0);
    CHECK(parse("<IsTruncated>true</IsTruncated>", &l, next, sizeof next) == ASIDE_ERR_SOR);
    aside_error err;
    CHECK(s3_parse_list_page(NULL, 0, "data/", &l, next, sizeof next, &err) == ASIDE_OK);
    CHECK(l.count == 0 && next[0] == '\0');
}

/* Found by fuzz_s3_list: a year past 2262 overflowed the nanoseconds (undefined behaviour). */
static void test_a_modification_time_past_what_nanoseconds_hold_is_unknown(void)
{
    sor_listing l = {0};
    char next[64];
    CHECK(parse("<Contents><Key>data/far</Key><LastModified>2543-05-01T00:00:00Z"
                "</LastModified></Contents><Contents><Key>data/late</Key>"
                "<LastModified>2263-01-01T00:00:00Z</LastModified></Contents>",
                &l, next, sizeof next) == ASIDE_OK);
    CHECK(l.count == 2 && l.items[0].mtime_ns == 0 && l.items[1].mtime_ns == 0);
    aside_object_entries_free(l.items, l.count);
}

static bool profile(const char *text, const char *section, aws_credentials *c)
{
    FILE *fp = fmemopen((void *)text, strlen(text), "r");
    bool found = fp && cred_parse_profile(fp, section, c, "profile");
    if (fp)
        fclose(fp);
    return found;
}

static void test_a_profile_is_read_from_its_section_only(void)
{
    static const char file[] = "# comment\n[default]\naws_access_key_id = AKID\n"
                               "aws_secret_access_key=secret \n[dev]\naws_access_key_id=DEV\n"
                               "aws_secret_access_key=devsecret\naws_session_token = tok\n";
    aws_credentials c;
    CHECK(profile(file, "default", &c));
    CHECK(strcmp(c.access_key, "AKID") == 0 && strcmp(c.secret_key, "secret") == 0);
    CHECK(c.session_token[0] == '\0' && strcmp(c.source, "profile") == 0);
    CHECK(profile(file, "dev", &c) && strcmp(c.session_token, "tok") == 0);
    CHECK(!profile(file, "other", &c));
    CHECK(!profile("[default]\naws_access_key_id=only\n", "default", &c));
}

static void test_temporary_credentials_carry_their_expiry(void)
{
    static const char answer[] = "{\"AccessKeyId\": \"ASIA\", \"SecretAccessKey\": \"s\", "
                                 "\"Token\": \"t\", \"Expiration\": \"2030-01-01T00:00:00Z\"}";
    aws_credentials c;
    CHECK(cred_parse_temporary(answer, strlen(answer), &c, "ecs"));
    CHECK(strcmp(c.access_key, "ASIA") == 0 && strcmp(c.session_token, "t") == 0);
    CHECK(c.expires_ms == 1893456000000LL && strcmp(c.source, "ecs") == 0);
    CHECK(!cred_parse_temporary("{\"AccessKeyId\": \"A\"}", 20, &c, "ecs"));
    CHECK(!cred_parse_temporary(NULL, 0, &c, "ecs"));
}

int main(void)
{
    RUN(test_a_page_lists_keys_relative_to_the_prefix_with_size_and_time);
    RUN(test_a_truncated_page_gives_its_token_and_one_without_a_token_fails);
    RUN(test_a_modification_time_past_what_nanoseconds_hold_is_unknown);
    RUN(test_a_profile_is_read_from_its_section_only);
    RUN(test_temporary_credentials_carry_their_expiry);
    return CHECK_DONE();
}
