/* aside.h -- the embeddable cache-aside library (libaside).
 *
 * A cache holds values named by keys. A key is a relative path ("sales/2024.parquet") under the
 * root of a system of record (SOR): a local directory, or a source the program supplies through
 * callbacks. Reading a key that the cache does not hold fetches it from the SOR, writes it to the
 * disk tier (a directory the cache owns) and keeps it in memory while the memory budget allows
 * (cache-aside). Restarting a cache on the same disk tier finds its values again.
 *
 * Thread safety: every function taking an aside_cache may be called from any number of threads at
 * once. Values are immutable and reference counted; a value obtained from the cache stays valid
 * until the caller releases it, even if the key is deleted or evicted in the meantime.
 *
 * Errors: functions return an aside_status. Where they take an aside_error pointer (may be NULL),
 * a failure also writes a human-readable reason there. No function aborts on bad input. */
#ifndef ASIDE_H
#define ASIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function below is libaside's public interface: the library is built with hidden
 * visibility and ASIDE_BUILDING defined, so these are the only symbols it exports. */
#if defined(ASIDE_BUILDING) && defined(__GNUC__)
#define ASIDE_API __attribute__((visibility("default")))
#else
#define ASIDE_API
#endif

/* ---- status and errors ------------------------------------------------------------------- */

typedef enum aside_status {
    ASIDE_OK = 0,
    ASIDE_ERR_INVALID,   /* a bad argument: malformed key, bad configuration */
    ASIDE_ERR_NOT_FOUND, /* the key is neither in the cache nor in the system of record */
    ASIDE_ERR_TOO_LARGE, /* larger than a configured limit */
    ASIDE_ERR_BAD_VALUE, /* the content does not parse as its type (e.g. invalid JSON) */
    ASIDE_ERR_CONFLICT,  /* the key clashes with an existing one (a file where a folder is) */
    ASIDE_ERR_DENIED,    /* the system of record refused access (credentials, permissions) */
    ASIDE_ERR_SOR,       /* the system of record failed */
    ASIDE_ERR_TIMEOUT,   /* the system of record did not answer in time */
    ASIDE_ERR_IO,        /* the local disk failed */
    ASIDE_ERR_NOMEM,     /* out of memory, or of file descriptors (code "too_many_open_files"):
                            the call changed nothing and may be retried */
    ASIDE_ERR_INTERNAL,  /* a bug: please report it */
    ASIDE_ERR_WOULD_BLOCK, /* memory_only was asked and the value is not in memory */
    ASIDE_ERR_FULL,       /* what must stay in memory (pinned keys, collections) would pass the
                             memory budget */
    ASIDE_ERR_WRONG_TYPE  /* an operation for another type (a list operation on a map) */
} aside_status;

#define ASIDE_ERROR_MESSAGE_MAX 512

/* A failure's status and reason. Plain data: declare one on the stack and pass its address.
 * code is a more specific name the system of record gave (S3's "AccessDenied", "SlowDown"),
 * or the library's own ("too_many_open_files"), or empty. */
typedef struct aside_error {
    aside_status status;
    char code[64];
    char message[ASIDE_ERROR_MESSAGE_MAX];
} aside_error;

/* A stable snake_case name for a status ("not_found"), for logs and wire formats. Never NULL. */
ASIDE_API const char *aside_status_name(aside_status status);

/* ---- values ------------------------------------------------------------------------------ */

typedef enum aside_value_type {
    ASIDE_TYPE_BYTES = 0, /* any file, served as it is */
    ASIDE_TYPE_JSON,      /* a JSON document, validated when loaded */
    ASIDE_TYPE_FRAME,     /* a DataFrame (parquet, CSV, JSON lines, Arrow), decoded when loaded;
                             its bytes are the file's, its memory form the decoded frame */
    /* Collections: kept by the cache alone, changed by operations (aside_op), read as JSON. */
    ASIDE_TYPE_LIST,      /* a JSON array: push and pop at both ends */
    ASIDE_TYPE_SET,       /* a JSON array of distinct members */
    ASIDE_TYPE_MAP,       /* a JSON object: fields and their values */
    ASIDE_TYPE_COUNTER    /* a JSON integer */
} aside_value_type;

