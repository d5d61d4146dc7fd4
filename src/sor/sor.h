/* sor.h -- systems of record: where values come from and go to.
 *
 * A system of record (SOR) is the source of truth the cache loads from on a miss. The
 * interface has three operations: fetch copies an object into a file descriptor (the disk
 * tier's temporary file, so a large object streams to disk and never needs to fit in memory),
 * optionally only if its version tag changed; list names the objects under a prefix; put
 * writes an object from a file descriptor.
 *
 * Implementations: a local or network directory (local.c, the "sd" storage), S3 or an
 * S3-compatible service (s3.c, with AWS credentials from credentials.c), and callbacks that a
 * program embedding libaside supplies (sor.c). A SOR is safe to call from many threads. */
#ifndef ASIDE_SOR_H
#define ASIDE_SOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aside.h"
#include "util/util.h"

typedef struct sor sor;

/* A growing array of listed objects. */
typedef struct sor_listing {
    aside_object_entry *items;
    size_t              count, cap;
} sor_listing;

typedef struct sor_ops {
    const char *name;
    aside_status (*fetch)(sor *s, const char *key, int fd, const char *if_none_match,
                          aside_object_info *info, aside_error *err);
    aside_status (*list)(sor *s, const char *prefix, sor_listing *out, aside_error *err);
    aside_status (*put)(sor *s, const char *key, int fd, uint64_t size, aside_object_info *info,
                        aside_error *err);
    void (*destroy)(sor *s);
} sor_ops;

/* Every implementation starts with this header. */
struct sor {
    const sor_ops   *ops;
    _Atomic uint64_t retries; /* requests tried again after a transient failure (S3) */
};

/* A SOR over the directory root (which must exist). NULL with a reason on failure. */
sor *sor_local_create(const char *root, aside_error *err);
/* A SOR on S3 as configured (bucket set). NULL with a reason on failure. */
sor *sor_s3_create(const aside_s3_config *cfg, aside_error *err);
/* A SOR calling back into the embedding program; callbacks is copied. Fetch only. */
sor *sor_callbacks_create(const aside_sor_callbacks *callbacks, aside_error *err);

/* Copy the object named key (a checked key) into fd, positioned at 0, and describe it. With
 * if_none_match (a version tag), an unchanged object sets info->not_modified and copies
 * nothing. ASIDE_ERR_NOT_FOUND when the SOR has no such object; ASIDE_ERR_INVALID when the
 * key resolves outside the SOR (a symlink); ASIDE_ERR_SOR, ASIDE_ERR_DENIED,
 * ASIDE_ERR_TIMEOUT or ASIDE_ERR_IO on failure. Nothing is promised of fd after a failure. */
aside_status sor_fetch(sor *s, const char *key, int fd, const char *if_none_match,
                       aside_object_info *info, aside_error *err);
/* Append the objects whose keys start with prefix to out (unsorted). */
aside_status sor_list(sor *s, const char *prefix, sor_listing *out, aside_error *err);
/* Write size bytes from fd (read with pread from offset 0) as key's content, atomically: a
 * failed put leaves the old object, if any. */
aside_status sor_put(sor *s, const char *key, int fd, uint64_t size, aside_object_info *info,
                     aside_error *err);
void         sor_destroy(sor *s);
/* Requests s tried again after a transient failure (5xx, throttling, a stall), ever. */
uint64_t     sor_retries(sor *s);

/* Add one object to a listing; false when out of memory. */
bool sor_listing_add(sor_listing *l, const char *key, size_t key_len, uint64_t size,
                     int64_t mtime_ns);

/* One page of an S3 ListObjectsV2 answer (text_len bytes of XML, from S3: untrusted; text may
 * be NULL when empty), as s3.c reads it: each <Contents>' Key, Size and LastModified, the key
 * relative to prefix (the SOR's prefix), added to out unless aside cannot serve it as a key;
 * next (next_size bytes) receives the continuation token, "" on the last page. ASIDE_ERR_SOR
 * for a truncated page without a token, ASIDE_ERR_NOMEM. Exposed for the fuzzer and tests. */
aside_status s3_parse_list_page(const char *text, size_t text_len, const char *prefix,
                                sor_listing *out, char *next, size_t next_size, aside_error *err);

/* ---- AWS credentials (credentials.c) ------------------------------------------------------ */

typedef struct aws_credentials {
    char    access_key[128];
    char    secret_key[256];
    char    session_token[2048];
    int64_t expires_ms; /* unix ms; 0: never */
    char    source[16]; /* where they came from: "environment", "profile", "ecs", ... */
} aws_credentials;

typedef struct cred_provider cred_provider;

/* A provider; static keys (may be NULL) win over the chain, which reads the environment now. */
cred_provider *cred_provider_create(const char *access_key, const char *secret_key,
                                    const char *session_token);
void           cred_provider_destroy(cred_provider *p);
/* Current credentials, fetched or refreshed as needed. ASIDE_ERR_DENIED when none exist. */
aside_status   cred_get(cred_provider *p, aws_credentials *out, aside_error *err);

/* The parsers of the chain, exposed for the fuzzer and tests; their input is untrusted. Each
 * fills *c and returns true when it found both keys, else returns false; source names where
 * they came from. cred_parse_profile reads an ini file (shared credentials or config) from fp,
 * lines of at most 4095 bytes, for the keys of [section]; cred_parse_temporary reads an ECS or
 * IMDS answer, {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} (len bytes of JSON;
 * text may be NULL when empty). */
bool cred_parse_profile(FILE *fp, const char *section, aws_credentials *c, const char *source);
bool cred_parse_temporary(const char *text, size_t len, aws_credentials *c, const char *source);

#endif
