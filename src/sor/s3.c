/* s3.c -- S3 (or an S3-compatible service) as system of record.
 *
 * Requests are plain HTTP through libcurl, signed by libcurl's SigV4 ("aws:amz:REGION:s3") with
 * the payload declared UNSIGNED-PAYLOAD in x-amz-content-sha256 and, for temporary credentials,
 * x-amz-security-token. All handles share one connection cache (a curl share handle), so
 * connections to S3 are reused across loads and threads.
 *
 * A load is a HEAD (conditional with If-None-Match on update: 304 means the cached copy is
 * current), then the object in parts of part_size bytes, `concurrency` ranged GETs at a time on
 * one curl multi handle, each written with pwrite straight into the disk tier's temporary file
 * at its offset: memory use is bounded by the parts in flight, not by the object. Every part
 * carries If-Match with the HEAD's ETag, so an object replaced mid-load fails instead of mixing
 * versions. The result is checked: every part complete, and the MD5 of the whole when the ETag
 * is a plain MD5 (single-part uploads), digested in order as parts complete, while later parts
 * are still on the wire.
 *
 * Failures: 404 is not found, 403 is denied (with S3's code and message), and other 4xx fail at
 * once; 5xx, 429, throttling (503 SlowDown), connection failures and stalls (no progress for
 * timeout_s) are retried up to max_attempts, each retry after a random delay in
 * [0, min(cap, base * 2^attempt)) -- the AWS SDKs' "full jitter" -- then reported as 502, or 504
 * for a stall. A part is retried alone. Nothing partial is ever committed: the caller discards
 * the temporary file on any failure.
 *
 * Listing is ListObjectsV2 page by page; a write is one PUT, or a multipart upload (create,
 * parts, complete; aborted on failure) above multipart_threshold. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sor.h"
#include "util/util.h"

enum {
    DEFAULT_PART_BYTES = 8 << 20,
    DEFAULT_CONCURRENCY = 8,
    DEFAULT_MAX_ATTEMPTS = 3,      /* the AWS SDKs' standard retry mode */
    DEFAULT_TIMEOUT_S = 30,
    DEFAULT_MULTIPART_THRESHOLD = 16 << 20,
    MIN_UPLOAD_PART_BYTES = 5 << 20, /* S3's minimum size of a multipart part (but the last) */
    BACKOFF_BASE_MS = 100,
    BACKOFF_CAP_MS = 20000,
    ERROR_BODY_MAX_BYTES = 256 * 1024, /* error documents and listing pages */
    LIST_MAX_PAGES = 100000,
    MD5_CHUNK_BYTES = 1 << 20,
    POLL_MS = 100
};

typedef struct sor_s3 {
    sor             base;
    char           *bucket, *prefix, *region;
    char           *base_url; /* scheme://host[/bucket], no trailing slash */
    bool            path_style;
    char            sigv4[96];
    uint64_t        part_size, multipart_threshold;
    unsigned        concurrency, max_attempts, timeout_s;
    CURLSH         *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    cred_provider  *creds;
} sor_s3;

/* One HTTP exchange with S3, and its outcome. */
typedef struct s3_request {
    sor_s3            *s3;
    CURL              *easy;
    const char        *method;
    char              *url;
    struct curl_slist *headers;
    /* the response body goes to fd at offset (ranged GETs) or into body */
    int                fd;
    uint64_t           offset, expect, written;
    int                write_errno; /* writing to fd failed (the disk tier's failure, not S3's) */
    buf                body;
    /* the request body: size bytes of in_fd from in_offset, or post data */
    int                in_fd;
    uint64_t           in_offset, in_size, in_sent;
    const char        *post;
    size_t             post_len;
    long               status;
    /* stall detection: bytes moved so far, and when they last moved */
    curl_off_t         moved;
    int64_t            moved_ms;
} s3_request;

typedef enum outcome { OUTCOME_DONE, OUTCOME_RETRY, OUTCOME_FAIL } outcome;

/* ---- URLs ---------------------------------------------------------------------------------- */

/* Percent-encode as SigV4 canonicalises: everything but A-Z a-z 0-9 - _ . ~ (and '/' if kept). */
static void put_encoded(buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (plain) {
            buf_putc(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, 3);
        }
    }
}