/* Where a read found its value. */
typedef enum aside_source {
    ASIDE_SOURCE_MEMORY = 0,
    ASIDE_SOURCE_DISK,
    ASIDE_SOURCE_SOR
} aside_source;

/* An immutable, reference-counted value. Its bytes are either in memory (aside_value_data) or,
 * for a value larger than the memory budget, in a read-only file (aside_value_fd) the caller reads
 * with pread(); exactly one of the two is available. */
typedef struct aside_value aside_value;

ASIDE_API aside_value_type aside_value_type_of(const aside_value *value);
ASIDE_API uint64_t         aside_value_size(const aside_value *value);
/* The bytes, or NULL when the value lives in a file. Valid until the value is released. */
ASIDE_API const void      *aside_value_data(const aside_value *value);
/* A file descriptor open for reading, or -1 when the value is in memory. Owned by the value:
 * do not close it, and read it with pread() (other threads share it). */
ASIDE_API int              aside_value_fd(const aside_value *value);
/* Take another reference; returns value. */
ASIDE_API aside_value     *aside_value_retain(aside_value *value);
/* Drop a reference; the last one frees the value. NULL is ignored. */
ASIDE_API void             aside_value_release(aside_value *value);

/* For a frame value: pandas' df.info() as JSON (what the server's info function answers) and
 * as the text pandas prints; each of json and text may be NULL, else the caller frees it with
 * free(). rows and columns (may be NULL) receive the shape. ASIDE_ERR_INVALID for a value
 * that is no frame. */
ASIDE_API aside_status aside_frame_info(const aside_value *value, char **json, char **text,
                                        uint64_t *rows, uint64_t *columns, aside_error *err);

/* The value type a key gets by its name: ".json" is JSON; ".parquet", ".csv", ".csv.gz",
 * ".jsonl", ".ndjson", ".arrow", ".feather" and ".ipc" are frames; everything else bytes. */
ASIDE_API aside_value_type aside_value_type_for_key(const char *key);
/* The type named name, one of the seven "bytes", "json", "frame", "list", "set", "map" and
 * "counter": ASIDE_OK, or ASIDE_ERR_INVALID. */
ASIDE_API aside_status     aside_value_type_parse(const char *name, aside_value_type *out);
/* A stable lowercase name of a type ("json"), one of the seven above. */
ASIDE_API const char      *aside_value_type_name(aside_value_type type);

/* ---- keys -------------------------------------------------------------------------------- */

/* The longest key. A disk tier or directory SOR whose root is too long for a key this long
 * (root, "/.aside/meta/", key, ".meta" within PATH_MAX, 4096) is refused when the cache opens,
 * so a key accepted always fits a path. */
#define ASIDE_KEY_MAX_BYTES 1024
/* The longest component of a key (a folder or file name between slashes): NAME_MAX (255) less
 * the longest suffix the cache appends to a name on disk, the directory SOR's temporary file
 * "<name>.aside-write.XXXXXX" (19 bytes; the disk tier's sidecar "<name>.meta" is shorter), so a
 * key accepted can always be stored. */
#define ASIDE_KEY_COMPONENT_MAX_BYTES 236

/* Check that key (len bytes, not necessarily NUL-terminated) is a valid relative path: not
 * empty, at most ASIDE_KEY_MAX_BYTES, not absolute, no NUL or control characters, no empty,
 * "." or ".." component, no component longer than ASIDE_KEY_COMPONENT_MAX_BYTES, and not
 * inside the reserved folder ".aside". ASIDE_OK or ASIDE_ERR_INVALID with the reason. */
ASIDE_API aside_status aside_key_check(const char *key, size_t len, aside_error *err);

/* ---- systems of record ------------------------------------------------------------------- */

/* What a system of record says about an object. */
typedef struct aside_object_info {
    uint64_t size;
    int64_t  mtime_ns; /* modification time, nanoseconds since the epoch; 0 if unknown */
    char     etag[128]; /* an opaque version tag, "" if none */
    bool     not_modified; /* a conditional fetch found the object unchanged: nothing copied */
} aside_object_info;

