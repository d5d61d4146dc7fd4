/* test_cache_write.c -- writes, listings and deletes (write.c): a write goes through to the
 * system of record (a real directory) and into the cache; a second delete is not found. */

#include "cache_test.h"

static void test_second_delete_of_same_key_is_not_found(void)
{
    fixture f;
    fixture_init(&f);
    write_file(f.sor, "a.json", "{}", 2);
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_value *v = NULL;
    CHECK(aside_get(c, "a.json", &v, NULL, NULL) == ASIDE_OK);
    CHECK(aside_delete(c, "a.json", NULL) == ASIDE_OK);
    CHECK(aside_delete(c, "a.json", NULL) == ASIDE_ERR_NOT_FOUND);
    CHECK(file_size(f.cache, "a.json") == -1);
    CHECK(file_size(f.sor, "a.json") == 2); /* never touches the system of record */
    CHECK(value_is(v, "{}", 2)); /* a value held by a reader outlives its deletion */
    aside_value_release(v);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_write_goes_through_to_the_directory_and_into_the_cache(void)
{
    fixture f;
    fixture_init(&f);
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_object_info info;
    aside_error err;
    CHECK(aside_write(c, "new/doc.json", NULL, "{\"a\": 1}", 8, &info, &err) == ASIDE_OK);
    CHECK(info.size == 8 && info.etag[0]);
    CHECK(file_size(f.sor, "new/doc.json") == 8);
    aside_value *v = NULL;
    aside_source src = ASIDE_SOURCE_SOR;
    CHECK(aside_get(c, "new/doc.json", &v, &src, NULL) == ASIDE_OK);
    CHECK(src == ASIDE_SOURCE_MEMORY && value_is(v, "{\"a\": 1}", 8));
    aside_value_release(v);
    /* invalid JSON is refused before anything is written */
    CHECK(aside_write(c, "new/doc.json", NULL, "{", 1, &info, &err) == ASIDE_ERR_BAD_VALUE);
    CHECK(file_size(f.sor, "new/doc.json") == 8);
    CHECK(aside_get(c, "new/doc.json", &v, NULL, NULL) == ASIDE_OK && value_is(v, "{\"a\": 1}", 8));
    aside_value_release(v);
    aside_read_options s3 = {.storage = "s3"};
    CHECK(aside_write(c, "x.json", &s3, "{}", 2, &info, &err) == ASIDE_ERR_INVALID);
    aside_cache_close(c);
    fixture_done(&f);
}

static void test_list_names_the_directory_files_under_a_prefix_sorted(void)
{
    fixture f;
    fixture_init(&f);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/b", f.sor);
    mkdir(dir, 0755);
    write_file(f.sor, "b/2.json", "[]", 2);
    write_file(f.sor, "b/1.json", "[1]", 3);
    write_file(f.sor, "a.json", "{}", 2);
    write_file(f.sor, "b/3.json.aside-write.x1y2z3", "[", 1); /* a write a crash cut short */
    aside_cache *c = open_cache(&f, 1 << 20, 1 << 20);
    aside_object_entry *objects = NULL;
    size_t count = 0;
    CHECK(aside_list(c, NULL, "b/", &objects, &count, NULL) == ASIDE_OK);
    CHECK(count == 2 && strcmp(objects[0].key, "b/1.json") == 0 && objects[0].size == 3 &&
          strcmp(objects[1].key, "b/2.json") == 0);
    aside_object_entries_free(objects, count);
    CHECK(aside_list(c, NULL, NULL, &objects, &count, NULL) == ASIDE_OK);
    CHECK(count == 3 && strcmp(objects[0].key, "a.json") == 0);
    aside_object_entries_free(objects, count);
    aside_cache_close(c);
    fixture_done(&f);
}

int main(void)
{
    RUN(test_second_delete_of_same_key_is_not_found);
    RUN(test_write_goes_through_to_the_directory_and_into_the_cache);
    RUN(test_list_names_the_directory_files_under_a_prefix_sorted);
    return CHECK_DONE();
}