/* The URL of an object; query (already encoded and sorted) may be NULL. */
static char *object_url(const sor_s3 *s, const char *key, const char *query)
{
    buf b;
    buf_init(&b);
    buf_puts(&b, s->base_url);
    buf_putc(&b, '/');
    put_encoded(&b, s->prefix, true);
    put_encoded(&b, key, true);
    if (query) {
        buf_putc(&b, '?');
        buf_puts(&b, query);
    }
    return buf_take(&b);
}

/* ---- XML: just enough to read S3's answers -------------------------------------------------- */

/* Find <tag>value</tag> at or after *from; set value and len, advance *from past it. */
static bool xml_next(const char *text, size_t text_len, const char *tag, size_t *from,
                     const char **value, size_t *len)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *start = memmem(text + *from, text_len - *from, open, strlen(open));
    if (!start)
        return false;
    start += strlen(open);
    const char *end = memmem(start, text_len - (size_t)(start - text), close, strlen(close));
    if (!end)
        return false;
    *value = start;
    *len = (size_t)(end - start);
    *from = (size_t)(end - text) + strlen(close);
    return true;
}

/* Copy an XML text value into out, decoding the five predefined entities. */
static void xml_text(const char *v, size_t len, char *out, size_t out_size)
{
    static const struct {
        const char *entity;
        char        c;
    } entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < out_size;) {
        bool decoded = false;
        for (size_t k = 0; k < sizeof entities / sizeof entities[0] && v[i] == '&'; k++) {
            size_t elen = strlen(entities[k].entity);
            if (i + elen <= len && memcmp(v + i, entities[k].entity, elen) == 0) {
                out[n++] = entities[k].c;
                i += elen;
                decoded = true;
                break;
            }
        }
        if (!decoded)
            out[n++] = v[i++];
    }
    out[n] = '\0';
}

static bool xml_value(const buf *b, const char *tag, char *out, size_t out_size)
{
    size_t from = 0, len = 0;
    const char *v = NULL;
    if (!b->data || !xml_next(b->data, b->len, tag, &from, &v, &len))
        return false;
    xml_text(v, len, out, out_size);
    return true;
}

/* ---- one request --------------------------------------------------------------------------- */

static size_t on_data(char *data, size_t size, size_t n, void *userdata)
{
    s3_request *r = userdata;
    size_t len = size * n;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->fd >= 0 && (r->status == 200 || r->status == 206)) {
        if (r->written + len > r->expect)
            return 0; /* more than asked for: abort */
        for (size_t done = 0; done < len;) {
            ssize_t w = pwrite(r->fd, data + done, len - done,
                               (off_t)(r->offset + r->written + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                r->write_errno = w < 0 ? errno : EIO;
                return 0;
            }
            done += (size_t)w;
        }
        r->written += len;
        return len;
    }
    if (r->body.len + len > ERROR_BODY_MAX_BYTES)
        return 0;
    buf_append(&r->body, data, len);
    return r->body.failed ? 0 : len;
}

static size_t on_send(char *data, size_t size, size_t n, void *userdata)
{
    s3_request *r = userdata;
    size_t want = size * n;
    if (want > r->in_size - r->in_sent)
        want = (size_t)(r->in_size - r->in_sent);
    if (want == 0)
        return 0;
    ssize_t got = pread(r->in_fd, data, want, (off_t)(r->in_offset + r->in_sent));
    if (got <= 0)
        return CURL_READFUNC_ABORT;
    r->in_sent += (uint64_t)got;
    return (size_t)got;
}

/* Abort an attempt that moved no byte for timeout_s (curl's low-speed check averages over
 * seconds, so it notices a stall after a burst late). */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)ultotal;
    s3_request *r = userdata;
    int64_t now = clock_mono_ns() / 1000000;
    if (dlnow + ulnow != r->moved || r->moved_ms == 0) {
        r->moved = dlnow + ulnow;
        r->moved_ms = now;
        return 0;
    }
    return now - r->moved_ms > (int64_t)r->s3->timeout_s * 1000;
}

static int on_seek(void *userdata, curl_off_t offset, int origin)
{
    s3_request *r = userdata;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->in_size)
        return CURL_SEEKFUNC_CANTSEEK;
    r->in_sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* Prepare r->easy for one attempt with the given credentials. */