/* One object in a listing of a system of record. */
typedef struct aside_object_entry {
    char    *key; /* owned by the array */
    uint64_t size;
    int64_t  mtime_ns;
} aside_object_entry;

ASIDE_API void aside_object_entries_free(aside_object_entry *entries, size_t count);

/* A system of record supplied by the program. fetch copies the object named key into fd (a
 * regular file opened for writing, positioned at 0) and fills *info; it returns ASIDE_OK,
 * ASIDE_ERR_NOT_FOUND, or another status with a reason in err. It is called from any thread,
 * at most once at a time per key. */
typedef struct aside_sor_callbacks {
    void *ctx;
    aside_status (*fetch)(void *ctx, const char *key, int fd, aside_object_info *info,
                          aside_error *err);
} aside_sor_callbacks;

/* ---- the cache --------------------------------------------------------------------------- */

/* S3 (or an S3-compatible service) as system of record. Credentials: the static keys below when
 * set, else the AWS SDKs' chain, read from the environment when the cache opens (environment,
 * shared credentials and config files, ECS container credentials, EC2 instance metadata v2). */
typedef struct aside_s3_config {
    const char *bucket;   /* NULL: no S3 */
    const char *prefix;   /* key prefix ("data" or "data/"); NULL or "": the bucket's root */
    const char *region;   /* NULL: us-east-1 */
    const char *endpoint; /* an S3-compatible endpoint URL (path-style addressing); NULL: AWS */
    uint64_t part_size_bytes;           /* ranged GET and multipart part size; 0: 8 MiB */
    unsigned concurrency;               /* parts in flight per load; 0: 8 */
    unsigned max_attempts;              /* attempts per request, with backoff; 0: 3 */
    unsigned timeout_s;                 /* an attempt without progress this long fails; 0: 30 */
    uint64_t multipart_threshold_bytes; /* writes above this are multipart; 0: 16 MiB */
    const char *access_key_id, *secret_access_key, *session_token; /* optional static keys */
} aside_s3_config;

/* Durability of the values the cache alone holds. Every change is written to the operating
 * system before it is acknowledged, so a killed process loses nothing; the policy says what a
 * crash of the machine may lose. */
typedef enum aside_fsync {
    ASIDE_FSYNC_EVERYSEC = 0, /* flushed to the disk once a second: at most a second lost */
    ASIDE_FSYNC_ALWAYS,       /* flushed before each acknowledgement: nothing lost */
    ASIDE_FSYNC_NEVER         /* left to the operating system */
} aside_fsync;

typedef struct aside_config {
    const char *data_dir;  /* the disk tier (LOCAL_DATA_DIR); created if missing */
    const char *sor_dir;   /* a local directory used as the system of record (REMOTE_STORAGE) */
    const aside_sor_callbacks *sor; /* when not NULL, used instead of sor_dir; copied at open */
    aside_s3_config s3;             /* S3; when s3.bucket is set, S3 is the default storage */
    uint64_t memory_limit_bytes;    /* bytes of values in memory; 0: 25% of RAM (or cgroup limit) */
    uint64_t disk_limit_bytes;      /* bytes of the disk tier; 0: 80% of free space at open */
    const char *policy;             /* eviction policy: "s3fifo" (default), "lru" or "lfu" */
    /* where frames are published for processes on the host (ASIDE_SHM_DIR): NULL or "": a
     * private folder under /dev/shm (mode 0700) for this process; "off": never */
    const char *shm_dir;
    /* When the values the cache alone holds (collections, edited JSON documents) reach the
     * disk through the journal: ASIDE_FSYNC_EVERYSEC (the default), ASIDE_FSYNC_ALWAYS or
     * ASIDE_FSYNC_NEVER (see aside_fsync) */
    aside_fsync fsync;
    uint64_t default_ttl_ms; /* a key expires this long after it enters the cache; 0: never */
    /* the journal is compacted when it passes this size and twice its size after the last
     * compaction; 0: 64 MiB */
    uint64_t journal_compact_bytes;
    /* How deep JSON the cache takes may nest (arrays and objects inside one another: [[1]] is
     * 2 levels): a JSON document put, written or fetched from the system of record, an
     * operation's arguments, and what an operation would make of a collection or document.
     * Deeper is refused with ASIDE_ERR_INVALID, err->code "too_deep", and nothing changes (a
     * fetched document is not cached). The bound keeps the recursive code that serialises,
     * copies and frees JSON within a thread's stack. 0: 1000; at most 2000 (else
     * aside_cache_open fails with ASIDE_ERR_INVALID). The server's ASIDE_JSON_MAX_DEPTH. */
    unsigned json_max_depth;
    unsigned sql_threads; /* threads DuckDB runs SQL on, in each of its two databases; 0: 2 */
} aside_config;

