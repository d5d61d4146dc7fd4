/* credentials.c -- AWS credentials, found the way the AWS SDKs find them.
 *
 * The chain, in the SDKs' order: static keys given in the configuration; the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials, section [profile]) and config file
 * (AWS_CONFIG_FILE, default ~/.aws/config, section [profile NAME] or [default]) for the profile
 * AWS_PROFILE (default "default"); ECS container credentials
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI below http://169.254.170.2, or
 * AWS_CONTAINER_CREDENTIALS_FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN or _TOKEN_FILE);
 * EC2 instance metadata with an IMDSv2 session token (AWS_EC2_METADATA_SERVICE_ENDPOINT,
 * default http://169.254.169.254; AWS_EC2_METADATA_DISABLED=true skips it).
 *
 * The environment is read once, when the provider is created. Temporary credentials (ECS, IMDS)
 * carry an expiry: within REFRESH_BEFORE_MS of it, the first caller refreshes them while every
 * other caller goes on with the current, still valid, ones; only when there are none, or they
 * have expired, do callers wait for the fetch. */
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sor.h"
#include "util/util.h"

enum {
    REFRESH_BEFORE_MS = 5 * 60 * 1000, /* the SDKs refresh 5 minutes ahead */
    METADATA_TIMEOUT_MS = 2000,        /* IMDS and ECS answer locally, or not at all */
    METADATA_MAX_BYTES = 64 * 1024,
    IMDS_TOKEN_TTL_S = 21600
};

#define ECS_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"

typedef struct env_snapshot {
    char *access_key, *secret_key, *session_token;
    char *profile, *credentials_file, *config_file;
    char *ecs_relative_uri, *ecs_full_uri, *ecs_token, *ecs_token_file;
    char *imds_endpoint;
    bool  imds_disabled;
} env_snapshot;

struct cred_provider {
    pthread_mutex_t lock;
    pthread_cond_t  fetched;
    env_snapshot    env;
    aws_credentials current;
    bool            have;
    bool            refreshing;
};

/* ---- the environment, read once ----------------------------------------------------------- */

static char *env_copy(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strdup(v) : NULL;
}

static char *home_file(const char *override_var, const char *relative)
{
    char *path = env_copy(override_var);
    const char *home = getenv("HOME");
    if (path || !home)
        return path;
    size_t len = strlen(home) + strlen(relative) + 2;
    path = malloc(len);
    if (path)
        snprintf(path, len, "%s/%s", home, relative);
    return path;
}

