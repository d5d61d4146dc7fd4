/* trace.c -- aside-trace: hit ratios of the eviction policies on request traces, and the memory
 * a small key costs in a real cache.
 *
 * Replay. A trace is a sequence of requests, each a key and a size. It is read or generated once
 * into memory, with every distinct key given a dense id (an open-addressing map from 64-bit keys
 * to ids), so a replay is array indexing: one policy_node and one "cached" flag per id. The
 * replay drives the policies of src/core/policy.c themselves, as the cache does in lib/entry.c:
 * a hit is policy_touch(); a miss evicts victims until the item fits, then policy_insert(); a
 * hit whose size changed is policy_resize(), then evictions until the total fits again. An
 * item larger than the whole cache is never admitted. The hit ratio is hits over requests.
 * Capacities are 1%, 10% and 30% of the working set: the number of distinct keys for traces
 * without sizes (every item weighs 1), the sum of their sizes (each key's first) for traces
 * with sizes.
 *
 * Traces. Built in, deterministic for a seed: Zipf with alpha 0.8 and 0.99 over --keys keys,
 * --requests requests, each also with scans (after every --scan-every requests, a sequential
 * run over a tenth as many fresh keys, each requested once and never again); the scan variant
 * holds the very same Zipf requests. The Zipf sampler is rejection-inversion (Hormann and
 * Derflinger, "Rejection-inversion to generate variates from monotone discrete distributions",
 * 1996): O(1) per sample, no table, exact for any alpha > 0. From files: the ARC traces' text
 * format and a "timestamp,key,size" CSV (bench/trace/README.md has both).
 *
 * Overhead. --overhead N opens a real cache through aside.h in a fresh temporary directory,
 * stores N small keys and reads the heap in use (mallinfo2, every arena, mmapped chunks
 * included) before and after: the difference over N, less the key's and the value's own bytes,
 * is what the cache spends per key.
 *
 * --self-test checks the sampler against the exact distribution, both file formats (written to
 * a temporary directory, read back) and a replay whose hits are known. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aside.h"
#include "core/core.h"

enum {
    ERR_MAX = 256,
    DEFAULT_KEYS = 100000,
    DEFAULT_REQUESTS = 1000000,
    QUICK_KEYS = 10000,
    QUICK_REQUESTS = 100000,
    DEFAULT_OVERHEAD_KEYS = 200000,
    QUICK_OVERHEAD_KEYS = 20000,
    SCANS_PER_TRACE = 10,         /* default --scan-every: a tenth of the requests */
    SCAN_FRACTION = 10,           /* a scan is 1/10 as many fresh keys as requests between */
    PUT_FALLBACK_DIVISOR = 10,    /* aside_put writes a file per key: a tenth as many keys */
    ARC_MAX_BLOCKS = 1 << 20,     /* one ARC request may not expand to more blocks than this */
    ZIPF_MAX_REJECTIONS = 1000,   /* the expected number is below 1.1 for every alpha */
    OVERHEAD_KEY_BYTES = 9,       /* "k/0000001" */
    OVERHEAD_VALUE_BYTES = 8,     /* a 64-bit counter, or 8 bytes put */
    OVERHEAD_TARGET_BYTES = 48,
    POLICY_COUNT = 3
};

static const uint64_t MIB = 1024 * 1024;
static const uint32_t NO_ID = UINT32_MAX;
static const unsigned SIZES_PERCENT[] = {1, 10, 30};
static const char *const POLICIES[POLICY_COUNT] = {"lru", "lfu", "s3fifo"};
static const double ALPHAS[] = {0.8, 0.99};

/* ---- errors ------------------------------------------------------------------------------ */

typedef struct failure {
    char message[ERR_MAX];
} failure;

static bool fail(failure *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- random numbers: splitmix64 (Steele, Lea and Flood), a full-period 64-bit generator ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *state)
{
    *state += 0x9E3779B97F4A7C15ull;
    return mix64(*state);
}

/* Uniform in [0, 1), 53 bits. */
static double rng_unit(uint64_t *state) { return (double)(rng_next(state) >> 11) * 0x1p-53; }

/* ---- Zipf by rejection-inversion ---------------------------------------------------------
 *
 * P(k) is proportional to h(k) = k^-alpha on 1..n. H is an antiderivative of h; a uniform u
 * between H(n + 1/2) and H(3/2) - 1 inverted through H gives x, rounded to k; k is accepted when
 * u lies under the area h(k) attributes to it, which is exact, and almost always so.
 * (e^t - 1)/t and log(1 + t)/t keep H and its inverse exact as alpha approaches 1. */

