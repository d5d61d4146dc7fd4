/* reply.h -- answering a frame in the format a call asks for (reply.c), for every handler
 * family that answers frames: a read of a frame value, the frame functions, a user's function
 * that returns a DataFrame. */
#ifndef ASIDE_SERVER_REPLY_H
#define ASIDE_SERVER_REPLY_H

#include <stdbool.h>

#include "call.h"

struct frame;

/* Answer f as c asks: format=arrow (or an Accept header naming the Arrow stream type) an Arrow
 * stream from f's own buffers, with pandas metadata when whole (f is a whole stored frame);
 * format=parquet a file, sent with sendfile; format=csv|json the bare body; else JSON in the
 * envelope, orient= (default default_orient). A JSON or CSV body over the result limit is 413.
 * f is borrowed: the answer holds what it needs. */
void reply_frame(call *c, struct frame *f, const char *default_orient, bool whole);

#endif
