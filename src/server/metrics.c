/* metrics.c -- GET /metrics: every figure of the server in Prometheus' text exposition format
 * 0.0.4 (metrics.h).
 *
 * A scrape reads what already exists: the cache's statistics (aside_stats: one short hold of
 * the cache lock), the keys by type (counts the cache keeps, copied under the lock),
 * the function workers', the spec's preload progress, and the counters the server keeps itself
 * (metrics_counters.c: requests, their durations, reads by dataset). It runs on the event loop:
 * bookkeeping only, no I/O.
 *
 * Each family is written whole, its HELP and TYPE lines first, then its samples, so no series
 * repeats and none comes before its TYPE. Names follow Prometheus' conventions: the aside_
 * prefix, base units (bytes, seconds), counters ending in _total. Label values come from the
 * program (metrics.h says which): a key never becomes a label, and the page holds no key. */
#include <jansson.h>
#include <string.h>

#include "call.h"
#include "health.h"
#include "lib/lib.h"
#include "metrics.h"
#include "spec_run.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the format ---------------------------------------------------------------------------- */

static void family(buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format asks (backslash, quote, newline). */
static void put_label_value(buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *v);
    }
}

/* name{label="value"} v, or name v when label is NULL. */
static void sample(buf *b, const char *name, const char *label, const char *value, uint64_t v)
{
    buf_puts(b, name);
    if (label) {
        buf_printf(b, "{%s=\"", label);
        put_label_value(b, value);
        buf_puts(b, "\"}");
    }
    buf_printf(b, " %llu\n", (unsigned long long)v);
}

static void gauge(buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "gauge", help);
    sample(b, name, NULL, NULL, v);
}

static void counter(buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    sample(b, name, NULL, NULL, v);
}

/* ---- requests ------------------------------------------------------------------------------ */

static void write_requests(buf *b)
{
    metrics_function f;
    family(b, "aside_requests_total", "counter", "Requests answered, by function and HTTP status.");
    for (size_t i = 0; metrics_function_get(i, &f); i++) {
        for (int status = 100; status < 600; status++) {
            if (!f.by_status[status])
                continue;
            buf_puts(b, "aside_requests_total{function=\"");
            put_label_value(b, f.name);
            buf_printf(b, "\",status=\"%d\"} %llu\n", status,
                       (unsigned long long)f.by_status[status]);
        }
    }
    family(b, "aside_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by function.");
    for (size_t i = 0; metrics_function_get(i, &f); i++) {
        uint64_t cumulative = 0;
        for (size_t k = 0; k < METRICS_BUCKETS; k++) {
            cumulative += f.buckets[k];
            buf_puts(b, "aside_request_duration_seconds_bucket{function=\"");
            put_label_value(b, f.name);
            buf_printf(b, "\",le=\"%g\"} %llu\n", metrics_bucket_bounds[k],
                       (unsigned long long)cumulative);
        }
        buf_puts(b, "aside_request_duration_seconds_bucket{function=\"");
        put_label_value(b, f.name);
        buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)f.count);
        buf_puts(b, "aside_request_duration_seconds_sum{function=\"");
        put_label_value(b, f.name);
        buf_printf(b, "\"} %.9f\n", (double)f.sum_ns / 1e9);
        buf_puts(b, "aside_request_duration_seconds_count{function=\"");
        put_label_value(b, f.name);
        buf_printf(b, "\"} %llu\n", (unsigned long long)f.count);
    }
}

/* ---- the cache ----------------------------------------------------------------------------- */

static void write_reads(buf *b, const aside_stats *st)
{
    family(b, "aside_cache_hits_total", "counter", "Reads answered from the cache, by tier.");
    sample(b, "aside_cache_hits_total", "tier", "memory", st->hits_memory);
    sample(b, "aside_cache_hits_total", "tier", "disk", st->hits_disk);
    counter(b, "aside_cache_misses_total", "Reads that had to fetch from the system of record.",
            st->misses);
    family(b, "aside_sor_fetches_total", "counter",
           "Fetches from the system of record, by storage.");
    sample(b, "aside_sor_fetches_total", "storage", "dir", st->sor_fetches_dir);
    sample(b, "aside_sor_fetches_total", "storage", "s3", st->sor_fetches_s3);
    family(b, "aside_sor_fetched_bytes_total", "counter",
           "Bytes fetched from the system of record, by storage.");
    sample(b, "aside_sor_fetched_bytes_total", "storage", "dir", st->sor_bytes_dir);
    sample(b, "aside_sor_fetched_bytes_total", "storage", "s3", st->sor_bytes_s3);
    family(b, "aside_sor_errors_total", "counter",
           "Fetches from the system of record that failed, by kind.");
    sample(b, "aside_sor_errors_total", "kind", "not_found", st->sor_errors_not_found);
    sample(b, "aside_sor_errors_total", "kind", "denied", st->sor_errors_denied);
    sample(b, "aside_sor_errors_total", "kind", "timeout", st->sor_errors_timeout);
    sample(b, "aside_sor_errors_total", "kind", "other", st->sor_errors_other);
    counter(b, "aside_sor_retries_total",
            "Requests to the system of record tried again after a transient failure.",
            st->sor_retries);
}