typedef struct zipf {
    double alpha, n;
    double h_first, h_last, squeeze;
} zipf;

static double expm1_over(double t) { return fabs(t) > 1e-8 ? expm1(t) / t : 1 + t / 2; }

static double log1p_over(double t) { return fabs(t) > 1e-8 ? log1p(t) / t : 1 - t / 2; }

static double zipf_h(const zipf *z, double x) { return exp(-z->alpha * log(x)); }

static double zipf_big_h(const zipf *z, double x)
{
    double log_x = log(x);
    return expm1_over((1 - z->alpha) * log_x) * log_x;
}

static double zipf_big_h_inverse(const zipf *z, double y)
{
    double t = y * (1 - z->alpha);
    if (t < -1)
        t = -1; /* only rounding can take it there */
    return exp(log1p_over(t) * y);
}

static void zipf_init(zipf *z, double alpha, uint64_t n)
{
    z->alpha = alpha;
    z->n = (double)n;
    z->h_first = zipf_big_h(z, 1.5) - 1;
    z->h_last = zipf_big_h(z, z->n + 0.5);
    z->squeeze = 2 - zipf_big_h_inverse(z, zipf_big_h(z, 2.5) - zipf_h(z, 2));
}

/* A rank in 1..n; rank 1 is the most popular. */
static uint64_t zipf_sample(const zipf *z, uint64_t *rng)
{
    double k = 1;
    for (int i = 0; i < ZIPF_MAX_REJECTIONS; i++) {
        double u = z->h_last + rng_unit(rng) * (z->h_first - z->h_last);
        double x = zipf_big_h_inverse(z, u);
        k = floor(x + 0.5);
        if (k < 1)
            k = 1;
        else if (k > z->n)
            k = z->n;
        if (k - x <= z->squeeze || u >= zipf_big_h(z, k + 0.5) - zipf_h(z, k))
            break;
    }
    return (uint64_t)k;
}

/* ---- traces: requests as (dense id, size), and a map from keys to ids --------------------- */

typedef struct request {
    uint32_t id;
    uint32_t size;
} request;

typedef struct trace {
    char     name[64];
    request *requests;
    size_t   count, cap;
    uint64_t *keys;     /* by id */
    uint32_t *first;    /* by id: the size of the key's first request */
    uint32_t  distinct;
    size_t    keys_cap, first_cap;
    uint32_t *slots;    /* the map: an id per slot, NO_ID when empty */
    size_t    slot_mask;
    bool      sized;    /* sizes come from the trace; else every size is 1 */
} trace;

