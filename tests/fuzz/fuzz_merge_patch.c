/* fuzz_merge_patch.c -- JSON merge patch (RFC 7386, json_merge_patch in json_pointer.c).
 *
 * json_merge takes both the patch and, through earlier edits, the document from clients. The
 * input is a target document, a newline, then a patch. The merge must not crash, must leave the
 * patch as it was (it is borrowed), and must be idempotent, as RFC 7386's algorithm is:
 * applying the patch to its own result changes nothing. */
#include <jansson.h>

#include "fuzz.h"
#include "value/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target_text = NULL, *patch_text = NULL;
    size_t target_len = 0, patch_len = 0;
    if (!fuzz_split(data, size, '\n', &target_text, &target_len, &patch_text, &patch_len))
        return 0;
    json_t *target = json_loadb(target_text, target_len, JSON_DECODE_ANY, NULL);
    json_t *patch = json_loadb(patch_text, patch_len, JSON_DECODE_ANY, NULL);
    free(target_text);
    free(patch_text);
    if (!patch) {
        json_decref(target);
        return 0;
    }
    json_t *patch_before = json_deep_copy(patch);
    json_t *once = json_merge_patch(target, patch); /* takes target over */
    if (once) {
        json_t *twice = json_merge_patch(json_deep_copy(once), patch);
        if (!twice || !json_equal(once, twice))
            abort(); /* not idempotent */
        json_decref(twice);
    }
    if (!json_equal(patch, patch_before))
        abort(); /* the borrowed patch was changed */
    json_decref(once);
    json_decref(patch_before);
    json_decref(patch);
    return 0;
}
