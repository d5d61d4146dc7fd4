/* cache_api.c -- the API's functions on cached values: read (create, load), update, write,
 * put, list and delete.
 *
 * read answers from memory on the event loop when it can (the library is asked with
 * memory_only) and defers to the blocking pool on a miss; update, write, put and list always
 * run there. A value is answered as the read parameters ask: meta (the default: source, type,
 * bytes), data in the envelope (JSON as JSON, other bytes base64), or format=raw (or an Accept
 * header that does not take JSON): the value's bytes alone, sent straight from the cache
 * without a copy, the fast path. A frame read with return=data or a frame format is answered
 * by reply.c. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "cache_api.h"
#include "metrics.h"
#include "reply.h"
#include "value/value.h"

enum {
    /* A value from a disk-tier file is embedded in an envelope only up to this size; larger
     * ones must be read with format=raw, which streams them. */
    ENVELOPE_VALUE_MAX_BYTES = 64 << 20
};

static const char *source_name(aside_source s)
{
    return s == ASIDE_SOURCE_MEMORY ? "memory" : s == ASIDE_SOURCE_DISK ? "disk" : "sor";
}

/* True when the client wants bytes, not an envelope. */
static bool wants_raw(call *c, const char *format)
{
    if (format)
        return strcmp(format, "raw") == 0;
    size_t len = 0;
    const char *accept = http_request_header(c->req, "Accept", &len);
    if (!accept || len == 0)
        return false;
    return !call_accepts(c, "application/json") && !call_accepts(c, "*/*") &&
           !call_accepts(c, "application/*");
}

static void put_seconds(call *c, buf *b)
{
    buf_printf(b, ", \"seconds\": %.6f",
               (double)(clock_mono_ns() - c->started_ns) / 1e9);
}

static void answer_meta(call *c, aside_value *v, const aside_read_info *info, bool updated,
                        bool timed)
{
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"source\": \"");
    buf_puts(b, source_name(info->source));
    buf_puts(b, "\", \"type\": \"");
    buf_puts(b, aside_value_type_name(aside_value_type_of(v)));
    buf_puts(b, "\", \"bytes\": ");
    buf_put_u64(b, aside_value_size(v));
    if (updated)
        buf_puts(b, info->revalidated ? ", \"revalidated\": true" : ", \"revalidated\": false");
    if (info->stale)
        buf_puts(b, ", \"stale\": true");
    if (info->uncached) /* the disk tier could not keep it: the next read fetches again */
        buf_puts(b, ", \"cached\": false");
    if (timed)
        put_seconds(c, b);
    buf_putc(b, '}');
    call_envelope_end(c);
}

static void answer_data(call *c, aside_value *v)
{
    uint64_t size = aside_value_size(v);
    const char *data = aside_value_data(v);
    char *loaded = NULL;
    if (!data) {
        if (size > ENVELOPE_VALUE_MAX_BYTES) {
            call_error(c, 413, "too_large", "value too large for a JSON envelope; read it "
                                              "with format=raw");
            return;
        }
        loaded = malloc(size ? size : 1);
        if (!loaded || pread(aside_value_fd(v), loaded, size, 0) != (ssize_t)size) {
            free(loaded);
            call_error(c, 500, "io_error", "cannot read the value from the disk tier");
            return;
        }
        data = loaded;
    }
    buf *b = call_envelope_begin(c);
    aside_value_type type = aside_value_type_of(v);
    if (type == ASIDE_TYPE_JSON || type >= ASIDE_TYPE_LIST) /* JSON text */
        buf_append(b, data, size);
    else {
        buf_putc(b, '"');
        buf_put_base64(b, data, size);
        buf_putc(b, '"');
    }
    call_envelope_end(c);
    free(loaded);
}

static void answer_raw(call *c, aside_value *v, const aside_read_info *info)
{
    c->res->status = 200;
    c->res->content_type = value_kind_of(aside_value_type_of(v))->content_type(c->path);
    c->res->value = aside_value_retain(v);
    buf_printf(&c->res->headers, "X-Aside-Source: %s\r\nX-Aside-Type: %s\r\n%s",
               source_name(info->source), aside_value_type_name(aside_value_type_of(v)),
               info->uncached ? "X-Aside-Cached: false\r\n" : "");
}