static void trace_free(trace *t)
{
    free(t->requests);
    free(t->keys);
    free(t->first);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static bool grow(void **array, size_t *cap, size_t need, size_t each)
{
    if (need <= *cap)
        return true;
    size_t fresh = *cap ? *cap * 2 : 1024;
    while (fresh < need)
        fresh *= 2;
    void *p = realloc(*array, fresh * each);
    if (!p)
        return false;
    *array = p;
    *cap = fresh;
    return true;
}

static bool map_rehash(trace *t, size_t slots)
{
    uint32_t *fresh = malloc(slots * sizeof *fresh);
    if (!fresh)
        return false;
    memset(fresh, 0xFF, slots * sizeof *fresh);
    for (uint32_t id = 0; id < t->distinct; id++) {
        size_t i = mix64(t->keys[id]) & (slots - 1);
        while (fresh[i] != NO_ID)
            i = (i + 1) & (slots - 1);
        fresh[i] = id;
    }
    free(t->slots);
    t->slots = fresh;
    t->slot_mask = slots - 1;
    return true;
}

/* The id of key, given a new one (first seen with size) if the trace has not met it. */
static bool trace_id(trace *t, uint64_t key, uint32_t size, uint32_t *id, failure *f)
{
    if (!t->slots || (size_t)t->distinct * 2 >= t->slot_mask + 1) {
        if (!map_rehash(t, t->slots ? (t->slot_mask + 1) * 2 : 1024))
            return fail(f, "out of memory for the key map");
    }
    size_t i = mix64(key) & t->slot_mask;
    for (; t->slots[i] != NO_ID; i = (i + 1) & t->slot_mask) {
        if (t->keys[t->slots[i]] == key) {
            *id = t->slots[i];
            return true;
        }
    }
    if (t->distinct == NO_ID - 1)
        return fail(f, "more than %" PRIu32 " distinct keys", NO_ID - 1);
    if (!grow((void **)&t->keys, &t->keys_cap, t->distinct + 1, sizeof *t->keys) ||
        !grow((void **)&t->first, &t->first_cap, t->distinct + 1, sizeof *t->first))
        return fail(f, "out of memory for %" PRIu32 " keys", t->distinct + 1);
    *id = t->distinct++;
    t->keys[*id] = key;
    t->first[*id] = size;
    t->slots[i] = *id;
    return true;
}

static bool trace_add(trace *t, uint64_t key, uint32_t size, failure *f)
{
    uint32_t id = 0;
    if (!trace_id(t, key, size, &id, f))
        return false;
    if (!grow((void **)&t->requests, &t->cap, t->count + 1, sizeof *t->requests))
        return fail(f, "out of memory for %zu requests", t->count + 1);
    t->requests[t->count++] = (request){id, size};
    return true;
}

/* The working set: distinct keys, or the bytes of their first requests. */
static uint64_t trace_working_set(const trace *t)
{
    if (!t->sized)
        return t->distinct;
    uint64_t bytes = 0;
    for (uint32_t id = 0; id < t->distinct; id++)
        bytes += t->first[id];
    return bytes;
}

/* ---- synthetic traces --------------------------------------------------------------------- */

typedef struct options {
    uint64_t    keys, requests, scan_every, seed, overhead;
    bool        quick, self_test, overhead_set, help;
    const char *trace_path, *format;
} options;

/* Zipf(alpha) over keys 1..opt->keys; with scans, after every scan_every requests a run of
 * scan_every / SCAN_FRACTION fresh keys (numbered from keys + 1 on). */
static bool trace_zipf(trace *t, const options *opt, double alpha, bool scans, failure *f)
{
    snprintf(t->name, sizeof t->name, "zipf-%g%s", alpha, scans ? "+scan" : "");
    zipf z;
    zipf_init(&z, alpha, opt->keys);
    uint64_t rng = opt->seed ^ (uint64_t)(alpha * 1000);
    uint64_t fresh = opt->keys;
    for (uint64_t i = 1; i <= opt->requests; i++) {
        if (!trace_add(t, zipf_sample(&z, &rng), 1, f))
            return false;
        if (!scans || i % opt->scan_every != 0)
            continue;
        for (uint64_t s = 0; s < opt->scan_every / SCAN_FRACTION; s++) {
            if (!trace_add(t, ++fresh, 1, f))
                return false;
        }
    }
    return true;
}

/* ---- trace files -------------------------------------------------------------------------- */

/* A decimal number filling [text, end) save surrounding blanks; false if there is none. */
static bool parse_u64(const char *text, const char **end, uint64_t *out)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return false;
    char *stop;
    errno = 0;
    unsigned long long v = strtoull(text, &stop, 10);
    if (errno)
        return false;
    *out = v;
    *end = stop;
    return true;
}

static bool blank_line(const char *line) { return strspn(line, " \t\r\n") == strlen(line); }

/* ARC: "starting_block number_of_blocks ignore request_number"; blocks are unit-size keys. */
static bool arc_line(trace *t, const char *line, size_t line_no, failure *f)
{
    uint64_t field[4];
    const char *p = line;
    for (int i = 0; i < 4; i++) {
        if (!parse_u64(p, &p, &field[i]))
            return fail(f, "line %zu: expected 4 numbers", line_no);
    }
    if (!blank_line(p))
        return fail(f, "line %zu: more than 4 fields", line_no);
    if (field[1] < 1 || field[1] > ARC_MAX_BLOCKS)
        return fail(f, "line %zu: number_of_blocks %" PRIu64 " not in 1..%d", line_no,
                    field[1], ARC_MAX_BLOCKS);
    if (field[0] > UINT64_MAX - field[1])
        return fail(f, "line %zu: blocks pass 2^64", line_no);
    for (uint64_t b = 0; b < field[1]; b++) {
        if (!trace_add(t, field[0] + b, 1, f))
            return false;
    }
    return true;
}

/* CSV: "timestamp,key,size" (further fields ignored); a first line that is not a request (no
 * number in its size field) is a header. The key is any text without a comma. */
