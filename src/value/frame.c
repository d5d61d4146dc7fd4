/* frame.c -- the frame type: a DataFrame decoded from a parquet, CSV, JSON or Arrow file.
 *
 * Unlike bytes and JSON, a frame's memory form is not its file: the disk tier keeps the file as
 * the system of record had it (raw reads stream it from there), and memory holds the decoded
 * frame (frame.h), counted at its exact size. Decoding is also the validation: a file DuckDB or
 * the Arrow reader cannot read is refused, and nothing is cached.
 *
 * The reader is chosen by the key's extension; a key of another name read with type=frame is
 * recognised by its first bytes (parquet and Arrow magic, a JSON bracket), else read as CSV. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "util/util.h"
#include "value.h"

typedef enum frame_file { FILE_PARQUET, FILE_CSV, FILE_CSV_GZIP, FILE_JSON_ARRAY, FILE_JSONL,
                          FILE_ARROW } frame_file;

static const struct {
    const char *suffix;
    frame_file  file;
} suffixes[] = {
    {".parquet", FILE_PARQUET}, {".csv", FILE_CSV},       {".csv.gz", FILE_CSV_GZIP},
    {".jsonl", FILE_JSONL},     {".ndjson", FILE_JSONL},  {".arrow", FILE_ARROW},
    {".feather", FILE_ARROW},   {".ipc", FILE_ARROW},     {".json", FILE_JSON_ARRAY},
};

static int suffix_of(const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (value_key_has_suffix(key, len, suffixes[i].suffix))
            return (int)i;
    }
    return -1;
}

static bool frame_claims_key(const char *key, size_t len)
{
    (void)len;
    int i = suffix_of(key);
    return i >= 0 && suffixes[i].file != FILE_JSON_ARRAY;
}

static aside_status frame_check(const value_context *ctx, const void *data, size_t size,
                                aside_error *err)
{
    (void)ctx, (void)data, (void)size, (void)err;
    return ASIDE_OK; /* decoding checks */
}

static const char *frame_content_type(const char *key)
{
    return value_kind_bytes.content_type(key); /* raw reads send the file as it is */
}

/* What the first bytes say the file is. */
static frame_file sniff(int fd)
{
    char head[8] = {0};
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n >= 4 && memcmp(head, "PAR1", 4) == 0)
        return FILE_PARQUET;
    if (n >= 6 && memcmp(head, "ARROW1", 6) == 0)
        return FILE_ARROW;
    if (n >= 2 && (unsigned char)head[0] == 0x1f && (unsigned char)head[1] == 0x8b)
        return FILE_CSV_GZIP;
    for (ssize_t i = 0; i < n; i++) {
        if (head[i] == '[')
            return FILE_JSON_ARRAY;
        if (head[i] == '{')
            return FILE_JSONL;
        if (head[i] != ' ' && head[i] != '\n' && head[i] != '\r' && head[i] != '\t')
            break;
    }
    return FILE_CSV;
}

static aside_status decode_arrow(int fd, uint64_t limit_bytes, frame **out, aside_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return error_set(err, ASIDE_ERR_IO, "cannot stat the file");
    if (limit_bytes && (uint64_t)sb.st_size > limit_bytes)
        return error_set(err, ASIDE_ERR_TOO_LARGE, "the frame needs more than the memory "
                         "limit of %llu bytes", (unsigned long long)limit_bytes);
    void *map = sb.st_size ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (map == MAP_FAILED)
        return error_set(err, ASIDE_ERR_IO, "cannot map the file");
    aside_status st = arrow_decode(map ? map : "", (size_t)sb.st_size, out, err);
    if (map)
        munmap(map, (size_t)sb.st_size);
    return st;
}

/* Say key where a reader's message names the file's path (a temporary file of the disk tier). */
static void name_the_key(aside_error *err, const char *path, const char *key)
{
    buf b = {0};
    size_t path_len = strlen(path);
    for (const char *at = err->message; *at;) {
        const char *hit = strstr(at, path);
        size_t n = hit ? (size_t)(hit - at) : strlen(at);
        buf_append(&b, at, n);
        if (!hit)
            break;
        buf_puts(&b, key);
        at = hit + path_len;
    }
    if (!b.failed && b.data && !strstr(b.data, key)) {
        buf_reset(&b);
        buf_printf(&b, "%s: %s", key, err->message);
    }
    if (!b.failed && b.data)
        snprintf(err->message, sizeof err->message, "%s", b.data);
    buf_free(&b);
}

aside_status value_decode_frame(const value_context *ctx, const char *key, const char *path,
                                int fd, frame **out, aside_error *err)
{
    static const engine_format formats[] = {[FILE_PARQUET] = ENGINE_PARQUET,
                                            [FILE_CSV] = ENGINE_CSV,
                                            [FILE_CSV_GZIP] = ENGINE_CSV_GZIP,
                                            [FILE_JSON_ARRAY] = ENGINE_JSON_ARRAY,
                                            [FILE_JSONL] = ENGINE_JSONL};
    int i = suffix_of(key);
    frame_file file = i >= 0 ? suffixes[i].file : sniff(fd);
    aside_status st;
    if (file == FILE_ARROW)
        st = decode_arrow(fd, ctx->limit_bytes, out, err);
    else
        st = engine_load(ctx->engine, path, formats[file], ctx->limit_bytes, out, err);
    if (st == ASIDE_OK && ctx->limit_bytes && (*out)->memory_bytes > ctx->limit_bytes) {
        st = error_set(err, ASIDE_ERR_TOO_LARGE, "the frame needs %llu bytes, more than the "
                       "memory limit of %llu", (unsigned long long)(*out)->memory_bytes,
                       (unsigned long long)ctx->limit_bytes);
        frame_release(*out);
    }
    if (st != ASIDE_OK && err)
        name_the_key(err, path, key);
    return st;
}

const value_kind value_kind_frame = {ASIDE_TYPE_FRAME, "frame", frame_claims_key, frame_check,
                                     frame_content_type};
