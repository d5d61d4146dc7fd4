/* test_size.c -- sizes as operators write them. */
#include "aside.h"
#include "check.h"

static uint64_t size_of(const char *text, uint64_t whole, aside_status *st)
{
    uint64_t out = 0;
    *st = aside_parse_size(text, whole, &out, NULL);
    return out;
}

static void test_units_binary_and_decimal(void)
{
    aside_status st;
    CHECK(size_of("1000", 0, &st) == 1000 && st == ASIDE_OK);
    CHECK(size_of("512MiB", 0, &st) == 512ull << 20 && st == ASIDE_OK);
    CHECK(size_of("4GiB", 0, &st) == 4ull << 30 && st == ASIDE_OK);
    CHECK(size_of("4g", 0, &st) == 4ull << 30 && st == ASIDE_OK);
    CHECK(size_of("1KB", 0, &st) == 1000 && st == ASIDE_OK);
    CHECK(size_of("1.5GB", 0, &st) == 1500000000ull && st == ASIDE_OK);
    CHECK(size_of("64 KiB", 0, &st) == 65536 && st == ASIDE_OK);
}

static void test_percentages_are_of_the_whole(void)
{
    aside_status st;
    CHECK(size_of("25%", 1000, &st) == 250 && st == ASIDE_OK);
    CHECK(size_of("100%", 1000, &st) == 1000 && st == ASIDE_OK);
    size_of("101%", 1000, &st);
    CHECK(st == ASIDE_ERR_INVALID);
}

static void test_nonsense_is_refused(void)
{
    aside_status st;
    size_of("", 0, &st);
    CHECK(st == ASIDE_ERR_INVALID);
    size_of("lots", 0, &st);
    CHECK(st == ASIDE_ERR_INVALID);
    size_of("12 parsecs", 0, &st);
    CHECK(st == ASIDE_ERR_INVALID);
    size_of("-5MiB", 0, &st);
    CHECK(st == ASIDE_ERR_INVALID);
    size_of("1e30TiB", 0, &st);
    CHECK(st == ASIDE_ERR_INVALID);
}

int main(void)
{
    RUN(test_units_binary_and_decimal);
    RUN(test_percentages_are_of_the_whole);
    RUN(test_nonsense_is_refused);
    return CHECK_DONE();
}