static bool csv_line(trace *t, const char *line, size_t line_no, failure *f)
{
    const char *key = strchr(line, ',');
    const char *key_end = key ? strchr(key + 1, ',') : NULL;
    uint64_t size;
    const char *p;
    if (!key_end || !parse_u64(key_end + 1, &p, &size) || (*p && *p != ',' && !blank_line(p))) {
        if (line_no == 1)
            return true;
        return fail(f, "line %zu: expected timestamp,key,size", line_no);
    }
    key++;
    if (key == key_end)
        return fail(f, "line %zu: empty key", line_no);
    if (size < 1 || size > UINT32_MAX)
        return fail(f, "line %zu: size %" PRIu64 " not in 1..%" PRIu32, line_no, size,
                    UINT32_MAX);
    return trace_add(t, table_hash(key, (size_t)(key_end - key)), (uint32_t)size, f);
}

static bool trace_read(trace *t, const char *path, const char *format, failure *f)
{
    bool csv = strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "arc") != 0)
        return fail(f, "unknown format \"%s\" (arc or csv)", format);
    FILE *in = fopen(path, "r");
    if (!in)
        return fail(f, "%s: %s", path, strerror(errno));
    const char *base = strrchr(path, '/');
    snprintf(t->name, sizeof t->name, "%s", base ? base + 1 : path);
    t->sized = csv;
    char  *line = NULL;
    size_t len = 0, line_no = 0;
    bool   ok = true;
    while (ok && getline(&line, &len, in) >= 0) {
        line_no++;
        if (!blank_line(line))
            ok = csv ? csv_line(t, line, line_no, f) : arc_line(t, line, line_no, f);
    }
    if (ok && ferror(in))
        ok = fail(f, "%s: read failed", path);
    if (ok && t->count == 0)
        ok = fail(f, "%s: no requests", path);
    if (!ok)
        snprintf(t->name, sizeof t->name, "%s", path);
    free(line);
    fclose(in);
    return ok;
}

/* ---- replay ------------------------------------------------------------------------------- */

typedef struct replay {
    policy      *policy;
    policy_node *nodes; /* by id */
    bool        *cached;
    uint64_t     capacity;
} replay;

static void replay_fit(replay *r, uint64_t incoming)
{
    while (policy_bytes(r->policy) + incoming > r->capacity) {
        policy_node *v = policy_victim(r->policy);
        if (!v)
            return;
        r->cached[v - r->nodes] = false;
    }
}

static void replay_hit(replay *r, uint32_t id, uint32_t size)
{
    policy_touch(r->policy, &r->nodes[id]);
    if (r->nodes[id].bytes == size)
        return;
    if (size > r->capacity) {
        policy_remove(r->policy, &r->nodes[id]);
        r->cached[id] = false;
        return;
    }
    policy_resize(r->policy, &r->nodes[id], size);
    replay_fit(r, 0);
}

static void replay_miss(replay *r, const trace *t, uint32_t id, uint32_t size)
{
    if (size > r->capacity)
        return;
    replay_fit(r, size);
    r->nodes[id].bytes = size;
    r->nodes[id].key_hash = mix64(t->keys[id]);
    policy_insert(r->policy, &r->nodes[id]);
    r->cached[id] = true;
}

/* Replay t through the named policy at capacity; sets *hits. */
static bool replay_run(const trace *t, const char *name, uint64_t capacity, uint64_t *hits,
                       failure *f)
{
    replay r = {policy_create(name, capacity), calloc(t->distinct, sizeof *r.nodes),
                calloc(t->distinct, sizeof *r.cached), capacity};
    bool ok = r.policy && r.nodes && r.cached;
    *hits = 0;
    for (size_t i = 0; ok && i < t->count; i++) {
        request q = t->requests[i];
        if (r.cached[q.id]) {
            ++*hits;
            replay_hit(&r, q.id, q.size);
        } else {
            replay_miss(&r, t, q.id, q.size);
        }
    }
    policy_destroy(r.policy);
    free(r.nodes);
    free(r.cached);
    return ok || fail(f, "no memory for a replay of %s with %s", t->name, name);
}

/* ---- the table ---------------------------------------------------------------------------- */

static void table_header(void)
{
    printf("| trace | requests | keys | size %% | capacity |");
    for (int p = 0; p < POLICY_COUNT; p++)
        printf(" %s |", POLICIES[p]);
    printf(" s3fifo >= lru |\n|---|---:|---:|---:|---:|");
    for (int p = 0; p < POLICY_COUNT; p++)
        printf("---:|");
    printf("---|\n");
}

static int policy_index(const char *name)
{
    for (int p = 0; p < POLICY_COUNT; p++) {
        if (strcmp(POLICIES[p], name) == 0)
            return p;
    }
    return -1;
}

