/* fuzz_journal.c -- replaying the journal (journal.c's framing, the records' replay).
 *
 * The journal is the disk copy of what the cache alone holds; a crash, a full disk or damage
 * may leave anything in it, and replay must take whatever it finds: records cut short,
 * checksums that fail, payloads that are not JSON or not records, operations that fail.
 *
 * The input's first byte chooses its form. Bit 0 set: the rest is the journal file as it is
 * (so the framing itself is fuzzed). Clear: the rest is records' payloads, one per line, each
 * framed with a right checksum (so what replay does with a record is fuzzed, past the
 * checksum). Every input is replayed by journal_open into collections, record by record as the
 * library's replay (lib/live.c) applies them: operations {"k", "o", "a"}, "del", "expire_at",
 * snapshots {"k", "t", "v", "x"}; a failed operation must leave its collection unchanged.
 *
 * One input in 128, chosen by the input's XXH3 hash (so an input always takes the same path,
 * whatever it descends from), is instead opened by a whole cache, the library's own replay:
 * opened, compacted (every live entry written back as a snapshot), closed, and opened once more
 * on what compaction wrote. A cache opens DuckDB, which costs a good part of a second under the
 * sanitizers; hence only some inputs. */
#include <jansson.h>
#include <xxhash.h>

#include "aside.h"
#include "fuzz.h"
#include "store/store.h"
#include "value/value.h"

enum {
    RECORD_MAGIC = 0x314a5341, /* "ASJ1", journal.c's */
    MAX_KEYS = 64,             /* keys replayed per input; more are ignored */
    WHOLE_CACHE_ONE_IN = 128   /* inputs whose hash is 0 modulo this open a whole cache */
};

static char data_dir[PATH_MAX], sor_dir[PATH_MAX], journal_path[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_temp_root();
    fuzz_make_dir("sor", sor_dir, sizeof sor_dir);
    snprintf(data_dir, sizeof data_dir, "%s/cache", fuzz_root);
    snprintf(journal_path, sizeof journal_path, "%s/.aside/journal", data_dir);
    return 0;
}

/* ---- the journal file ------------------------------------------------------------------------ */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void write_record(FILE *fp, const uint8_t *payload, size_t len)
{
    uint8_t h[16];
    put_le(h, RECORD_MAGIC, 4);
    put_le(h + 4, len, 4);
    put_le(h + 8, XXH3_64bits(payload, len), 8);
    fwrite(h, 1, sizeof h, fp);
    fwrite(payload, 1, len, fp);
}

/* The journal of the input, under a fresh data folder. */
static void write_journal(const uint8_t *data, size_t size)
{
    char aside_dir[PATH_MAX];
    fuzz_remove_tree(data_dir);
    snprintf(aside_dir, sizeof aside_dir, "%s/.aside", data_dir);
    if (mkdir(data_dir, 0755) != 0 || mkdir(aside_dir, 0755) != 0)
        fuzz_die(aside_dir);
    FILE *fp = fopen(journal_path, "wb");
    if (!fp)
        fuzz_die(journal_path);
    if (data[0] & 1) {
        fwrite(data + 1, 1, size - 1, fp);
    } else {
        const uint8_t *p = data + 1, *end = data + size;
        while (p < end) {
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            const uint8_t *stop = nl ? nl : end;
            write_record(fp, p, (size_t)(stop - p));
            p = stop + 1;
        }
    }
    if (fclose(fp) != 0)
        fuzz_die(journal_path);
}

/* ---- records into collections, as the library replays them ----------------------------------- */

typedef struct replayed {
    char       *keys[MAX_KEYS];
    collection *live[MAX_KEYS];
    size_t      count;
} replayed;

/* The slot of key (a new, empty one when absent and room is left), or -1. */
static int slot(replayed *r, const char *key, bool add)
{
    for (size_t i = 0; i < r->count; i++) {
        if (strcmp(r->keys[i], key) == 0)
            return (int)i;
    }
    if (!add || r->count == MAX_KEYS)
        return -1;
    r->keys[r->count] = strdup(key);
    r->live[r->count] = NULL;
    return r->keys[r->count] ? (int)r->count++ : -1;
}