static bool request_setup(s3_request *r, const aws_credentials *creds)
{
    sor_s3 *s = r->s3;
    if (r->easy)
        curl_easy_reset(r->easy);
    else if (!(r->easy = curl_easy_init()))
        return false;
    r->written = 0;
    r->write_errno = 0;
    r->in_sent = 0;
    r->status = 0;
    r->moved = 0;
    r->moved_ms = 0;
    buf_reset(&r->body);
    CURL *h = r->easy;
    char userpwd[512], token[2100];
    snprintf(userpwd, sizeof userpwd, "%s:%s", creds->access_key, creds->secret_key);
    struct curl_slist *headers = NULL;
    for (struct curl_slist *l = r->headers; l; l = l->next)
        headers = curl_slist_append(headers, l->data);
    headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (creds->session_token[0]) {
        snprintf(token, sizeof token, "x-amz-security-token: %s", creds->session_token);
        headers = curl_slist_append(headers, token);
    }
    curl_easy_setopt(h, CURLOPT_PRIVATE, headers); /* freed in request_finish_attempt */
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_SHARE, s->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)s->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
    /* uploads: do not wait for "100 Continue" (a header we may not remove: it would be signed) */
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1L);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_send);
        curl_easy_setopt(h, CURLOPT_READDATA, r);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->in_size);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->post ? r->post : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post_len);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
    return true;
}

static void request_finish_attempt(s3_request *r)
{
    struct curl_slist *headers = NULL;
    if (r->easy && curl_easy_getinfo(r->easy, CURLINFO_PRIVATE, (char **)&headers) == CURLE_OK)
        curl_slist_free_all(headers);
    if (r->easy)
        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, NULL);
}

static void request_free(s3_request *r)
{
    request_finish_attempt(r);
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->body);
    free(r->url);
    r->easy = NULL;
    r->headers = NULL;
    r->url = NULL;
}

static void request_init(s3_request *r, sor_s3 *s, const char *method, char *url)
{
    memset(r, 0, sizeof *r);
    r->s3 = s;
    r->method = method;
    r->url = url;
    r->fd = -1;
    r->in_fd = -1;
    buf_init(&r->body);
}

/* Classify a finished attempt; on failure fill err (with S3's code and message if it sent one). */
static outcome classify(s3_request *r, CURLcode rc, aside_error *err)
{
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    char code[64] = "", message[400] = "";
    if (rc != CURLE_OK && r->write_errno) { /* the disk tier failed: S3 would send it again */
        error_set(err, ASIDE_ERR_IO, "S3 %s %s: cannot write to the disk tier: %s", r->method,
                  r->url, strerror(r->write_errno));
        return OUTCOME_FAIL;
    }
    if (rc != CURLE_OK) {
        bool stalled = rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_ABORTED_BY_CALLBACK;
        error_set(err, stalled ? ASIDE_ERR_TIMEOUT : ASIDE_ERR_SOR, "S3 %s %s: %s", r->method,
                  r->url, stalled ? "no progress within the timeout" : curl_easy_strerror(rc));
        return OUTCOME_RETRY;
    }
    long s = r->status;
    if ((s >= 200 && s < 300) || s == 304)
        return OUTCOME_DONE;
    xml_value(&r->body, "Code", code, sizeof code);
    xml_value(&r->body, "Message", message, sizeof message);
    aside_status st = s == 404 ? ASIDE_ERR_NOT_FOUND : s == 403 ? ASIDE_ERR_DENIED : ASIDE_ERR_SOR;
    error_set(err, st, "S3 %s %s: %ld %s%s%s", r->method, r->url, s, code,
              message[0] ? ": " : "", message);
    if (err)
        snprintf(err->code, sizeof err->code, "%s", code);
    bool transient = s == 429 || s >= 500;
    return transient ? OUTCOME_RETRY : OUTCOME_FAIL;
}

static int64_t backoff_ms(unsigned attempt)
{
    int64_t ceiling = BACKOFF_BASE_MS << (attempt < 16 ? attempt : 16);
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return (int64_t)arc4random_uniform((uint32_t)ceiling + 1);
}

/* Perform r with retries. */
static aside_status perform(s3_request *r, aside_error *err)
{
    sor_s3 *s = r->s3;
    for (unsigned attempt = 1;; attempt++) {
        aws_credentials creds;
        aside_status st = cred_get(s->creds, &creds, err);
        if (st != ASIDE_OK)
            return st;
        if (!request_setup(r, &creds))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        CURLcode rc = curl_easy_perform(r->easy);
        request_finish_attempt(r);
        outcome o = classify(r, rc, err);
        if (o == OUTCOME_DONE)
            return ASIDE_OK;
        if (o == OUTCOME_FAIL || attempt >= s->max_attempts)
            return err ? err->status : ASIDE_ERR_SOR;
        log_line("warn", "s3: %s (attempt %u of %u, retrying)", err ? err->message : "failed",
                 attempt, s->max_attempts);
        atomic_fetch_add_explicit(&s->base.retries, 1, memory_order_relaxed);
        usleep((useconds_t)backoff_ms(attempt) * 1000);
    }
}