/* One line per cache size; counts the cells where S3-FIFO fell below LRU in *misses. */
static bool table_trace(const trace *t, int *cells, int *misses, failure *f)
{
    uint64_t whole = trace_working_set(t);
    for (size_t s = 0; s < sizeof SIZES_PERCENT / sizeof SIZES_PERCENT[0]; s++) {
        uint64_t capacity = whole * SIZES_PERCENT[s] / 100;
        capacity = capacity ? capacity : 1;
        uint64_t hits[POLICY_COUNT];
        printf("| %s | %zu | %" PRIu32 " | %u | %" PRIu64 "%s |", t->name, t->count, t->distinct,
               SIZES_PERCENT[s], capacity, t->sized ? " B" : "");
        for (int p = 0; p < POLICY_COUNT; p++) {
            if (!replay_run(t, POLICIES[p], capacity, &hits[p], f))
                return false;
            printf(" %.2f%% |", 100.0 * (double)hits[p] / (double)t->count);
        }
        int64_t lead = (int64_t)hits[policy_index("s3fifo")] - (int64_t)hits[policy_index("lru")];
        if (lead >= 0)
            printf(" yes |\n");
        else
            printf(" **no** (%.2f pt) |\n", 100.0 * (double)lead / (double)t->count);
        ++*cells;
        *misses += lead < 0;
        fflush(stdout);
    }
    return true;
}

static bool run_synthetic(const options *opt, int *cells, int *misses, failure *f)
{
    for (size_t a = 0; a < sizeof ALPHAS / sizeof ALPHAS[0]; a++) {
        for (int scans = 0; scans <= 1; scans++) {
            trace t = {0};
            bool  ok = trace_zipf(&t, opt, ALPHAS[a], scans, f) &&
                       table_trace(&t, cells, misses, f);
            trace_free(&t);
            if (!ok)
                return false;
        }
    }
    return true;
}

static bool run_hit_ratios(const options *opt, failure *f)
{
    int  cells = 0, misses = 0;
    bool ok;
    if (opt->trace_path) {
        trace t = {0};
        ok = trace_read(&t, opt->trace_path, opt->format, f);
        if (ok) {
            table_header();
            ok = table_trace(&t, &cells, &misses, f);
        }
        trace_free(&t);
    } else {
        table_header();
        ok = run_synthetic(opt, &cells, &misses, f);
    }
    if (ok)
        printf("\nS3-FIFO >= LRU in %d of %d cells.\n", cells - misses, cells);
    return ok;
}

/* ---- memory per key ----------------------------------------------------------------------- */

static uint64_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool temp_dir(char *path, size_t size, failure *f)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, size, "%s/aside-trace-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(path))
        return fail(f, "mkdtemp %s: %s", path, strerror(errno));
    return true;
}

typedef struct overhead_run {
    aside_cache *cache;
    bool         use_put; /* aside_op is not available: aside_put instead */
    char         reason[ASIDE_ERROR_MESSAGE_MAX];
} overhead_run;

static bool overhead_open(overhead_run *o, const char *dir, failure *f)
{
    char data[4096], sor[4096];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(sor, sizeof sor, "%s/sor", dir);
    if (mkdir(data, 0700) != 0 || mkdir(sor, 0700) != 0)
        return fail(f, "mkdir under %s: %s", dir, strerror(errno));
    aside_config cfg;
    aside_config_init(&cfg);
    cfg.data_dir = data;
    cfg.sor_dir = sor;
    cfg.shm_dir = "off";
    cfg.memory_limit_bytes = 4096 * MIB;
    cfg.disk_limit_bytes = 65536 * MIB;
    cfg.fsync = ASIDE_FSYNC_NEVER;
    aside_error err;
    if (aside_cache_open(&cfg, &o->cache, &err) != ASIDE_OK)
        return fail(f, "aside_cache_open: %s", err.message);
    return true;
}

/* Store key i: a counter incremented once, or 8 bytes put when aside_op is not built. */
static bool overhead_store(overhead_run *o, uint64_t i, failure *f)
{
    char key[32];
    snprintf(key, sizeof key, "k/%07" PRIu64, i);
    aside_error err;
    if (!o->use_put) {
        char        *result = NULL;
        aside_status s = aside_op(o->cache, key, "counter_increment", "{\"by\": 1}", &result, &err);
        free(result);
        if (s == ASIDE_OK)
            return true;
        if (s != ASIDE_ERR_INTERNAL || i != 1)
            return fail(f, "aside_op %s: %s", key, err.message);
        o->use_put = true;
        snprintf(o->reason, sizeof o->reason, "%s", err.message);
    }
    char value[OVERHEAD_VALUE_BYTES + 1];
    snprintf(value, sizeof value, "%08" PRIu64, i % 100000000);
    if (aside_put(o->cache, key, NULL, value, OVERHEAD_VALUE_BYTES, &err) != ASIDE_OK)
        return fail(f, "aside_put %s: %s", key, err.message);
    return true;
}

