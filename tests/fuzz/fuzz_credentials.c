/* fuzz_credentials.c -- the parsers of the AWS credential chain (cred_parse_profile and
 * cred_parse_temporary, sor.h), whose answers sign every S3 request (SigV4).
 *
 * Their input is untrusted: shared credentials and config files anyone with the account may
 * edit, and answers of the ECS and EC2 metadata endpoints. The input's first byte chooses: an
 * even byte, the rest is an ini file read for [default] (byte 0), [profile dev] (byte 2) or
 * [dev] (others); an odd byte, the rest is a metadata endpoint's JSON answer. Whatever is found
 * must be NUL-terminated within its field, both keys non-empty. */
#include <string.h>

#include "fuzz.h"
#include "sor/sor.h"

static void check(const aws_credentials *c)
{
    if (strnlen(c->access_key, sizeof c->access_key) == sizeof c->access_key ||
        strnlen(c->secret_key, sizeof c->secret_key) == sizeof c->secret_key ||
        strnlen(c->session_token, sizeof c->session_token) == sizeof c->session_token ||
        strnlen(c->source, sizeof c->source) == sizeof c->source || !c->access_key[0] ||
        !c->secret_key[0])
        abort();
}

static void parse_profile(const uint8_t *data, size_t size, const char *section)
{
    /* fmemopen refuses an empty buffer: an empty file is one byte of nothing */
    static const uint8_t empty[1] = {0};
    FILE *fp = fmemopen((void *)(size ? data : empty), size ? size : 1, "r");
    if (!fp)
        return;
    aws_credentials c;
    if (cred_parse_profile(fp, section, &c, "profile"))
        check(&c);
    fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    aws_credentials c;
    if (data[0] & 1) {
        if (cred_parse_temporary((const char *)data + 1, size - 1, &c, "imds"))
            check(&c);
        return 0;
    }
    const char *section = data[0] == 0 ? "default" : data[0] == 2 ? "profile dev" : "dev";
    parse_profile(data + 1, size - 1, section);
    return 0;
}