/* Fill cfg with the defaults: "./data/cache", "./data/sor", limits 0 (derived), "s3fifo". */
ASIDE_API void aside_config_init(aside_config *cfg);

typedef struct aside_cache aside_cache;

/* Open a cache. The disk tier is re-indexed: temporary files and files without a valid sidecar
 * are removed. On success returns ASIDE_OK and sets *out, which the caller releases with
 * aside_cache_close(). On failure sets nothing. */
ASIDE_API aside_status aside_cache_open(const aside_config *cfg, aside_cache **out,
                                       aside_error *err);
/* Close a cache. Values still held by callers stay valid until released. */
ASIDE_API void         aside_cache_close(aside_cache *cache);

/* Read key: from memory, else the disk tier, else the system of record (which also fills both
 * tiers). Concurrent reads of a missing key cause one fetch; the others wait for it. On success
 * sets *out (release it) and, if source is not NULL, where it was found. */
ASIDE_API aside_status aside_get(aside_cache *cache, const char *key, aside_value **out,
                                 aside_source *source, aside_error *err);

/* Which system of record ("storage") a call uses: "s3" or "sd" (the directory); NULL or a NULL
 * options pointer: the default, s3 when a bucket is configured, else sd. A key is one cache
 * entry whichever storage loaded it; the storage decides where a miss is fetched from. */
typedef struct aside_read_options {
    const char *storage;
    /* The type to read the key as ("bytes", "json", "frame"); NULL: the cached copy's, else the
     * key's by its name. A cached copy of another type is decoded again as this one. put also
     * takes the collection types ("list", "set", "map", "counter"); the other calls refuse
     * them with ASIDE_ERR_INVALID: a file is never read or written as a collection. */
    const char *type;
    bool        memory_only; /* read: answer from memory or fail with ASIDE_ERR_WOULD_BLOCK */
    /* read: a cached copy validated longer ago than this is served as it is and revalidated in
     * the background (one revalidation per key at a time); 0: never */
    unsigned    max_age_s;
    /* update: when the system of record fails, answer the cached copy (info->stale) instead */
    bool        stale_if_error;
} aside_read_options;

/* How a read or update was answered. */
typedef struct aside_read_info {
    aside_source source;
    bool         revalidated; /* update: the system of record said the copy is current */
    bool         stale; /* read: older than max_age; update: served because the SOR failed */
    bool         uncached; /* fetched from the system of record and served without being kept:
                              the disk tier could not hold it (full, failing). The next read
                              fetches it again. */
} aside_read_info;

/* aside_get with options; info may be NULL. */
ASIDE_API aside_status aside_read(aside_cache *cache, const char *key,
                                  const aside_read_options *options, aside_value **out,
                                  aside_read_info *info, aside_error *err);

/* Revalidate key with the system of record (a conditional fetch on the stored version tag) and
 * replace the cached copy if it changed. If the system of record no longer has it, the cached
 * copy is removed and ASIDE_ERR_NOT_FOUND returned; if the system of record fails, the cached
 * copy is kept. out may be NULL. */
ASIDE_API aside_status aside_update(aside_cache *cache, const char *key,
                                    const aside_read_options *options, aside_value **out,
                                    aside_read_info *info, aside_error *err);