static void overhead_report(const overhead_run *o, uint64_t keys, uint64_t before, uint64_t after,
                            double seconds)
{
    if (o->use_put)
        printf("api: aside_put, 8-byte values (aside_op answered \"%s\")\n", o->reason);
    else
        printf("api: aside_op counter_increment {\"by\": 1}\n");
    double per_key = ((double)after - (double)before) / (double)keys;
    double beyond = per_key - OVERHEAD_KEY_BYTES - OVERHEAD_VALUE_BYTES;
    printf("keys: %" PRIu64 " in %.2f s; heap in use: %" PRIu64 " -> %" PRIu64 " bytes\n", keys,
           seconds, before, after);
    if (after <= before) {
        printf("the heap did not grow: mallinfo2 sees no allocations (a sanitizer build?)\n");
        return;
    }
    printf("per key: %.1f bytes; beyond its key (%d B) and value (%d B): %.1f bytes "
           "(target %d B: %s)\n",
           per_key, OVERHEAD_KEY_BYTES, OVERHEAD_VALUE_BYTES, beyond, OVERHEAD_TARGET_BYTES,
           beyond <= OVERHEAD_TARGET_BYTES ? "met" : "missed");
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool run_overhead(uint64_t keys, failure *f)
{
    char dir[4096];
    if (!temp_dir(dir, sizeof dir, f))
        return false;
    overhead_run o = {0};
    bool ok = overhead_open(&o, dir, f) && overhead_store(&o, 1, f);
    if (ok && o.use_put)
        keys = keys / PUT_FALLBACK_DIVISOR ? keys / PUT_FALLBACK_DIVISOR : 1;
    uint64_t before = heap_in_use();
    double   start = seconds_now();
    for (uint64_t i = 2; ok && i <= keys + 1; i++)
        ok = overhead_store(&o, i, f);
    uint64_t after = heap_in_use();
    if (ok)
        overhead_report(&o, keys, before, after, seconds_now() - start);
    if (o.cache)
        aside_cache_close(o.cache);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ok;
}

/* ---- self-test ---------------------------------------------------------------------------- */

static int self_checks, self_failures;

static void self_check(bool cond, const char *what)
{
    self_checks++;
    if (!cond) {
        self_failures++;
        fprintf(stderr, "self-test: failed: %s\n", what);
    }
}

/* Chi-square of n samples against the exact P(k) = k^-alpha / sum: 1..keys, one bin each. */
static double zipf_chi_square(double alpha, uint64_t keys, uint64_t n)
{
    uint64_t *seen = calloc(keys + 1, sizeof *seen);
    if (!seen)
        return INFINITY;
    zipf z;
    zipf_init(&z, alpha, keys);
    uint64_t rng = 42;
    for (uint64_t i = 0; i < n; i++)
        seen[zipf_sample(&z, &rng)]++;
    double norm = 0, chi = 0;
    for (uint64_t k = 1; k <= keys; k++)
        norm += pow((double)k, -alpha);
    for (uint64_t k = 1; k <= keys; k++) {
        double expect = (double)n * pow((double)k, -alpha) / norm;
        chi += ((double)seen[k] - expect) * ((double)seen[k] - expect) / expect;
    }
    free(seen);
    return chi;
}

static void self_test_zipf(void)
{
    /* 99 degrees of freedom: the 99.99th percentile of chi-square is about 153 */
    const double alphas[] = {0.5, 0.8, 0.99, 1.0, 1.2};
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
        double chi = zipf_chi_square(alphas[a], 100, 500000);
        char   what[96];
        snprintf(what, sizeof what, "zipf %.2f: chi-square %.1f over 100 bins", alphas[a], chi);
        self_check(chi < 153, what);
    }
}

static bool write_file(const char *path, const char *text)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return false;
    bool ok = fputs(text, out) >= 0;
    return fclose(out) == 0 && ok;
}