static void env_load(env_snapshot *e)
{
    e->access_key = env_copy("AWS_ACCESS_KEY_ID");
    e->secret_key = env_copy("AWS_SECRET_ACCESS_KEY");
    e->session_token = env_copy("AWS_SESSION_TOKEN");
    e->profile = env_copy("AWS_PROFILE");
    e->credentials_file = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    e->config_file = home_file("AWS_CONFIG_FILE", ".aws/config");
    e->ecs_relative_uri = env_copy("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    e->ecs_full_uri = env_copy("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    e->ecs_token = env_copy("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    e->ecs_token_file = env_copy("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    e->imds_endpoint = env_copy("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
    e->imds_disabled = disabled && strcasecmp(disabled, "true") == 0;
}

static void env_free(env_snapshot *e)
{
    char **fields[] = {&e->access_key, &e->secret_key, &e->session_token, &e->profile,
                       &e->credentials_file, &e->config_file, &e->ecs_relative_uri,
                       &e->ecs_full_uri, &e->ecs_token, &e->ecs_token_file, &e->imds_endpoint};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}

static bool set_keys(aws_credentials *c, const char *akid, const char *secret, const char *token,
                     const char *source)
{
    if (!akid || !secret || !*akid || !*secret)
        return false;
    memset(c, 0, sizeof *c);
    snprintf(c->access_key, sizeof c->access_key, "%s", akid);
    snprintf(c->secret_key, sizeof c->secret_key, "%s", secret);
    snprintf(c->session_token, sizeof c->session_token, "%s", token ? token : "");
    snprintf(c->source, sizeof c->source, "%s", source);
    return true;
}

/* ---- shared files ------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

bool cred_parse_profile(FILE *fp, const char *section, aws_credentials *c, const char *source)
{
    char line[4096], akid[256] = "", secret[512] = "", token[2048] = "";
    bool inside = false;
    while (fgets(line, sizeof line, fp)) {
        char *t = trim(line);
        if (*t == '#' || *t == ';' || !*t)
            continue;
        if (*t == '[') {
            char *end = strchr(t, ']');
            if (end)
                *end = '\0';
            inside = strcmp(trim(t + 1), section) == 0;
            continue;
        }
        char *eq = strchr(t, '=');
        if (!inside || !eq)
            continue;
        *eq = '\0';
        char *name = trim(t), *value = trim(eq + 1);
        if (strcmp(name, "aws_access_key_id") == 0)
            snprintf(akid, sizeof akid, "%s", value);
        else if (strcmp(name, "aws_secret_access_key") == 0)
            snprintf(secret, sizeof secret, "%s", value);
        else if (strcmp(name, "aws_session_token") == 0)
            snprintf(token, sizeof token, "%s", value);
    }
    return set_keys(c, akid, secret, token, source);
}

/* Read the keys of section `section` from an ini file into c. */
static bool ini_profile(const char *path, const char *section, aws_credentials *c,
                        const char *source)
{
    FILE *fp = path ? fopen(path, "r") : NULL;
    if (!fp)
        return false;
    bool found = cred_parse_profile(fp, section, c, source);
    fclose(fp);
    return found;
}

static bool from_files(const env_snapshot *e, aws_credentials *c)
{
    const char *profile = e->profile ? e->profile : "default";
    char section[300];
    if (ini_profile(e->credentials_file, profile, c, "profile"))
        return true;
    if (strcmp(profile, "default") == 0)
        snprintf(section, sizeof section, "default");
    else
        snprintf(section, sizeof section, "profile %s", profile);
    return ini_profile(e->config_file, section, c, "profile");
}

/* ---- metadata endpoints (ECS, IMDS) ------------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
    buf *b = userdata;
    if (b->len + size * n > METADATA_MAX_BYTES)
        return 0;
    buf_append(b, data, size * n);
    return size * n;
}

/* One request to a metadata endpoint; the body lands in out. Returns the HTTP status or -1. */
static long metadata_request(const char *method, const char *url, struct curl_slist *headers,
                             buf *out)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    buf_reset(out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)METADATA_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    long status = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

static int64_t parse_iso8601_ms(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!text || !strptime(text, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

bool cred_parse_temporary(const char *text, size_t len, aws_credentials *c, const char *source)
{
    json_t *doc = json_loadb(text ? text : "", len, 0, NULL);
    if (!doc)
        return false;
    bool ok = set_keys(c, json_string_value(json_object_get(doc, "AccessKeyId")),
                       json_string_value(json_object_get(doc, "SecretAccessKey")),
                       json_string_value(json_object_get(doc, "Token")), source);
    if (ok)
        c->expires_ms = parse_iso8601_ms(json_string_value(json_object_get(doc, "Expiration")));
    json_decref(doc);
    return ok;
}

static char *read_token_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    return strdup(trim(text));
}

static bool from_ecs(const env_snapshot *e, aws_credentials *c)
{
    char url[2048];
    if (e->ecs_full_uri)
        snprintf(url, sizeof url, "%s", e->ecs_full_uri);
    else if (e->ecs_relative_uri)
        snprintf(url, sizeof url, ECS_HOST "%s", e->ecs_relative_uri);
    else
        return false;
    char *token = e->ecs_token_file ? read_token_file(e->ecs_token_file) : NULL;
    const char *auth = token ? token : e->ecs_token;
    char header[4200];
    struct curl_slist *headers = NULL;
    if (auth) {
        snprintf(header, sizeof header, "Authorization: %s", auth);
        headers = curl_slist_append(headers, header);
    }
    buf body;
    buf_init(&body);
    bool ok = metadata_request("GET", url, headers, &body) == 200 &&
              cred_parse_temporary(body.data, body.len, c, "ecs");
    curl_slist_free_all(headers);
    buf_free(&body);
    free(token);
    return ok;
}

static bool from_imds(const env_snapshot *e, aws_credentials *c)
{
    if (e->imds_disabled)
        return false;
    const char *base = e->imds_endpoint ? e->imds_endpoint : IMDS_DEFAULT;
    size_t base_len = strlen(base);
    while (base_len && base[base_len - 1] == '/')
        base_len--;
    char url[2048], header[1200];
    buf body;
    buf_init(&body);
    struct curl_slist *headers = NULL;
    bool ok = false;
    snprintf(header, sizeof header, "X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL_S);
    headers = curl_slist_append(headers, header);
    snprintf(url, sizeof url, "%.*s/latest/api/token", (int)base_len, base);
    if (metadata_request("PUT", url, headers, &body) != 200 || !body.len || body.len > 1000)
        goto done;
    curl_slist_free_all(headers);
    snprintf(header, sizeof header, "X-aws-ec2-metadata-token: %s", body.data);
    headers = curl_slist_append(NULL, header);
    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/", (int)base_len,
             base);
    if (metadata_request("GET", url, headers, &body) != 200 || !body.len)
        goto done;
    char role[512];
    snprintf(role, sizeof role, "%s", trim(body.data));
    char *newline = strchr(role, '\n');
    if (newline)
        *newline = '\0';
    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/%s",
             (int)base_len, base, role);
    ok = metadata_request("GET", url, headers, &body) == 200 &&
         cred_parse_temporary(body.data, body.len, c, "imds");
done:
    curl_slist_free_all(headers);
    buf_free(&body);
    return ok;
}

/* Walk the chain; the first provider that answers wins. */
static bool resolve(const env_snapshot *e, aws_credentials *c)
{
    return set_keys(c, e->access_key, e->secret_key, e->session_token, "environment") ||
           from_files(e, c) || from_ecs(e, c) || from_imds(e, c);
}

/* ---- the provider ------------------------------------------------------------------------- */

cred_provider *cred_provider_create(const char *access_key, const char *secret_key,
                                    const char *session_token)
{
    cred_provider *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->fetched, NULL);
    env_load(&p->env);
    if (set_keys(&p->current, access_key, secret_key, session_token, "configuration"))
        p->have = true;
    return p;
}

void cred_provider_destroy(cred_provider *p)
{
    if (!p)
        return;
    env_free(&p->env);
    pthread_cond_destroy(&p->fetched);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static bool usable(const aws_credentials *c, int64_t now, int64_t margin)
{
    return c->expires_ms == 0 || c->expires_ms - now > margin;
}

/* Fetch new credentials (the caller set p->refreshing) and publish them. */
static void refresh(cred_provider *p)
{
    aws_credentials fresh;
    bool ok = resolve(&p->env, &fresh);
    pthread_mutex_lock(&p->lock);
    if (ok) {
        p->current = fresh;
        p->have = true;
    } else {
        log_line("warn", "s3: no AWS credentials found (environment, profile files, ECS, "
                         "instance metadata)");
    }
    p->refreshing = false;
    pthread_cond_broadcast(&p->fetched);
    pthread_mutex_unlock(&p->lock);
}

aside_status cred_get(cred_provider *p, aws_credentials *out, aside_error *err)
{
    pthread_mutex_lock(&p->lock);
    int64_t now = clock_unix_ms();
    if (p->have && usable(&p->current, now, 0)) {
        bool refresh_due = !usable(&p->current, now, REFRESH_BEFORE_MS) && !p->refreshing;
        *out = p->current;
        if (refresh_due)
            p->refreshing = true;
        pthread_mutex_unlock(&p->lock);
        if (refresh_due)
            refresh(p); /* this caller refreshes; the others keep using the current keys */
        return ASIDE_OK;
    }
    if (!p->refreshing) {
        p->refreshing = true;
        pthread_mutex_unlock(&p->lock);
        refresh(p);
        pthread_mutex_lock(&p->lock);
    }
    while (p->refreshing)
        pthread_cond_wait(&p->fetched, &p->lock);
    bool ok = p->have && usable(&p->current, clock_unix_ms(), 0);
    if (ok)
        *out = p->current;
    pthread_mutex_unlock(&p->lock);
    return ok ? ASIDE_OK
              : error_set(err, ASIDE_ERR_DENIED, "no AWS credentials: none in the environment, "
                          "the profile files, the ECS endpoint or the instance metadata");
}
