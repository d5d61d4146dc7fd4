/* frames.h -- the API's frame functions (frames.c). Each is a call_handler: it names its frame
 * with path (read through the cache, type=frame implied for keys whose name does not say
 * frame) and answers in the envelope or in the format asked for (reply.h). Those that only
 * read a frame try memory first and defer on a miss; describe, select, sql and map must run
 * where they may block. README's DataFrames table (routes.c) says what each answers. */
#ifndef ASIDE_SERVER_FRAMES_H
#define ASIDE_SERVER_FRAMES_H

#include "call.h"

void frames_info(call *c);     /* pandas' df.info() */
void frames_describe(call *c); /* pandas' df.describe(); include=all */
void frames_head(call *c);     /* the first n rows (the head rule in routes.c) */
void frames_tail(call *c);     /* the last n rows */
void frames_shape(call *c);
void frames_columns(call *c);
void frames_dtypes(call *c);
void frames_select(call *c);   /* columns=, where=, order_by=, limit, offset */
void frames_sql(call *c);      /* query=, into= */
void frames_map(call *c);      /* publish in shared memory */

#endif