static void self_test_arc(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/small.arc", dir);
    self_check(write_file(path, "100 3 0 0\n7 1 0 1\n\n101 2 0 2\n"), "write an ARC file");
    trace    t = {0};
    failure  f;
    bool     ok = trace_read(&t, path, "arc", &f);
    uint64_t want[] = {100, 101, 102, 7, 101, 102};
    self_check(ok && t.count == 6 && t.distinct == 4 && !t.sized, "ARC: 6 blocks, 4 keys");
    for (size_t i = 0; ok && i < t.count && i < 6; i++)
        self_check(t.keys[t.requests[i].id] == want[i] && t.requests[i].size == 1,
                   "ARC: blocks expand in order");
    uint64_t hits = 0;
    self_check(ok && replay_run(&t, "lru", 4, &hits, &f) && hits == 2, "ARC: two hits in LRU");
    trace_free(&t);
    snprintf(path, sizeof path, "%s/bad.arc", dir);
    self_check(write_file(path, "1 1 0 0\n1 x 0 1\n"), "write a bad ARC file");
    self_check(!trace_read(&t, path, "arc", &f) && strstr(f.message, "line 2"),
               "ARC: a bad line is refused with its number");
    trace_free(&t);
}

static void self_test_csv(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/small.csv", dir);
    self_check(write_file(path, "timestamp,key,size\n1,a,100\n2,b/c.json,50\r\n3,a,100\n"
                                "4,a,300\n5,b/c.json,50,extra\n"),
               "write a CSV file");
    trace   t = {0};
    failure f;
    bool    ok = trace_read(&t, path, "csv", &f);
    self_check(ok && t.count == 5 && t.distinct == 2 && t.sized, "CSV: 5 requests, 2 keys");
    self_check(ok && trace_working_set(&t) == 150, "CSV: working set from first sizes");
    self_check(ok && t.requests[3].size == 300, "CSV: sizes as given");
    /* 400 bytes: a grows to 300 in place (resize), then b (50) still fits: both later hits */
    uint64_t hits = 0;
    for (int p = 0; ok && p < POLICY_COUNT; p++)
        self_check(replay_run(&t, POLICIES[p], 400, &hits, &f) && hits == 3, "CSV: three hits");
    trace_free(&t);
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    self_check(write_file(path, "1,a,10\n2,a,0\n"), "write a bad CSV file");
    self_check(!trace_read(&t, path, "csv", &f) && strstr(f.message, "line 2"),
               "CSV: a zero size is refused with its line");
    trace_free(&t);
}

/* On a Zipf trace no policy beats the compulsory misses, and the scan variant only adds keys. */
static void self_test_replay(void)
{
    options opt = {.keys = 1000, .requests = 20000, .scan_every = 2000, .seed = 7};
    trace   plain = {0}, scanned = {0};
    failure f;
    bool ok = trace_zipf(&plain, &opt, 0.99, false, &f) &&
              trace_zipf(&scanned, &opt, 0.99, true, &f);
    self_check(ok && scanned.count == plain.count + 10 * 200, "scans add a tenth");
    self_check(ok && scanned.distinct == plain.distinct + 10 * 200, "scan keys are fresh");
    for (int p = 0; ok && p < POLICY_COUNT; p++) {
        uint64_t hits = 0;
        self_check(replay_run(&plain, POLICIES[p], 100, &hits, &f) &&
                       hits <= plain.count - plain.distinct && hits > 0,
                   "hits within the compulsory misses");
    }
    trace_free(&plain);
    trace_free(&scanned);
}

static int run_self_test(void)
{
    self_test_zipf();
    self_test_replay();
    char    dir[4096];
    failure f;
    if (temp_dir(dir, sizeof dir, &f)) {
        self_test_arc(dir);
        self_test_csv(dir);
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    } else {
        self_check(false, f.message);
    }
    printf("self-test: %d checks, %d failed\n", self_checks, self_failures);
    return self_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- options ------------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: aside-trace [--quick] [--keys N] [--requests N] [--scan-every N] [--seed N]\n"
            "                   [--trace FILE --format arc|csv] [--overhead N] [--self-test]\n"
            "Hit ratios of the eviction policies (");
    for (const char *const *n = policy_names(); *n; n++)
        fprintf(out, "%s%s", n == policy_names() ? "" : ", ", *n);
    fprintf(out,
            ") at 1%%, 10%% and 30%% of the working set, on\n"
            "Zipf traces (alpha 0.8, 0.99; with and without scans) or on a trace file, then the\n"
            "memory a small key costs in a cache (--overhead 0: skip).\n"
            "  --keys N        Zipf keys (default %d; --quick %d)\n"
            "  --requests N    Zipf requests (default %d; --quick %d)\n"
            "  --scan-every N  a scan of N/%d fresh keys after every N requests (default: a\n"
            "                  tenth of the requests)\n"
            "  --seed N        random seed (default 1)\n"
            "  --trace FILE    replay FILE instead of the Zipf traces\n"
            "  --format F      the file's format: arc (default) or csv\n"
            "  --overhead N    keys stored to measure memory per key (default %d; --quick %d)\n"
            "  --self-test     check the sampler, the file formats and the replay, then exit\n",
            DEFAULT_KEYS, QUICK_KEYS, DEFAULT_REQUESTS, QUICK_REQUESTS, SCAN_FRACTION,
            DEFAULT_OVERHEAD_KEYS, QUICK_OVERHEAD_KEYS);
}