/* Answer a value as the read parameters ask. */
static void answer_value(call *c, aside_value *v, const aside_read_info *info, bool updated)
{
    static const char *const returns[] = {"meta", "data", NULL};
    static const char *const formats[] = {"json", "raw", "arrow", "parquet", "csv", NULL};
    static const char *const booleans[] = {"true", "false", "1", "0", NULL};
    const char *ret = "meta", *format = NULL, *timed = "false";
    if (!call_choice(c, "return", returns, &ret) || !call_choice(c, "format", formats, &format) ||
        !call_choice(c, "time", booleans, &timed))
        return;
    bool frame_format = format && strcmp(format, "json") != 0 && strcmp(format, "raw") != 0;
    if (aside_value_type_of(v) == ASIDE_TYPE_FRAME &&
        (frame_format || (!format && call_accepts(c, ARROW_STREAM_MEDIA_TYPE)) ||
         (strcmp(ret, "data") == 0 && (!format || strcmp(format, "json") == 0))))
        reply_frame(c, value_frame(v), "records", true);
    else if (frame_format)
        call_error(c, 400, "not_a_frame", "formats arrow, parquet and csv are for frames; read "
                                         "this key with type=frame");
    else if (wants_raw(c, format))
        answer_raw(c, v, info);
    else if (strcmp(ret, "data") == 0)
        answer_data(c, v);
    else
        answer_meta(c, v, info, updated, strcmp(timed, "true") == 0 || strcmp(timed, "1") == 0);
}

typedef aside_status (*loader)(aside_cache *cache, const char *key,
                              const aside_read_options *options, aside_value **out,
                              aside_read_info *info, aside_error *err);

/* Load the path with read or update, and answer its value. */
static void load_and_answer(call *c, loader load)
{
    if (!call_need_path(c))
        return;
    aside_value *v = NULL;
    aside_read_info info;
    aside_error err;
    c->options.memory_only = !c->req->may_block;
    aside_status st = load(c->server->cache, c->path, &c->options, &v, &info, &err);
    if (st == ASIDE_ERR_WOULD_BLOCK) {
        c->res->defer = true;
        return;
    }
    if (st != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    call_note_source(c, info.source);
    metrics_observe_read(c->path, info.source, aside_value_size(v));
    answer_value(c, v, &info, load == aside_update);
    aside_value_release(v);
}

void cache_api_read(call *c) { load_and_answer(c, aside_read); }

void cache_api_update(call *c) { load_and_answer(c, aside_update); }

void cache_api_write(call *c)
{
    if (!call_need_path(c))
        return;
    aside_object_info info;
    aside_error err;
    if (aside_write(c->server->cache, c->path, &c->options, c->req->body, c->req->body_len, &info,
                    &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"bytes\": ");
    buf_put_u64(b, info.size);
    buf_puts(b, ", \"etag\": ");
    buf_put_json_string(b, info.etag, strlen(info.etag));
    buf_putc(b, '}');
    call_envelope_end(c);
}

void cache_api_put(call *c)
{
    if (!call_need_path(c))
        return;
    aside_error err;
    if (aside_put(c->server->cache, c->path, &c->options, c->req->body, c->req->body_len, &err) !=
        ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    aside_entry_info e;
    bool known = aside_entry(c->server->cache, c->path, &e, NULL) == ASIDE_OK;
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"bytes\": ");
    buf_put_u64(b, c->req->body_len);
    buf_puts(b, ", \"type\": ");
    const char *type = aside_value_type_name(known ? e.type : ASIDE_TYPE_BYTES);
    buf_put_json_string(b, type, strlen(type));
    buf_putc(b, '}');
    call_envelope_end(c);
    if (known)
        free(e.key);
}

void cache_api_list(call *c)
{
    aside_object_entry *objects = NULL;
    size_t count = 0;
    aside_error err;
    if (aside_list(c->server->cache, &c->options, call_param_value(c, "prefix", NULL), &objects, &count,
                   &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    buf *b = call_envelope_begin(c);
    buf_putc(b, '[');
    for (size_t i = 0; i < count; i++) {
        buf_puts(b, i ? ", {\"path\": " : "{\"path\": ");
        buf_put_json_string(b, objects[i].key, strlen(objects[i].key));
        buf_puts(b, ", \"bytes\": ");
        buf_put_u64(b, objects[i].size);
        buf_puts(b, ", \"last_modified\": ");
        call_put_time(b, objects[i].mtime_ns / 1000000);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    call_envelope_end(c);
    aside_object_entries_free(objects, count);
}

void cache_api_delete(call *c)
{
    if (!call_need_path(c))
        return;
    aside_error err;
    if (aside_delete(c->server->cache, c->path, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\"}");
    call_envelope_end(c);
}
