/* reply.c -- a frame answered in the format the call asks for.
 *
 * JSON in the envelope (orient=records, split, columns, index, values), or, with
 * format=arrow|parquet|csv|json, the bare body in that format. An Arrow stream goes out as the
 * frame's own buffers with writev, never copied (the response holds the encoding, which holds
 * the frame); a parquet export is written to a temporary file, unlinked at once and sent with
 * sendfile from its descriptor. JSON and CSV are built in memory, so they are bounded by the
 * result limit (413 past it); Arrow and parquet are not. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "engine/engine.h"
#include "lib/lib.h"
#include "reply.h"
#include "value/value.h"

typedef struct arrow_body {
    arrow_encoding enc;
    struct iovec  *iov;
} arrow_body;

static void arrow_body_release(void *owner)
{
    arrow_body *a = owner;
    arrow_encoding_free(&a->enc);
    free(a->iov);
    free(a);
}

static void answer_arrow(call *c, frame *f, bool pandas_metadata)
{
    aside_error err;
    arrow_body *a = calloc(1, sizeof *a);
    if (!a) {
        call_out_of_memory(c);
        return;
    }
    if (arrow_encode(f, ARROW_STREAM, pandas_metadata, &a->enc, &err) != ASIDE_OK) {
        free(a);
        call_status_error(c, &err);
        return;
    }
    a->iov = calloc(a->enc.count ? a->enc.count : 1, sizeof *a->iov);
    if (!a->iov) {
        arrow_body_release(a);
        call_out_of_memory(c);
        return;
    }
    for (size_t i = 0; i < a->enc.count; i++)
        a->iov[i] = (struct iovec){(void *)a->enc.segments[i].data, a->enc.segments[i].length};
    c->res->status = 200;
    c->res->content_type = ARROW_STREAM_MEDIA_TYPE;
    c->res->segments = (http_segments){a->iov, a->enc.count, a->enc.total_bytes, a,
                                       arrow_body_release};
}

/* A parquet file of f in a temporary file, answered with sendfile. */
static void answer_parquet(call *c, frame *f)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/aside-export-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    aside_error err;
    if (fd < 0) {
        call_error(c, 500, "io_error", "cannot create a temporary file");
        return;
    }
    close(fd);
    aside_status st = engine_write_parquet(aside_cache_engine(c->server->cache), f, path, &err);
    fd = st == ASIDE_OK ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    unlink(path);
    if (st != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    aside_value *v = size >= 0 ? value_from_file(ASIDE_TYPE_BYTES, fd, (uint64_t)size) : NULL;
    if (!v) {
        if (fd >= 0 && size < 0)
            close(fd);
        call_error(c, 500, "io_error", "cannot read the parquet export");
        return;
    }
    c->res->status = 200;
    c->res->content_type = "application/vnd.apache.parquet";
    c->res->value = v;
}

static bool valid_orient(call *c, const char **orient)
{
    static const char *const orients[] = {"records", "split", "columns", "index", "values",
                                          NULL};
    return call_choice(c, "orient", orients, orient);
}

void reply_frame(call *c, frame *f, const char *default_orient, bool whole)
{
    static const char *const formats[] = {"json", "arrow", "parquet", "csv", NULL};
    const char *format = NULL, *orient = default_orient;
    aside_error err;
    if (!call_choice(c, "format", formats, &format) || !valid_orient(c, &orient))
        return;
    if (!format && call_accepts(c, ARROW_STREAM_MEDIA_TYPE))
        format = "arrow";
    if (format && strcmp(format, "arrow") == 0) {
        answer_arrow(c, f, whole);
        return;
    }
    if (format && strcmp(format, "parquet") == 0) {
        answer_parquet(c, f);
        return;
    }
    if (f->memory_bytes > c->server->defaults.result_limit_bytes) {
        char why[256];
        snprintf(why, sizeof why, "the result holds %llu bytes, more than the limit of %llu; "
                 "ask for format=arrow, or store it with into=",
                 (unsigned long long)f->memory_bytes,
                 (unsigned long long)c->server->defaults.result_limit_bytes);
        call_error(c, 413, "too_large", why);
        return;
    }
    buf *b = &c->res->body;
    aside_status st;
    if (format && strcmp(format, "csv") == 0) {
        c->res->status = 200;
        c->res->content_type = "text/csv";
        st = frame_encode_csv(f, b, &err);
    } else if (format) {
        c->res->status = 200;
        c->res->content_type = "application/json";
        st = frame_encode_json(f, orient, b, &err);
    } else {
        b = call_envelope_begin(c);
        st = frame_encode_json(f, orient, b, &err);
        call_envelope_end(c);
    }
    if (st != ASIDE_OK) {
        buf_reset(&c->res->body);
        call_status_error(c, &err);
    }
}