static bool option_number(const char *name, const char *text, uint64_t *out, failure *f)
{
    const char *end;
    if (!text || !parse_u64(text, &end, out) || *end || *out == 0)
        return fail(f, "%s needs a positive number", name);
    return true;
}

static bool option_value(int argc, char **argv, int *i, const char **out, failure *f)
{
    if (*i + 1 >= argc)
        return fail(f, "%s needs a value", argv[*i]);
    *out = argv[++*i];
    return true;
}

static bool option_one(int argc, char **argv, int *i, options *o, failure *f)
{
    const char *a = argv[*i], *v = NULL;
    if (strcmp(a, "--quick") == 0)
        o->quick = true;
    else if (strcmp(a, "--self-test") == 0)
        o->self_test = true;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        o->help = true;
    else if (strcmp(a, "--trace") == 0)
        return option_value(argc, argv, i, &o->trace_path, f);
    else if (strcmp(a, "--format") == 0)
        return option_value(argc, argv, i, &o->format, f);
    else if (strcmp(a, "--overhead") == 0) {
        o->overhead_set = true;
        if (!option_value(argc, argv, i, &v, f))
            return false;
        o->overhead = 0; /* "0": skip the measure */
        return strcmp(v, "0") == 0 || option_number(a, v, &o->overhead, f);
    } else {
        uint64_t *target = strcmp(a, "--keys") == 0         ? &o->keys
                           : strcmp(a, "--requests") == 0   ? &o->requests
                           : strcmp(a, "--scan-every") == 0 ? &o->scan_every
                           : strcmp(a, "--seed") == 0       ? &o->seed
                                                            : NULL;
        if (!target)
            return fail(f, "unknown option %s (--help lists them)", a);
        return option_value(argc, argv, i, &v, f) && option_number(a, v, target, f);
    }
    return true;
}

static bool options_parse(int argc, char **argv, options *o, failure *f)
{
    memset(o, 0, sizeof *o);
    o->format = "arc";
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!option_one(argc, argv, &i, o, f))
            return false;
    }
    if (!o->keys)
        o->keys = o->quick ? QUICK_KEYS : DEFAULT_KEYS;
    if (!o->requests)
        o->requests = o->quick ? QUICK_REQUESTS : DEFAULT_REQUESTS;
    if (!o->scan_every)
        o->scan_every = o->requests / SCANS_PER_TRACE ? o->requests / SCANS_PER_TRACE : 1;
    if (!o->overhead_set)
        o->overhead = o->quick ? QUICK_OVERHEAD_KEYS : DEFAULT_OVERHEAD_KEYS;
    if (o->keys > UINT32_MAX / 2 || o->requests > UINT32_MAX / 2)
        return fail(f, "--keys and --requests must stay below %u", UINT32_MAX / 2);
    return true;
}

static void print_command(int argc, char **argv)
{
    printf("command: aside-trace");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n\n");
}

int main(int argc, char **argv)
{
    options o;
    failure f;
    if (!options_parse(argc, argv, &o, &f)) {
        fprintf(stderr, "aside-trace: %s\n", f.message);
        usage(stderr);
        return 2;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (o.self_test)
        return run_self_test();
    print_command(argc, argv);
    double start = seconds_now();
    bool   ok = run_hit_ratios(&o, &f);
    if (ok && o.overhead) {
        printf("\nmemory per key:\n");
        ok = run_overhead(o.overhead, &f);
    }
    if (!ok) {
        fprintf(stderr, "aside-trace: %s\n", f.message);
        return 1;
    }
    printf("\ntotal %.1f s\n", seconds_now() - start);
    return 0;
}