static void write_room(buf *b, const aside_stats *st)
{
    family(b, "aside_evictions_total", "counter",
           "Values that left a tier, by tier and reason (budget: room was needed; explicit: "
           "function=evict; expired: the time to live ran out, memory and disk both).");
    buf_printf(b, "aside_evictions_total{tier=\"memory\",reason=\"budget\"} %llu\n"
                  "aside_evictions_total{tier=\"memory\",reason=\"explicit\"} %llu\n"
                  "aside_evictions_total{tier=\"disk\",reason=\"budget\"} %llu\n"
                  "aside_evictions_total{tier=\"disk\",reason=\"expired\"} %llu\n",
               (unsigned long long)st->evictions_memory,
               (unsigned long long)st->evictions_explicit,
               (unsigned long long)st->evictions_disk, (unsigned long long)st->expirations);
    gauge(b, "aside_memory_used_bytes", "Bytes held by the memory tier (values, publications, "
          "pinned values and collections).", st->memory_used_bytes);
    gauge(b, "aside_memory_limit_bytes", "The memory tier's budget.", st->memory_limit_bytes);
    gauge(b, "aside_memory_pinned_bytes", "Of the memory used, bytes that are never evicted "
          "(pinned values, collections).", st->pinned_bytes);
    gauge(b, "aside_disk_used_bytes", "Bytes held by the disk tier.", st->disk_used_bytes);
    gauge(b, "aside_disk_limit_bytes", "The disk tier's budget.", st->disk_limit_bytes);
    gauge(b, "aside_sql_spill_bytes", "Bytes SQL queries spilled to the disk tier's folder.",
          st->sql_spill_bytes);
    gauge(b, "aside_sql_spill_limit_bytes", "The bound of SQL's spill.",
          st->sql_spill_limit_bytes);
}

static void write_keys(buf *b, const server *s)
{
    uint64_t counts[ASIDE_TYPE_KINDS];
    aside_keys_by_type(s->cache, counts);
    family(b, "aside_keys", "gauge", "Keys the cache holds, by type.");
    for (int t = 0; t < ASIDE_TYPE_KINDS; t++)
        sample(b, "aside_keys", "type", aside_value_type_name((aside_value_type)t), counts[t]);
}

static void write_journal(buf *b, const aside_stats *st)
{
    gauge(b, "aside_journal_bytes", "The size of the journal of what the cache alone holds.",
          st->log_bytes);
    counter(b, "aside_journal_appends_total", "Records appended to the journal.",
            st->log_appends);
    counter(b, "aside_journal_syncs_total", "Syncs (fdatasync) of appended records.",
            st->log_syncs);
    counter(b, "aside_journal_compactions_total", "Compactions of the journal.",
            st->log_compactions);
    family(b, "aside_journal_compaction_seconds_total", "counter",
           "Time compactions of the journal took.");
    buf_printf(b, "aside_journal_compaction_seconds_total %.6f\n",
               st->log_compaction_seconds);
    gauge(b, "aside_single_flight_waiting", "Reads waiting now for another read's load of the "
          "same key.", st->flight_waiting);
    counter(b, "aside_single_flight_waits_total", "Reads that waited for another read's load "
            "of the same key.", st->flight_waits);
    counter(b, "aside_shm_publications_total", "Frames published in shared memory.",
            st->shm_publications);
    counter(b, "aside_shm_maps_total", "Requests answered with a shared-memory publication.",
            st->shm_maps);
    gauge(b, "aside_shm_bytes", "Bytes of the shared-memory publications (part of the memory "
          "used).", st->shm_bytes);
}

/* ---- the rest of the server ---------------------------------------------------------------- */

static void write_functions(buf *b, const server *s)
{
    function_pool_stats fs = {0};
    if (s->functions)
        function_pool_get_stats(s->functions, &fs);
    gauge(b, "aside_function_workers", "Users' functions' worker processes running.",
          fs.workers);
    gauge(b, "aside_function_workers_busy", "Of them, answering a call now.", fs.busy);
    counter(b, "aside_function_workers_started_total", "Worker processes started, "
            "replacements included.", fs.started);
    counter(b, "aside_function_calls_total", "Calls of users' functions.", fs.requests);
    counter(b, "aside_function_timeouts_total", "Calls stopped past their deadline.",
            fs.timeouts);
    counter(b, "aside_function_crashes_total", "Workers that died or broke the protocol.",
            fs.crashes);
}

