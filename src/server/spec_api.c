/* spec_api.c -- the API's functions on the data spec: spec (the spec in force) and
 * reload_spec (read the file again). Without a spec both are 404 no_spec. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "spec_api.h"
#include "spec_run.h"

static bool need_spec(call *c)
{
    if (c->server->spec)
        return true;
    call_error(c, 404, "no_spec", "this server runs without a spec: start it with --spec FILE "
                                  "(or ASIDE_SPEC)");
    return false;
}

void spec_api_spec(call *c)
{
    if (!need_spec(c))
        return;
    spec_run_info info;
    aside_error err;
    if (spec_run_in_force(c->server->spec, &info, &err) != ASIDE_OK) {
        call_status_error(c, &err);
    } else {
        buf *b = call_envelope_begin(c);
        buf_puts(b, "{\"path\": ");
        buf_put_json_string(b, info.path, strlen(info.path));
        buf_puts(b, ", \"loaded_at\": ");
        call_put_time(b, info.loaded_unix_ms);
        buf_printf(b, ", \"reloads\": %u, \"spec\": %s}", info.reloads, info.json);
        call_envelope_end(c);
    }
    free(info.json);
}

void spec_api_reload(call *c)
{
    if (!need_spec(c))
        return;
    spec_run *p = c->server->spec;
    json_t *summary = NULL;
    aside_error err;
    if (spec_run_reload(p, &summary, &err) != ASIDE_OK) {
        log_line("error", "spec: reload refused, the spec in force stays: %s", err.message);
        call_error(c, 400, "bad_spec", err.message);
        return;
    }
    char *text = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
    buf *b = call_envelope_begin(c);
    buf_puts(b, "{\"result\": \"success\", \"path\": ");
    const char *path = spec_run_path(p);
    buf_put_json_string(b, path, strlen(path));
    if (text && text[0] == '{' && text[1] != '}') /* the summary's members, inline */
        buf_printf(b, ", %s", text + 1);
    else
        buf_putc(b, '}');
    call_envelope_end(c);
    free(text);
    json_decref(summary);
}
