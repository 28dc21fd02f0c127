/* The member's notices to other members (PeerNotice, rpc/goulettefs.proto)
 * over the peer transport's application frames: sending one, and
 * dispatching the ones that arrive.  Best effort, like the frames: a lost
 * notice is made up by the next one.  It owns no decision: renewals go to
 * member_liveness.c, delivered roles to member_roles.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <goulette/err.h>

#include "member.h"
#include "notice.h"

#define SUBSYS "notice"
#define BAD_LOG_INTERVAL_NS (10LL * 1000000000) /* one warning per sender */

int member_notice_send(struct member *m,
                       raft_id to,
                       const Goulettefs__PeerNotice *n)
{
    struct goulette_buf buf;
    int rv;

    if (!m->transport_up) {
        return GOULETTE_ESHUTDOWN;
    }
    rv = notice_pack(n, &buf);
    if (rv != 0) {
        return rv;
    }
    rv = raft_uv_transport_send_app(&m->transport, to, buf.base, buf.len);
    free(buf.base);
    return rv;
}

/* A notice from @from was dropped: warn at most once per interval (and per
 * sender, since the last bad one came from another), count every one. */
static void dropped(struct member *m, raft_id from, size_t len, int rv)
{
    int64_t now = (int64_t)uv_hrtime();
    const char *name = member_name_of(m, from);

    m->notices_dropped++;
    if (from == m->notice_bad_from &&
        now - m->notice_bad_logged < BAD_LOG_INTERVAL_NS) {
        return;
    }
    m->notice_bad_from = from;
    m->notice_bad_logged = now;
    goulette_logf(m->log, GOULETTE_LOG_WARN, SUBSYS,
                  "dropped a notice of %zu bytes from member %s (%" PRIu64
                  "): %s (%" PRIu64 " dropped so far)",
                  len, name != NULL ? name : "?", from, goulette_strerror(rv),
                  m->notices_dropped);
}

void member_notice_on_app(struct raft_uv_transport *t,
                          raft_id from,
                          const void *payload,
                          size_t len)
{
    struct member *m = t->data;
    Goulettefs__PeerNotice *n = NULL;
    int rv;

    if (m->stopping) {
        return;
    }
    rv = notice_unpack(payload, len, &n);
    if (rv != 0) {
        dropped(m, from, len, rv);
        return;
    }
    if (n->n_renewed_brokers > 0) {
        member_liveness_renewed(m, from, n->renewed_brokers,
                                n->n_renewed_brokers);
    }
    for (size_t i = 0; i < n->n_delivered; i++) {
        member_roles_delivered(m, from, n->delivered[i]->topic,
                               n->delivered[i]->digest);
    }
    notice_free(n);
}