/* Write data as key's new content to the system of record, then make it the cached value.
 * A value that does not validate (invalid JSON) is refused before anything is written; a failed
 * write changes neither the system of record nor the cache. info (may be NULL) receives what
 * the system of record reported (size, version tag). */
ASIDE_API aside_status aside_write(aside_cache *cache, const char *key,
                                   const aside_read_options *options, const void *data,
                                   size_t size, aside_object_info *info, aside_error *err);

/* List the objects of the system of record whose keys start with prefix (NULL or "": all),
 * sorted by key. The caller frees the array with aside_object_entries_free(). */
ASIDE_API aside_status aside_list(aside_cache *cache, const aside_read_options *options,
                                  const char *prefix, aside_object_entry **out, size_t *count,
                                  aside_error *err);

/* Keep data as key's value in the cache (memory and disk tier) without touching the system of
 * record: validated by type first (options->type or the key's), like aside_write. Until it is
 * evicted or deleted the cache answers it; a later update asks the system of record. With a
 * collection type (options->type "list", "set", "map" or "counter") data is the collection's
 * whole content as JSON (an array, an array, an object, an integer): it is kept in memory and
 * the journal, like the collections aside_op creates. */
ASIDE_API aside_status aside_put(aside_cache *cache, const char *key,
                                 const aside_read_options *options, const void *data,
                                 size_t size, aside_error *err);

/* Run the operation op on key's collection or JSON document. args_json is a JSON object of the
 * operation's arguments (NULL: none). On success *result_json (free it with free()) receives
 * the answer as JSON text. Changes are atomic per key, journaled, and on the disk as the
 * cache's fsync policy says before this returns.
 *
 * A writing operation on a key the cache does not hold creates an empty collection of the
 * operation's type first; a reading one answers as that empty collection would and creates
 * nothing. An operation on a key of another type fails with ASIDE_ERR_WRONG_TYPE, an unknown
 * operation or a missing or malformed argument with ASIDE_ERR_INVALID, a change that would pass
 * the memory budget with ASIDE_ERR_FULL; a refused operation changes nothing. Also
 * ASIDE_ERR_INVALID: a value that would make the collection or document nest deeper than
 * json_max_depth (code "too_deep"), a key that is not UTF-8 (code "bad_utf8": the journal is
 * JSON), arithmetic past 64-bit integers or the largest real (code "overflow"). Some failures
 * carry a more specific name in err->code, given below. The operations, their arguments and
 * (after "->") their answers:
 *
 * Lists (a JSON array):
 *   list_push       "value", or "values" (an array, pushed in order); "end": "back" (the
 *                   default) or "front" -> the new length
 *   list_pop        "end"; "count" (optional, at least 1) -> the value taken (from an empty
 *                   list: ASIDE_ERR_NOT_FOUND, code "empty"), or with "count" an array of up
 *                   to count values
 *   list_range      "start", "stop": Python slice bounds (negatives count from the end, stop is
 *                   excluded; by default the whole list) -> an array
 *   list_length     -> the length
 *   list_index      "index" (negatives count from the end) -> the value there
 *                   (ASIDE_ERR_NOT_FOUND, code "out_of_range")
 *   list_trim       "start", "stop": keeps list[start:stop] -> the new length
 * Sets (distinct JSON values, listed in the order of their compact JSON text):
 *   set_add         "value" or "values" -> how many were added
 *   set_remove      "value" or "values" -> how many were removed
 *   set_members     -> an array of the members
 *   set_contains    "value" -> true or false
 *   set_size        -> the number of members
 *   set_union, set_intersection, set_difference
 *                   "keys" (an array of keys); key, which may be NULL for these three only, is
 *                   the first operand; a key the cache does not hold is an empty set -> an
 *                   array of the members
 * Maps (a JSON object):
 *   map_set         "field" (a string) and "value", or "fields" (an object of them) -> how
 *                   many fields were new
 *   map_get         "field" -> its value (ASIDE_ERR_NOT_FOUND, code "no_field")
 *   map_delete      "field", or "fields" (an array of them) -> how many were removed
 *   map_all         -> the object
 *   map_length      -> the number of fields
 *   map_increment   "field"; "by" (a number, default 1: an integer sum stays an integer, else
 *                   it is a real) -> the new value (ASIDE_ERR_WRONG_TYPE for a field that holds
 *                   no number; code "overflow" for a sum past either)
 * Counters (a 64-bit JSON integer; a result past 64 bits is ASIDE_ERR_INVALID, "overflow"):
 *   counter_increment, counter_decrement
 *                   "by" (an integer, default 1) -> the new value
 *   counter_get     -> the value (0 for a key the cache does not hold)
 * JSON documents (a JSON key from the system of record, read through on its first edit and the
 * cache's own from then on, or one made by json_set at the root or by json_merge; with no
 * document, the other operations fail with ASIDE_ERR_NOT_FOUND):
 *   json_get        "pointer" (RFC 6901; "" or none: the whole document) -> the value there
 *                   (ASIDE_ERR_NOT_FOUND, code "no_such_pointer"; a malformed pointer is
 *                   ASIDE_ERR_INVALID, code "bad_pointer", for every json_ operation)
 *   json_set        "pointer", "value"; an array index equal to the array's length, or "-",
 *                   appends -> {"result": "success"}
 *   json_delete     "pointer" -> {"result": "success"}
 *   json_merge      "patch" (an RFC 7386 merge patch; "value" is read when "patch" is absent)
 *                   -> the new document */