/* Run op on c; a failed operation must not change it. */
static void apply(collection *c, const char *op, json_t *args)
{
    size_t before_len = 0, after_len = 0;
    char *before = collection_dump(c, &before_len);
    json_t *result = NULL;
    aside_error err;
    if (collection_apply(c, op, args, VALUE_JSON_MAX_DEPTH, &result, &err) != ASIDE_OK && before) {
        char *after = collection_dump(c, &after_len);
        if (after && (after_len != before_len || memcmp(after, before, after_len) != 0))
            abort(); /* "on any error c is unchanged" (value.h) */
        free(after);
    }
    json_decref(result);
    free(before);
}

static void replay_op(replayed *r, const char *key, const char *op, json_t *args)
{
    aside_value_type type;
    bool writes;
    if (strcmp(op, "del") == 0 || strcmp(op, "expire_at") == 0) {
        int i = slot(r, key, false);
        if (i >= 0 && strcmp(op, "del") == 0) {
            collection_free(r->live[i]);
            r->live[i] = NULL;
        }
        return;
    }
    if (!collection_op_info(op, &type, &writes) || !writes)
        return;
    int i = slot(r, key, true);
    if (i < 0)
        return;
    if (!r->live[i])
        r->live[i] = collection_create(type);
    if (r->live[i])
        apply(r->live[i], op, args);
}

static void replay_snapshot(replayed *r, const char *key, const char *type_name, json_t *content)
{
    aside_value_type type;
    collection *live = NULL;
    int i = slot(r, key, true);
    if (i < 0 || aside_value_type_parse(type_name, &type) != ASIDE_OK ||
        collection_from_json(type, content, &live, NULL) != ASIDE_OK)
        return;
    collection_free(r->live[i]);
    r->live[i] = live;
}

static void visit(void *ctx, const char *payload, size_t len)
{
    json_t *record = json_loadb(payload, len, 0, NULL);
    const char *key = json_string_value(json_object_get(record, "k"));
    const char *op = json_string_value(json_object_get(record, "o"));
    const char *type = json_string_value(json_object_get(record, "t"));
    if (key && op)
        replay_op(ctx, key, op, json_object_get(record, "a"));
    else if (key && type)
        replay_snapshot(ctx, key, type, json_object_get(record, "v"));
    json_decref(record);
}

static void replay_records(void)
{
    replayed r = {.count = 0};
    journal *j = NULL;
    aside_error err;
    if (journal_open(data_dir, ASIDE_FSYNC_NEVER, visit, &r, &j, &err) == ASIDE_OK)
        journal_close(j);
    for (size_t i = 0; i < r.count; i++) {
        if (r.live[i]) { /* a snapshot, as compaction writes it */
            json_t *content = collection_json(r.live[i]);
            collection *again = NULL;
            if (content &&
                collection_from_json(collection_type(r.live[i]), content, &again, NULL) !=
                    ASIDE_OK)
                abort(); /* a collection's own content must make it again */
            collection_free(again);
            json_decref(content);
        }
        collection_free(r.live[i]);
        free(r.keys[i]);
    }
}

/* ---- a whole cache --------------------------------------------------------------------------- */

static aside_cache *open_cache(void)
{
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = data_dir;
    cfg.sor_dir = sor_dir;
    cfg.memory_limit_bytes = 64 << 20;
    cfg.disk_limit_bytes = 64 << 20;
    cfg.shm_dir = "off";
    cfg.fsync = ASIDE_FSYNC_NEVER;
    aside_cache *c = NULL;
    aside_error err;
    return aside_cache_open(&cfg, &c, &err) == ASIDE_OK ? c : NULL;
}

static void replay_in_cache(void)
{
    aside_cache *c = open_cache();
    if (!c)
        return;
    aside_error err;
    aside_status compacted = aside_compact(c, &err);
    aside_cache_close(c);
    if (compacted == ASIDE_OK) {
        c = open_cache();
        if (!c) /* what compaction wrote must open */
            abort();
        aside_cache_close(c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    write_journal(data, size);
    if (XXH3_64bits(data, size) % WHOLE_CACHE_ONE_IN == 0) {
        replay_in_cache();
        return 0;
    }
    replay_records();
    return 0;
}