static void header_value(CURL *h, const char *name, char *out, size_t out_size)
{
    struct curl_header *hdr = NULL;
    out[0] = '\0';
    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
        snprintf(out, out_size, "%s", hdr->value);
}

/* ---- loads ---------------------------------------------------------------------------------- */

/* True if etag is a quoted 32-digit hex MD5 (a single-part upload's ETag). */
static bool etag_is_md5(const char *etag)
{
    size_t len = strlen(etag);
    if (len != 34 || etag[0] != '"' || etag[33] != '"')
        return false;
    for (size_t i = 1; i < 33; i++) {
        if (!strchr("0123456789abcdefABCDEF", etag[i]))
            return false;
    }
    return true;
}

/* Add bytes [offset, offset + size) of fd to the digest. */
static aside_status md5_add(EVP_MD_CTX *ctx, int fd, uint64_t offset, uint64_t size,
                            aside_error *err)
{
    char *chunk = malloc(MD5_CHUNK_BYTES);
    aside_status st = chunk ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (uint64_t done = 0; st == ASIDE_OK && done < size;) {
        size_t want = size - done < MD5_CHUNK_BYTES ? (size_t)(size - done) : MD5_CHUNK_BYTES;
        ssize_t n = pread(fd, chunk, want, (off_t)(offset + done));
        if (n <= 0)
            st = error_set(err, ASIDE_ERR_IO, "cannot read back a loaded part");
        else {
            EVP_DigestUpdate(ctx, chunk, (size_t)n);
            done += (uint64_t)n;
        }
    }
    free(chunk);
    return st;
}

static aside_status md5_check(EVP_MD_CTX *ctx, const char *etag, const char *url,
                              aside_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char hex[40] = "";
    EVP_DigestFinal_ex(ctx, md, &md_len);
    for (unsigned i = 0; i < md_len && i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strncasecmp(hex, etag + 1, 32) != 0)
        return error_set(err, ASIDE_ERR_SOR, "%s: MD5 %s does not match the ETag %s", url, hex,
                         etag);
    return ASIDE_OK;
}

typedef struct part {
    s3_request req;
    unsigned   attempts;
    int64_t    ready_ms;
    bool       active, done;
} part;

typedef struct load {
    sor_s3     *s3;
    const char *url;
    const char *etag;
    int         fd;
    part       *parts;
    size_t      count, next_queued, done;
    CURLM      *multi;
    unsigned    active;
    EVP_MD_CTX *md5;    /* when the ETag is an MD5: the digest of parts [0, hashed) */
    size_t      hashed;
} load;

static aside_status part_start(load *l, part *p, aside_error *err)
{
    aws_credentials creds;
    aside_status st = cred_get(l->s3->creds, &creds, err);
    if (st != ASIDE_OK)
        return st;
    if (!request_setup(&p->req, &creds))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    char range[80];
    snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)p->req.offset,
             (unsigned long long)(p->req.offset + p->req.expect - 1));
    curl_easy_setopt(p->req.easy, CURLOPT_RANGE, range);
    curl_multi_add_handle(l->multi, p->req.easy);
    p->active = true;
    p->attempts++;
    l->active++;
    return ASIDE_OK;
}

/* Digest the parts that are complete and next in order, while they are in the page cache and
 * other parts are still on the wire. */
static aside_status hash_ready_parts(load *l, aside_error *err)
{
    aside_status st = ASIDE_OK;
    while (st == ASIDE_OK && l->md5 && l->hashed < l->count && l->parts[l->hashed].done) {
        part *p = &l->parts[l->hashed++];
        st = md5_add(l->md5, l->fd, p->req.offset, p->req.expect, err);
    }
    return st;
}

