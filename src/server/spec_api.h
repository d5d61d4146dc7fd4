/* spec_api.h -- the API's functions on the data spec (spec_api.c); call_handlers. */
#ifndef ASIDE_SERVER_SPEC_API_H
#define ASIDE_SERVER_SPEC_API_H

#include "call.h"

/* function=spec: the spec in force, its path, when it was loaded and how often reloaded. Runs
 * anywhere. */
void spec_api_spec(call *c);
/* function=reload_spec: read the file again; a bad file is 400 bad_spec. Must block. */
void spec_api_reload(call *c);

#endif
