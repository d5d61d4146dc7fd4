/* fuzz_spec.c -- the data spec's YAML reader and schema (spec_load_text, spec.h).
 *
 * A spec is an operator's file, but it is parsed by libyaml and our schema before anything
 * trusts it, and reload_spec reads it again while the server serves: no spec may crash or
 * hang the reader. The input is the file. A spec that loads must also print as JSON (what the
 * spec function answers) and answer the questions the preloader asks of each dataset. */
#include "fuzz.h"
#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spec *s = NULL;
    aside_error err;
    if (spec_load_text("fuzz.yaml", (const char *)data, size, &s, &err) != ASIDE_OK)
        return 0;
    char *json = NULL;
    if (spec_to_json(s, &json, &err) == ASIDE_OK)
        free(json);
    for (size_t i = 0; i < s->dataset_count; i++) {
        size_t len = 0;
        spec_dataset_list_prefix(&s->datasets[i], &len);
        spec_dataset_matches(&s->datasets[i], "data/a.json");
        spec_dataset_equal(&s->datasets[i], &s->datasets[0]);
    }
    spec_free(s);
    return 0;
}