/* A part finished: done, to be retried later, or a failure of the whole load. */
static aside_status part_finished(load *l, part *p, CURLcode rc, aside_error *err)
{
    curl_multi_remove_handle(l->multi, p->req.easy);
    request_finish_attempt(&p->req);
    p->active = false;
    l->active--;
    outcome o = classify(&p->req, rc, err);
    if (o == OUTCOME_DONE && p->req.written != p->req.expect) {
        error_set(err, ASIDE_ERR_SOR, "S3 GET %s: part at %llu ended after %llu of %llu bytes",
                  l->url, (unsigned long long)p->req.offset,
                  (unsigned long long)p->req.written, (unsigned long long)p->req.expect);
        o = OUTCOME_RETRY;
    }
    if (o == OUTCOME_DONE) {
        p->done = true;
        l->done++;
        return hash_ready_parts(l, err);
    }
    if (p->req.status == 412)
        return error_set(err, ASIDE_ERR_SOR, "%s changed in S3 while it was loaded", l->url);
    if (o == OUTCOME_FAIL || p->attempts >= l->s3->max_attempts)
        return err ? err->status : ASIDE_ERR_SOR;
    log_line("warn", "s3: %s (part attempt %u of %u, retrying)", err ? err->message : "failed",
             p->attempts, l->s3->max_attempts);
    atomic_fetch_add_explicit(&l->s3->base.retries, 1, memory_order_relaxed);
    p->ready_ms = clock_mono_ns() / 1000000 + backoff_ms(p->attempts);
    return ASIDE_OK;
}

/* Start parts that are due, up to the concurrency. */
static aside_status start_due(load *l, aside_error *err)
{
    int64_t now = clock_mono_ns() / 1000000;
    for (size_t i = 0; i < l->count && l->active < l->s3->concurrency; i++) {
        part *p = &l->parts[i];
        if (p->done || p->active || p->ready_ms > now || (p->attempts == 0 && i > l->next_queued))
            continue;
        if (p->attempts == 0)
            l->next_queued = i + 1;
        aside_status st = part_start(l, p, err);
        if (st != ASIDE_OK)
            return st;
    }
    return ASIDE_OK;
}

