/* PeerNotice bytes (rpc/goulettefs.proto) <-> a checked message: what a
 * member accepts from another over the peer transport's application frames.
 * Pure: no I/O.  It does not send or dispatch notices (member_notice.c). */
#ifndef GOULETTE_TOOLS_NOTICE_H
#define GOULETTE_TOOLS_NOTICE_H

#include <stddef.h>

#include <goulette/buf.h>

#include "goulettefs.pb-c.h"

/* Encode @n (borrowed) into out->base (returned, caller frees with free()).
 * Errors: -EINVAL (an empty notice: nothing to say), -ENOMEM. */
int notice_pack(const Goulettefs__PeerNotice *n, struct goulette_buf *out);

/* Decode untrusted @data (@len bytes, borrowed) into *@out (returned, free
 * with notice_free()).  Every broker id and topic must pass
 * store_name_check, and the encoding must be the canonical one a member
 * produces (protobuf-c's: this is also how a string holding a NUL byte,
 * which a C string would silently cut, is caught); unknown fields are
 * kept and ignored.
 * Errors: -EBADMSG (not a PeerNotice, or not canonical), -EINVAL (a name
 * fails the check), -ENAMETOOLONG (a name is too long). */
int notice_unpack(const void *data, size_t len, Goulettefs__PeerNotice **out);

/* Free what notice_unpack returned.  NULL is allowed. */
void notice_free(Goulettefs__PeerNotice *n);

#endif /* GOULETTE_TOOLS_NOTICE_H */
