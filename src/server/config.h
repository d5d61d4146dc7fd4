/* config.h -- aside-server's configuration: flags over environment variables over defaults,
 * parsed and checked once at start (config.c); nothing else in the server reads the
 * environment. */
#ifndef ASIDE_SERVER_CONFIG_H
#define ASIDE_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "access_log.h"
#include "aside.h"
#include "function_pool.h"
#include "http.h"

/* The server's version (--version, /metrics' aside_build_info): the build defines it from the
 * one version source, the Python package's __version__ (CMakeLists.txt). */
#ifndef ASIDE_VERSION
#error "ASIDE_VERSION is defined by the build (CMakeLists.txt)"
#endif

/* Defaults of per-request parameters, and what the API's handlers are configured with. */
typedef struct api_defaults {
    unsigned max_age_s;      /* max_age: revalidate older copies in the background; 0: never */
    bool     stale_if_error; /* stale_if_error: update answers the cached copy if the SOR fails */
    uint64_t result_limit_bytes; /* frame results answered (not stored with into=) up to this */
    unsigned sql_timeout_ms;     /* a query (sql, select, describe) is interrupted past this */
    aside_fsync fsync;           /* the cache's: "always" makes changes wait for the disk */
    unsigned json_max_depth;     /* the cache's: how deep JSON in a request may nest */
    unsigned pandas_major;       /* pandas=: the pandas (2 or 3) frame answers are for */
    const char *token;           /* ASIDE_TOKEN: one token with every scope; every request
                                    must then carry "Authorization: Bearer <token>" (else 401) */
    const char *tokens_file;     /* ASIDE_TOKENS_FILE: tokens with scopes (tokens.h); never
                                    set with token */
    bool        metrics_public;  /* ASIDE_METRICS_PUBLIC: /metrics answers without a token */
    function_pool_config functions;
} api_defaults;

typedef struct server_config {
    aside_config cache;
    http_config  http;
    api_defaults api;
    const char  *spec_path; /* ASIDE_SPEC: the data spec file (spec_run.h), or NULL */
    const char  *token_file; /* ASIDE_TOKEN_FILE: read into api.token at parse time, or NULL */
    int          drain_ms;   /* after SIGTERM: not ready, still serving, this long */
    int          shutdown_timeout_ms; /* then requests in flight may take this long to finish */
    access_log_config access_log; /* ASIDE_ACCESS_LOG, ASIDE_SLOW_MS */
    bool         help;
    bool         version;
    bool         list_functions; /* --list-functions: print the API's functions as Markdown */
    bool         hash_token;     /* --hash-token: print the hash of the secret on stdin */
    bool         allow_unauthenticated; /* serve a non-loopback address without any token */
    bool         open_door; /* set by the parser: it is so (main logs a warning) */
    bool         check_config;   /* --check-config: check everything, print the outcome, exit */
} server_config;

/* Parse flags over environment variables over defaults, then refuse what the settings mean
 * together: ASIDE_TOKEN with ASIDE_TOKENS_FILE, and a bind address that is not loopback with no
 * token unless allow_unauthenticated. On error writes the reason. The
 * strings of cfg point into argv or the environment, or are static. */
aside_status server_config_parse(server_config *cfg, int argc, char **argv, aside_error *err);
void         server_config_print_help(const char *program);

#endif