ASIDE_API aside_status aside_op(aside_cache *cache, const char *key, const char *op,
                                const char *args_json, char **result_json, aside_error *err);

/* Give key a time to live: it leaves the cache (memory and disk) ttl_ms from now; 0 removes the
 * time to live. ASIDE_ERR_NOT_FOUND if the cache does not hold key. */
ASIDE_API aside_status aside_expire(aside_cache *cache, const char *key, uint64_t ttl_ms,
                                    aside_error *err);
/* The time key has left in *ttl_ms, or -1 when it does not expire. */
ASIDE_API aside_status aside_ttl(aside_cache *cache, const char *key, int64_t *ttl_ms,
                                 aside_error *err);
/* Pin key in memory (loading it first if need be): it is never evicted until unpinned. Pinned
 * bytes count against the memory budget; a pin that cannot fit fails with ASIDE_ERR_FULL. */
ASIDE_API aside_status aside_pin(aside_cache *cache, const char *key,
                                 const aside_read_options *options, aside_error *err);
ASIDE_API aside_status aside_unpin(aside_cache *cache, const char *key, aside_error *err);
/* Drop key's value from memory, keeping its file in the disk tier. ASIDE_ERR_CONFLICT for a
 * key whose only copy is in memory and the journal (a collection, an edited JSON document) and
 * for a pinned key. */
ASIDE_API aside_status aside_evict(aside_cache *cache, const char *key, aside_error *err);
/* Compact the journal of the values the cache alone holds: rewrite it as one record per
 * value, keeping only what is current. It also happens by itself as the journal grows
 * (journal_compact_bytes). */
ASIDE_API aside_status aside_compact(aside_cache *cache, aside_error *err);

/* Remove key from memory and the disk tier (never from the system of record).
 * ASIDE_ERR_NOT_FOUND if the cache does not hold it. */
ASIDE_API aside_status aside_delete(aside_cache *cache, const char *key, aside_error *err);