static aside_status run_load(load *l, aside_error *err)
{
    aside_status st = ASIDE_OK;
    while (st == ASIDE_OK && l->done < l->count) {
        if ((st = start_due(l, err)) != ASIDE_OK)
            break;
        int running = 0;
        curl_multi_perform(l->multi, &running);
        curl_multi_poll(l->multi, NULL, 0, POLL_MS, NULL);
        curl_multi_perform(l->multi, &running);
        CURLMsg *msg;
        int left = 0;
        while (st == ASIDE_OK && (msg = curl_multi_info_read(l->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            for (size_t i = 0; i < l->count; i++) {
                if (l->parts[i].active && l->parts[i].req.easy == msg->easy_handle) {
                    st = part_finished(l, &l->parts[i], msg->data.result, err);
                    break;
                }
            }
        }
    }
    return st;
}

static void load_free(load *l)
{
    for (size_t i = 0; l->parts && i < l->count; i++) {
        if (l->parts[i].active)
            curl_multi_remove_handle(l->multi, l->parts[i].req.easy);
        l->parts[i].req.url = NULL; /* shared, owned by the caller */
        request_free(&l->parts[i].req);
    }
    free(l->parts);
    if (l->multi)
        curl_multi_cleanup(l->multi);
    EVP_MD_CTX_free(l->md5);
}

/* Fetch size bytes of url into fd in parallel ranged parts, checking the ETag's MD5 if it is
 * one. */
static aside_status load_parts(sor_s3 *s, char *url, const char *etag, uint64_t size, int fd,
                               aside_error *err)
{
    load l = {s, url, etag, fd, NULL, 0, 0, 0, curl_multi_init(), 0, NULL, 0};
    if (etag_is_md5(etag) && (l.md5 = EVP_MD_CTX_new()))
        EVP_DigestInit_ex(l.md5, EVP_md5(), NULL);
    l.count = (size_t)((size + s->part_size - 1) / s->part_size);
    l.parts = calloc(l.count, sizeof *l.parts);
    char if_match[200];
    snprintf(if_match, sizeof if_match, "If-Match: %s", etag);
    aside_status st = l.parts && l.multi ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "no memory");
    for (size_t i = 0; st == ASIDE_OK && i < l.count; i++) {
        part *p = &l.parts[i];
        request_init(&p->req, s, "GET", url);
        p->req.fd = fd;
        p->req.offset = (uint64_t)i * s->part_size;
        p->req.expect = size - p->req.offset < s->part_size ? size - p->req.offset : s->part_size;
        if (etag[0])
            p->req.headers = curl_slist_append(NULL, if_match);
    }
    if (st == ASIDE_OK)
        st = run_load(&l, err);
    if (st == ASIDE_OK && l.md5)
        st = md5_check(l.md5, etag, url, err);
    load_free(&l);
    return st;
}

/* HEAD the object: size, ETag, mtime, or not modified. */
static aside_status head_object(sor_s3 *s, char *url, const char *if_none_match,
                                aside_object_info *info, aside_error *err)
{
    s3_request r;
    request_init(&r, s, "HEAD", url);
    char header[200];
    if (if_none_match) {
        snprintf(header, sizeof header, "If-None-Match: %s", if_none_match);
        r.headers = curl_slist_append(NULL, header);
    }
    aside_status st = perform(&r, err);
    if (st == ASIDE_ERR_DENIED) { /* a HEAD has no body: ask with a GET for S3's reason */
        s3_request probe;
        request_init(&probe, s, "GET", url);
        probe.headers = curl_slist_append(NULL, "Range: bytes=0-0");
        perform(&probe, err);
        probe.url = NULL;
        request_free(&probe);
    }
    if (st == ASIDE_OK && r.status == 304) {
        info->not_modified = true;
        snprintf(info->etag, sizeof info->etag, "%s", if_none_match);
    } else if (st == ASIDE_OK) {
        curl_off_t length = -1, mtime = -1;
        curl_easy_getinfo(r.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        curl_easy_getinfo(r.easy, CURLINFO_FILETIME_T, &mtime);
        header_value(r.easy, "ETag", info->etag, sizeof info->etag);
        info->size = length > 0 ? (uint64_t)length : 0;
        info->mtime_ns = mtime > 0 ? (int64_t)mtime * 1000000000 : 0;
    }
    r.url = NULL;
    request_free(&r);
    return st;
}

static aside_status s3_fetch(sor *base, const char *key, int fd, const char *if_none_match,
                             aside_object_info *info, aside_error *err)
{
    sor_s3 *s = (sor_s3 *)base;
    char *url = object_url(s, key, NULL);
    if (!url)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    aside_status st = head_object(s, url, if_none_match, info, err);
    if (st == ASIDE_ERR_NOT_FOUND)
        error_set(err, ASIDE_ERR_NOT_FOUND, "not found in S3: s3://%s/%s%s", s->bucket,
                  s->prefix, key);
    if (st == ASIDE_OK && !info->not_modified && info->size > 0)
        st = load_parts(s, url, info->etag, info->size, fd, err);
    free(url);
    return st;
}

/* ---- listing -------------------------------------------------------------------------------- */

static int64_t parse_time_ns(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!strptime(text, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    time_t s = timegm(&tm);
    if (s > INT64_MAX / 1000000000 || s < INT64_MIN / 1000000000)
        return 0; /* past what nanoseconds hold (the year 2262): unknown, like no time */
    return (int64_t)s * 1000000000;
}

aside_status s3_parse_list_page(const char *text, size_t text_len, const char *prefix,
                                sor_listing *out, char *next, size_t next_size, aside_error *err)
{
    const buf page = {(char *)text, text_len, text_len, false};
    size_t from = 0, len = 0, prefix_len = strlen(prefix);
    const char *v = NULL;
    while (text && xml_next(text, text_len, "Contents", &from, &v, &len)) {
        buf one = {(char *)v, len, len, false};
        char key[ASIDE_KEY_MAX_BYTES * 2], size[32] = "0", modified[64] = "";
        if (!xml_value(&one, "Key", key, sizeof key))
            continue;
        xml_value(&one, "Size", size, sizeof size);
        xml_value(&one, "LastModified", modified, sizeof modified);
        const char *rel = key + (strncmp(key, prefix, prefix_len) == 0 ? prefix_len : 0);
        if (aside_key_check(rel, strlen(rel), NULL) != ASIDE_OK)
            continue; /* folder markers ("dir/") and names aside cannot serve */
        if (!sor_listing_add(out, rel, strlen(rel), strtoull(size, NULL, 10),
                             parse_time_ns(modified)))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    char truncated[16] = "";
    xml_value(&page, "IsTruncated", truncated, sizeof truncated);
    next[0] = '\0';
    if (strcmp(truncated, "true") == 0 &&
        !xml_value(&page, "NextContinuationToken", next, next_size))
        return error_set(err, ASIDE_ERR_SOR, "S3 listing is truncated but has no continuation");
    return ASIDE_OK;
}

static aside_status s3_list(sor *base, const char *prefix, sor_listing *out, aside_error *err)
{
    sor_s3 *s = (sor_s3 *)base;
    char token[2048] = "";
    aside_status st = ASIDE_OK;
    for (int page = 0; st == ASIDE_OK && page < LIST_MAX_PAGES; page++) {
        buf url;
        buf_init(&url);
        buf_puts(&url, s->base_url);
        buf_puts(&url, s->path_style ? "?" : "/?");
        if (token[0]) { /* parameters in the order SigV4 sorts them */
            buf_puts(&url, "continuation-token=");
            put_encoded(&url, token, false);
            buf_putc(&url, '&');
        }
        buf_puts(&url, "list-type=2&prefix=");
        put_encoded(&url, s->prefix, false);
        put_encoded(&url, prefix, false);
        s3_request r;
        request_init(&r, s, "GET", buf_take(&url));
        st = r.url ? perform(&r, err) : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        if (st == ASIDE_OK)
            st = s3_parse_list_page(r.body.data, r.body.len, s->prefix, out, token,
                                    sizeof token, err);
        request_free(&r);
        if (!token[0])
            break;
    }
    return st;
}

/* ---- writing -------------------------------------------------------------------------------- */

static aside_status put_part(sor_s3 *s, char *url, int fd, uint64_t offset, uint64_t size,
                             char *etag, size_t etag_size, aside_error *err)
{
    s3_request r;
    request_init(&r, s, "PUT", url);
    r.in_fd = fd;
    r.in_offset = offset;
    r.in_size = size;
    aside_status st = perform(&r, err);
    if (st == ASIDE_OK)
        header_value(r.easy, "ETag", etag, etag_size);
    request_free(&r);
    return st;
}

static aside_status post_xml(sor_s3 *s, char *url, const char *body, buf *answer,
                             aside_error *err)
{
    s3_request r;
    request_init(&r, s, "POST", url);
    r.post = body;
    r.post_len = strlen(body);
    r.headers = curl_slist_append(NULL, "Content-Type: application/xml");
    aside_status st = perform(&r, err);
    if (st == ASIDE_OK) {
        buf_reset(answer);
        buf_append(answer, r.body.data, r.body.len);
    }
    request_free(&r);
    return st;
}

static char *upload_query(const char *upload_id, unsigned part_number)
{
    buf q;
    buf_init(&q);
    if (part_number)
        buf_printf(&q, "partNumber=%u&", part_number);
    buf_puts(&q, "uploadId=");
    put_encoded(&q, upload_id, false);
    return buf_take(&q);
}

/* Upload the parts and build the completion document in done. */
static aside_status upload_parts(sor_s3 *s, const char *key, const char *upload_id, int fd,
                                 uint64_t size, buf *done, aside_error *err)
{
    uint64_t part_size = s->part_size > MIN_UPLOAD_PART_BYTES ? s->part_size
                                                              : MIN_UPLOAD_PART_BYTES;
    buf_puts(done, "<CompleteMultipartUpload>");
    aside_status st = ASIDE_OK;
    unsigned number = 1;
    for (uint64_t offset = 0; st == ASIDE_OK && offset < size; offset += part_size, number++) {
        char *query = upload_query(upload_id, number);
        char etag[200] = "";
        uint64_t len = size - offset < part_size ? size - offset : part_size;
        st = query ? put_part(s, object_url(s, key, query), fd, offset, len, etag, sizeof etag,
                              err)
                   : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        free(query);
        buf_printf(done, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", number,
                   etag);
    }
    buf_puts(done, "</CompleteMultipartUpload>");
    return st;
}

static aside_status multipart_put(sor_s3 *s, const char *key, int fd, uint64_t size,
                                  aside_object_info *info, aside_error *err)
{
    buf answer, done;
    buf_init(&answer);
    buf_init(&done);
    char upload_id[1024] = "";
    aside_status st = post_xml(s, object_url(s, key, "uploads="), "", &answer, err);
    if (st == ASIDE_OK && !xml_value(&answer, "UploadId", upload_id, sizeof upload_id))
        st = error_set(err, ASIDE_ERR_SOR, "S3 did not start a multipart upload of %s", key);
    if (st == ASIDE_OK)
        st = upload_parts(s, key, upload_id, fd, size, &done, err);
    char *query = upload_id[0] ? upload_query(upload_id, 0) : NULL;
    if (st == ASIDE_OK)
        st = post_xml(s, object_url(s, key, query), done.data, &answer, err);
    char code[64] = "";
    if (st == ASIDE_OK && xml_value(&answer, "Code", code, sizeof code)) /* 200 with an error */
        st = error_set(err, ASIDE_ERR_SOR, "S3 failed to complete the upload of %s: %s", key,
                       code);
    if (st == ASIDE_OK)
        xml_value(&answer, "ETag", info->etag, sizeof info->etag);
    if (st != ASIDE_OK && query) { /* abort, so no parts linger (and cost) */
        s3_request r;
        request_init(&r, s, "DELETE", object_url(s, key, query));
        perform(&r, NULL);
        request_free(&r);
    }
    free(query);
    buf_free(&answer);
    buf_free(&done);
    return st;
}

static aside_status s3_put(sor *base, const char *key, int fd, uint64_t size,
                           aside_object_info *info, aside_error *err)
{
    sor_s3 *s = (sor_s3 *)base;
    aside_status st;
    if (size > s->multipart_threshold)
        st = multipart_put(s, key, fd, size, info, err);
    else
        st = put_part(s, object_url(s, key, NULL), fd, 0, size, info->etag, sizeof info->etag,
                      err);
    if (st == ASIDE_OK) {
        info->size = size;
        info->mtime_ns = clock_unix_ms() * 1000000;
    }
    return st;
}

/* ---- creation ------------------------------------------------------------------------------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
    (void)h;
    (void)access;
    pthread_mutex_lock(&((sor_s3 *)userptr)->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userptr)
{
    (void)h;
    pthread_mutex_unlock(&((sor_s3 *)userptr)->share_locks[data]);
}

static void s3_destroy(sor *base)
{
    sor_s3 *s = (sor_s3 *)base;
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->share_locks[i]);
    cred_provider_destroy(s->creds);
    free(s->bucket);
    free(s->prefix);
    free(s->region);
    free(s->base_url);
    free(s);
}

static const sor_ops s3_ops = {"s3", s3_fetch, s3_list, s3_put, s3_destroy};

/* "data", "data/", "/data/" -> "data/"; "" or NULL -> "". */
static char *normal_prefix(const char *prefix)
{
    while (prefix && *prefix == '/')
        prefix++;
    size_t len = prefix ? strlen(prefix) : 0;
    while (len && prefix[len - 1] == '/')
        len--;
    char *out = malloc(len + 2);
    if (out)
        snprintf(out, len + 2, "%.*s%s", (int)len, len ? prefix : "", len ? "/" : "");
    return out;
}

static char *make_base_url(const aside_s3_config *cfg, const char *region, bool *path_style)
{
    buf b;
    buf_init(&b);
    *path_style = cfg->endpoint && *cfg->endpoint;
    if (*path_style) {
        size_t len = strlen(cfg->endpoint);
        while (len && cfg->endpoint[len - 1] == '/')
            len--;
        buf_append(&b, cfg->endpoint, len);
        buf_putc(&b, '/');
        put_encoded(&b, cfg->bucket, false);
    } else {
        buf_printf(&b, "https://%s.s3.%s.amazonaws.com", cfg->bucket, region);
    }
    return buf_take(&b);
}

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

sor *sor_s3_create(const aside_s3_config *cfg, aside_error *err)
{
    static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
    pthread_once(&curl_once, curl_init_once);
    sor_s3 *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->base.ops = &s3_ops;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->share_locks[i], NULL);
    const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
    s->bucket = strdup(cfg->bucket);
    s->prefix = normal_prefix(cfg->prefix);
    s->region = strdup(region);
    s->base_url = make_base_url(cfg, region, &s->path_style);
    snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", region);
    s->part_size = cfg->part_size_bytes ? cfg->part_size_bytes : DEFAULT_PART_BYTES;
    s->concurrency = cfg->concurrency ? cfg->concurrency : DEFAULT_CONCURRENCY;
    s->max_attempts = cfg->max_attempts ? cfg->max_attempts : DEFAULT_MAX_ATTEMPTS;
    s->timeout_s = cfg->timeout_s ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
    s->multipart_threshold = cfg->multipart_threshold_bytes ? cfg->multipart_threshold_bytes
                                                            : DEFAULT_MULTIPART_THRESHOLD;
    s->creds = cred_provider_create(cfg->access_key_id, cfg->secret_access_key,
                                    cfg->session_token);
    s->share = curl_share_init();
    if (!s->bucket || !s->prefix || !s->region || !s->base_url || !s->creds || !s->share) {
        s3_destroy(&s->base);
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    return &s->base;
}