static void write_preload(buf *b, const server *s)
{
    json_t *p = spec_run_progress_json(s->spec);
    json_int_t done = 0, failed = 0, total = 0, bytes_done = 0, bytes_total = 0;
    const char *state = "none";
    if (p)
        json_unpack(p, "{s:s, s:{s:I, s:I, s:I}, s:{s:I, s:I}}", "state", &state, "items",
                    "done", &done, "failed", &failed, "total", &total, "bytes", "done",
                    &bytes_done, "total", &bytes_total);
    gauge(b, "aside_preload_running", "1 while the spec's preload runs.",
          strcmp(state, "running") == 0);
    family(b, "aside_preload_items", "gauge",
           "Keys of the last preload run: planned (total), loaded (done), failed.");
    sample(b, "aside_preload_items", "state", "total", (uint64_t)total);
    sample(b, "aside_preload_items", "state", "done", (uint64_t)done);
    sample(b, "aside_preload_items", "state", "failed", (uint64_t)failed);
    family(b, "aside_preload_bytes", "gauge", "Bytes of the last preload run: planned, loaded.");
    sample(b, "aside_preload_bytes", "state", "total", (uint64_t)bytes_total);
    sample(b, "aside_preload_bytes", "state", "done", (uint64_t)bytes_done);
    json_decref(p);
}

static void write_datasets(buf *b)
{
    metrics_dataset d;
    family(b, "aside_dataset_hits_total", "counter",
           "Reads of a named dataset's keys answered from the cache, by dataset and tier.");
    for (size_t i = 0; metrics_dataset_get(i, &d); i++) {
        buf_printf(b, "aside_dataset_hits_total{dataset=\"%s\",tier=\"memory\"} %llu\n", d.name,
                   (unsigned long long)d.hits_memory);
        buf_printf(b, "aside_dataset_hits_total{dataset=\"%s\",tier=\"disk\"} %llu\n", d.name,
                   (unsigned long long)d.hits_disk);
    }
    family(b, "aside_dataset_misses_total", "counter",
           "Reads of a named dataset's keys that fetched from the system of record.");
    for (size_t i = 0; metrics_dataset_get(i, &d); i++)
        sample(b, "aside_dataset_misses_total", "dataset", d.name, d.misses);
    family(b, "aside_dataset_read_bytes_total", "counter",
           "Bytes of a named dataset's values that reads answered.");
    for (size_t i = 0; metrics_dataset_get(i, &d); i++)
        sample(b, "aside_dataset_read_bytes_total", "dataset", d.name, d.bytes);
}

void metrics_write(const server *s, buf *b)
{
    aside_stats st;
    aside_stats_get(s->cache, &st);
    write_requests(b);
    write_reads(b, &st);
    write_room(b, &st);
    write_keys(b, s);
    write_journal(b, &st);
    write_functions(b, s);
    write_preload(b, s);
    write_datasets(b);
    family(b, "aside_uptime_seconds", "gauge", "Seconds since the cache was opened.");
    buf_printf(b, "aside_uptime_seconds %.3f\n", st.uptime_seconds);
    family(b, "aside_build_info", "gauge", "The server's version; always 1.");
    buf_puts(b, "aside_build_info{version=\"" ASIDE_VERSION "\"} 1\n");
}

/* ---- the path ------------------------------------------------------------------------------ */

/* The token, unless metrics are public: one of the server's, with the read scope. */
static bool may_read(call *c)
{
    if (c->server->defaults.metrics_public)
        return true;
    if (!call_authorize(c))
        return false;
    if (c->token_name && !(c->token_scopes & TOKENS_READ)) {
        call_error(c, 403, "forbidden", "metrics need the scope read");
        return false;
    }
    return true;
}

void metrics_serve(server_gate *g, const http_request *req, http_response *res)
{
    if (req->method != HTTP_METHOD_GET && req->method != HTTP_METHOD_HEAD) {
        res->status = 405;
        res->content_type = "application/json";
        buf_puts(&res->body, "{\"error\": {\"code\": \"method_not_allowed\", \"message\": "
                             "\"GET or HEAD\"}}");
        buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
        return;
    }
    const server *s = server_gate_server(g);
    if (!s) {
        health_starting(res);
        res->omit_body = req->method == HTTP_METHOD_HEAD;
        return;
    }
    call c;
    call_init(&c, s, req, res);
    if (may_read(&c)) {
        res->status = 200;
        res->content_type = METRICS_CONTENT_TYPE;
        buf_reset(&res->body);
        metrics_write(s, &res->body);
    }
    call_finish(&c);
}