/* Figures of the whole cache. */
typedef struct aside_stats {
    uint64_t keys;
    uint64_t memory_used_bytes, memory_limit_bytes;
    uint64_t disk_used_bytes, disk_limit_bytes;
    uint64_t hits;        /* reads served from memory or disk */
    uint64_t misses;      /* reads that had to go to the system of record */
    uint64_t evictions_memory, evictions_disk;
    uint64_t sor_fetches; /* fetches from the system of record (reads and updates) */
    uint64_t shm_publications; /* frames published in shared memory */
    uint64_t shm_maps;         /* requests answered with a publication */
    uint64_t shm_bytes;        /* bytes of the publications (part of memory_used_bytes) */
    uint64_t pinned_bytes;     /* in memory for good: pinned keys and collections */
    uint64_t expirations;      /* keys removed because their time to live ran out */
    uint64_t log_bytes;        /* the size of the journal of the values the cache alone holds */
    uint64_t log_compactions;  /* compactions of the journal */
    uint64_t sql_spill_bytes;  /* what SQL queries spilled to the disk tier's folder, now */
    uint64_t sql_spill_limit_bytes; /* its bound: 10% of disk_limit_bytes, beside it */
    double   uptime_seconds;
    /* The fields below were added later, at the end, so the ones above keep their offsets.
     * The struct grows with them: a program built against an older aside.h must be rebuilt
     * before it links a newer libaside. Every counter counts since the cache was opened. */
    uint64_t hits_memory;     /* hits served from memory ... */
    uint64_t hits_disk;       /* ... and from the disk tier: hits is their sum */
    uint64_t sor_fetches_dir; /* sor_fetches by system of record: the directory (or the
                                 program's callbacks) ... */
    uint64_t sor_fetches_s3;  /* ... and S3 */
    uint64_t sor_bytes_dir, sor_bytes_s3; /* bytes those fetches copied into the disk tier */
    uint64_t sor_errors_not_found; /* fetches that failed: the object is not there ... */
    uint64_t sor_errors_denied;    /* ... access refused (credentials, permissions) ... */
    uint64_t sor_errors_timeout;   /* ... no answer in time ... */
    uint64_t sor_errors_other;     /* ... any other failure (5xx after retries, a bad answer) */
    uint64_t sor_retries;          /* requests to the system of record tried again after a
                                      transient failure (S3: 5xx, throttling, a stall) */
    uint64_t evictions_explicit;   /* values dropped from memory by aside_evict (the disk
                                      tier keeps them); evictions_memory and evictions_disk
                                      count those the budgets forced */
    uint64_t log_appends;          /* records appended to the journal */
    uint64_t log_syncs;            /* syncs (fdatasync) of appended records */
    double   log_compaction_seconds; /* time compactions took, in all */
    uint64_t flight_waiting;       /* reads waiting now for another read's load of the same
                                      key (single flight) */
    uint64_t flight_waits;         /* reads that waited so, in all */
} aside_stats;

ASIDE_API void aside_stats_get(aside_cache *cache, aside_stats *out);

/* One key as telemetry sees it. */
typedef struct aside_entry_info {
    char            *key;    /* owned by the array */
    aside_value_type type;
    uint64_t         bytes;
    bool             in_memory; /* else only on disk */
    uint64_t         hits;
    int64_t          last_access_ms; /* unix time in milliseconds */
    uint64_t         generation; /* changes whenever the key gets a new content */
    bool             pinned;
    bool             cache_only; /* no system of record holds it: put, collections, edits */
    int64_t          expires_ms; /* unix time in milliseconds when it expires; 0: never */
} aside_entry_info;

/* A snapshot of every key, sorted by key. The caller frees it with aside_entries_free(). */
ASIDE_API aside_status aside_entries(aside_cache *cache, aside_entry_info **out,
                                     size_t *count, aside_error *err);
ASIDE_API void         aside_entries_free(aside_entry_info *entries, size_t count);

/* One entry's snapshot; ASIDE_ERR_NOT_FOUND if not cached. Free info->key with free(). */
ASIDE_API aside_status aside_entry(aside_cache *cache, const char *key,
                                   aside_entry_info *info, aside_error *err);

/* ---- helpers ----------------------------------------------------------------------------- */

/* Parse a byte size: a number with an optional unit (B, K/KiB, M/MiB, G/GiB, T/TiB binary;
 * KB, MB, GB, TB decimal) or a percentage ("25%") of whole, the figure percentages refer to.
 * Returns ASIDE_OK and sets *out, or ASIDE_ERR_INVALID. */
ASIDE_API aside_status aside_parse_size(const char *text, uint64_t whole, uint64_t *out,
                                        aside_error *err);

#ifdef __cplusplus
}
#endif
#endif
