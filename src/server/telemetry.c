/* telemetry.c -- the API's telemetry: head (cache_head, the HEAD verb) and stats_cache.
 *
 * head answers the cache's figures (aside_stats), the function workers' and the data spec's
 * progress, and every key's entry (or one key's, with path); the HEAD verb sends the same
 * figures as X-Aside-* headers. Bookkeeping only: it runs on the event loop. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "spec_run.h"
#include "telemetry.h"
#include "value/value.h"

static void put_entry(buf *b, const aside_entry_info *e)
{
    buf_puts(b, "{\"path\": ");
    buf_put_json_string(b, e->key, strlen(e->key));
    buf_printf(b, ", \"type\": \"%s\", \"bytes\": %llu, \"tier\": \"%s\", \"hits\": %llu, "
                  "\"generation\": %llu, \"last_access\": ",
               aside_value_type_name(e->type), (unsigned long long)e->bytes,
               e->in_memory ? "memory" : "disk", (unsigned long long)e->hits,
               (unsigned long long)e->generation);
    call_put_time(b, e->last_access_ms);
    buf_printf(b, ", \"pinned\": %s, \"cache_only\": %s, \"expires\": ",
               e->pinned ? "true" : "false", e->cache_only ? "true" : "false");
    if (e->expires_ms)
        call_put_time(b, e->expires_ms);
    else
        buf_puts(b, "null");
    buf_putc(b, '}');
}

static void put_stats(buf *b, const aside_stats *s)
{
    buf_printf(b, "\"uptime_seconds\": %.3f, \"keys\": %llu, "
                  "\"memory\": {\"used_bytes\": %llu, \"limit_bytes\": %llu}, "
                  "\"disk\": {\"used_bytes\": %llu, \"limit_bytes\": %llu}, "
                  "\"hits\": %llu, \"misses\": %llu, "
                  "\"evictions\": {\"memory\": %llu, \"disk\": %llu}, \"sor_fetches\": %llu, "
                  "\"shm\": {\"publications\": %llu, \"maps\": %llu, \"bytes\": %llu}, "
                  "\"pinned_bytes\": %llu, \"expirations\": %llu, "
                  "\"log\": {\"bytes\": %llu, \"compactions\": %llu}, "
                  "\"sql\": {\"spill_bytes\": %llu, \"spill_limit_bytes\": %llu}",
               s->uptime_seconds, (unsigned long long)s->keys,
               (unsigned long long)s->memory_used_bytes, (unsigned long long)s->memory_limit_bytes,
               (unsigned long long)s->disk_used_bytes, (unsigned long long)s->disk_limit_bytes,
               (unsigned long long)s->hits, (unsigned long long)s->misses,
               (unsigned long long)s->evictions_memory, (unsigned long long)s->evictions_disk,
               (unsigned long long)s->sor_fetches, (unsigned long long)s->shm_publications,
               (unsigned long long)s->shm_maps, (unsigned long long)s->shm_bytes,
               (unsigned long long)s->pinned_bytes, (unsigned long long)s->expirations,
               (unsigned long long)s->log_bytes, (unsigned long long)s->log_compactions,
               (unsigned long long)s->sql_spill_bytes,
               (unsigned long long)s->sql_spill_limit_bytes);
}

void telemetry_head(call *c)
{
    aside_error err;
    aside_entry_info *entries = NULL;
    size_t count = 0;
    aside_entry_info one;
    aside_status st = c->path ? aside_entry(c->server->cache, c->path, &one, &err)
                              : aside_entries(c->server->cache, &entries, &count, &err);
    if (st != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    if (c->path) {
        entries = &one;
        count = 1;
    }
    aside_stats stats;
    aside_stats_get(c->server->cache, &stats);
    function_pool_stats fs;
    function_pool_get_stats(c->server->functions, &fs);
    buf *b = call_envelope_begin(c);
    buf_putc(b, '{');
    put_stats(b, &stats);
    buf_printf(b, ", \"functions\": {\"workers\": %llu, \"started\": %llu, \"calls\": %llu, "
                  "\"timeouts\": %llu, \"crashes\": %llu, \"memo\": ",
               (unsigned long long)fs.workers, (unsigned long long)fs.started,
               (unsigned long long)fs.requests, (unsigned long long)fs.timeouts,
               (unsigned long long)fs.crashes);
    json_t *memo = function_pool_memo_stats(c->server->functions);
    char *memo_text = memo ? json_dumps(memo, JSON_COMPACT) : NULL;
    buf_puts(b, memo_text ? memo_text : "null");
    buf_putc(b, '}');
    free(memo_text);
    json_decref(memo);
    json_t *progress = spec_run_progress_json(c->server->spec);
    char *progress_text = progress ? json_dumps(progress, JSON_COMPACT) : NULL;
    buf_puts(b, ", \"preload\": ");
    buf_puts(b, progress_text ? progress_text : "null");
    free(progress_text);
    json_decref(progress);
    buf_puts(b, ", \"entries\": [");
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_puts(b, ", ");
        put_entry(b, &entries[i]);
    }
    buf_puts(b, "]}");
    call_envelope_end(c);
    buf *h = &c->res->headers;
    buf_printf(h, "X-Aside-Keys: %llu\r\nX-Aside-Memory-Used: %llu\r\n"
                  "X-Aside-Memory-Limit: %llu\r\nX-Aside-Disk-Used: %llu\r\n"
                  "X-Aside-Disk-Limit: %llu\r\nX-Aside-Hits: %llu\r\nX-Aside-Misses: %llu\r\n"
                  "X-Aside-Evictions: %llu\r\nX-Aside-Sor-Fetches: %llu\r\n"
                  "X-Aside-Uptime: %.3f\r\n",
               (unsigned long long)stats.keys, (unsigned long long)stats.memory_used_bytes,
               (unsigned long long)stats.memory_limit_bytes,
               (unsigned long long)stats.disk_used_bytes,
               (unsigned long long)stats.disk_limit_bytes, (unsigned long long)stats.hits,
               (unsigned long long)stats.misses,
               (unsigned long long)(stats.evictions_memory + stats.evictions_disk),
               (unsigned long long)stats.sor_fetches, stats.uptime_seconds);
    if (c->path)
        buf_printf(h, "X-Aside-Key-Type: %s\r\nX-Aside-Key-Bytes: %llu\r\nX-Aside-Key-Tier: %s\r\n"
                      "X-Aside-Key-Hits: %llu\r\n",
                   aside_value_type_name(one.type), (unsigned long long)one.bytes,
                   one.in_memory ? "memory" : "disk", (unsigned long long)one.hits);
    if (c->path)
        free(one.key);
    else
        aside_entries_free(entries, count);
}

void telemetry_stats_cache(call *c)
{
    aside_error err;
    aside_entry_info *entries = NULL;
    size_t count = 0;
    if (aside_entries(c->server->cache, &entries, &count, &err) != ASIDE_OK) {
        call_status_error(c, &err);
        return;
    }
    buf *b = call_envelope_begin(c);
    buf_putc(b, '[');
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_puts(b, ", ");
        buf_put_json_string(b, entries[i].key, strlen(entries[i].key));
    }
    buf_putc(b, ']');
    call_envelope_end(c);
    aside_entries_free(entries, count);
}
