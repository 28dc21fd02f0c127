/* The member's gRPC port, cluster side (member_rpc.h): ClusterService
 * Status and the membership calls on the leader (raft_uv_node_change,
 * raft_uv_node_transfer), and a joining member's AddMember at start and
 * PromoteMember once it has caught up.  docs/operations.md describes the
 * procedures; tools/member_rpc.c owns the port and Goulette's service. */
#include "member_rpc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

#include "goulettefs.pb-c.h"
#include "member.h"
#include "member_rpc_int.h"

static int members_of(const struct member_rpc *mr,
                      Goulettefs__Member **out,
                      Goulettefs__Member ***ptrs,
                      size_t *n)
{
    const struct member *m = mr->m;
    const struct raft *r = raft_uv_node_raft(m->node);
    struct raft_uv_node_status st;
    unsigned i;

    raft_uv_node_status(m->node, &st);
    *n = st.conf != NULL ? st.conf->n : 0;
    *out = calloc(*n + 1, sizeof **out);
    *ptrs = calloc(*n + 1, sizeof **ptrs);
    if (*out == NULL || *ptrs == NULL) {
        free(*out);
        free(*ptrs);
        return -ENOMEM;
    }
    for (i = 0; i < *n; i++) {
        const struct raft_server *s = &st.conf->servers[i];
        Goulettefs__Member init = GOULETTEFS__MEMBER__INIT;
        Goulettefs__Member *o = &(*out)[i];
        const char *name = member_name_of(m, s->id);
        raft_index match = 0;
        *o = init;
        o->id = s->id;
        o->peer_address = (char *)s->address;
        if (s->id == m->id) {
            o->grpc_address = (char *)mr->grpc_address;
        }
        o->learner = s->role == RAFT_LEARNER;
        o->leader = s->id == st.leader;
        if (raft_progress(r, s->id, &match) == 0) {
            o->match_index = match;
        } else if (s->id == m->id && st.state == RAFT_LEADER) {
            o->match_index = st.last;
        }
        if (name != NULL) {
            o->name = (char *)name;
        }
        (*ptrs)[i] = o;
    }
    return 0;
}

void member_rpc__handle_status(void *data,
                               struct rpc_call *call,
                               const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    struct member *m = mr->m;
    Goulettefs__StatusResponse resp = GOULETTEFS__STATUS_RESPONSE__INIT;
    Goulettefs__Member *members = NULL;
    Goulettefs__Member **ptrs = NULL;
    struct raft_uv_node_status st;
    const char *leader_name;
    size_t n = 0;
    bool nul;
    ProtobufCMessage *req = member_rpc__unpack(
        call, &goulettefs__status_request__descriptor, body, &nul);

    if (req == NULL) {
        return;
    }
    protobuf_c_message_free_unpacked(req, NULL);
    if (member_rpc__node(mr) == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "shutting down");
        return;
    }
    if (members_of(mr, &members, &ptrs, &n) != 0) {
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
        return;
    }
    raft_uv_node_status(m->node, &st);
    resp.member_id = m->id;
    resp.member_name = (char *)m->opts->name;
    resp.state = (char *)raft_state_name(st.state);
    if (st.conf != NULL && raft_configuration_get(st.conf, m->id) != NULL &&
        raft_configuration_get(st.conf, m->id)->role == RAFT_LEARNER) {
        resp.state = "learner";
    }
    resp.leader_id = st.leader;
    leader_name = member_name_of(m, st.leader);
    if (leader_name != NULL) {
        resp.leader_name = (char *)leader_name;
    }
    resp.term = st.term;
    resp.commit_index = st.commit;
    resp.applied_index = st.applied;
    resp.members = ptrs;
    resp.n_members = n;
    resp.serving = member_rpc_serving(m);
    resp.cluster_id = m->cluster_id;
    (void)rpc_call_reply_pb(call, &resp.base);
    free(members);
    free(ptrs);
}

/* ---- ClusterService membership -------------------------------------------
 * Leader only.  A follower answers FAILED_PRECONDITION naming the leader;
 * goulettectl then tries its other endpoints (docs/operations.md). */

/* Answer a membership call with the result @rv and the configuration;
 * @why (may be NULL) replaces goulette_strerror(rv) as the message. */
static void member_reply_why(struct member_rpc *mr,
                             struct rpc_call *call,
                             int rv,
                             const char *why)
{
    Goulettefs__MemberResponse resp = GOULETTEFS__MEMBER_RESPONSE__INIT;
    Goulettefs__Member *members = NULL;
    Goulettefs__Member **ptrs = NULL;
    size_t n = 0;

    resp.success = rv == 0;
    resp.error_code = rv;
    resp.error_message = rv == 0       ? ""
                         : why != NULL ? (char *)why
                                       : (char *)goulette_strerror(rv);
    resp.cluster_id = mr->m->cluster_id;
    if (member_rpc__node(mr) != NULL &&
        members_of(mr, &members, &ptrs, &n) == 0) {
        resp.members = ptrs;
        resp.n_members = n;
    }
    (void)rpc_call_reply_pb(call, &resp.base);
    free(members);
    free(ptrs);
}

static void member_reply(struct member_rpc *mr, struct rpc_call *call, int rv)
{
    member_reply_why(mr, call, rv, NULL);
}

/* Answer a call that reached a member that does not lead. */
static void not_leader(struct member_rpc *mr, struct rpc_call *call)
{
    struct raft_uv_node_status st;
    const struct raft_server *s = NULL;
    const char *name;
    char msg[RAFT_ADDRESS_MAX + OPTIONS_NAME_MAX + 96];

    raft_uv_node_status(mr->m->node, &st);
    if (st.leader == 0) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE,
                            goulette_strerror(GOULETTE_ENOLEADER));
        return;
    }
    if (st.conf != NULL) {
        s = raft_configuration_get(st.conf, st.leader);
    }
    name = member_name_of(mr->m, st.leader);
    snprintf(msg, sizeof msg,
             "not the leader: the leader is %s (id %016llx, peer %s)",
             name != NULL ? name : "unnamed", (unsigned long long)st.leader,
             s != NULL ? s->address : "?");
    (void)rpc_call_fail(call, RPC_STATUS_FAILED_PRECONDITION, msg);
}

static void member_changed(void *arg, int rv, raft_index index)
{
    struct op *op = arg;
    (void)index;
    member_reply(op->mr, op->call, rv);
    member_rpc__op_free(op);
}

/* The member a request names: by name (its id derives from it) or by id. */
static raft_id member_named(const char *name, uint64_t id)
{
    return name != NULL && name[0] != '\0' ? member_id_of(name) : id;
}

/* Run conf change @type for @id on the leader and answer when committed. */
static void change(struct member_rpc *mr,
                   struct rpc_call *call,
                   enum raft_conf_change_type type,
                   raft_id id,
                   const char *address)
{
    struct raft_uv_node *node = member_rpc__node(mr);
    struct op *op;
    int rv;

    if (node == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "shutting down");
        return;
    }
    if (id == 0) {
        (void)rpc_call_fail(call, RPC_STATUS_INVALID_ARGUMENT,
                            "no member named");
        return;
    }
    op = member_rpc__op_new(mr, call, OP_MEMBER);
    if (op == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
        return;
    }
    rv = raft_uv_node_change(node, type, id, address, member_changed, op);
    if (rv == GOULETTE_ENOTLEADER || rv == GOULETTE_ENOLEADER) {
        not_leader(mr, call);
        member_rpc__op_free(op);
    } else if (rv != 0) {
        member_reply(mr, call, rv);
        member_rpc__op_free(op);
    }
}

void member_rpc__handle_add_member(void *data,
                                   struct rpc_call *call,
                                   const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__AddMemberRequest *req;
    bool nul;

    req = (Goulettefs__AddMemberRequest *)member_rpc__unpack(
        call, &goulettefs__add_member_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    if (nul || store_address_check(req->peer_address,
                                   strlen(req->peer_address)) != 0) {
        (void)rpc_call_fail(call, RPC_STATUS_INVALID_ARGUMENT,
                            "peer_address must be host:port");
    } else {
        change(mr, call, RAFT_CONF_ADD_LEARNER,
               member_named(req->name, req->id), req->peer_address);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void member_rpc__handle_promote_member(void *data,
                                       struct rpc_call *call,
                                       const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__PromoteMemberRequest *req;
    bool nul;

    req = (Goulettefs__PromoteMemberRequest *)member_rpc__unpack(
        call, &goulettefs__promote_member_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    change(mr, call, RAFT_CONF_PROMOTE, member_named(req->name, req->id), NULL);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void member_rpc__handle_remove_member(void *data,
                                      struct rpc_call *call,
                                      const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__RemoveMemberRequest *req;
    bool nul;

    req = (Goulettefs__RemoveMemberRequest *)member_rpc__unpack(
        call, &goulettefs__remove_member_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    change(mr, call, RAFT_CONF_REMOVE, member_named(req->name, req->id), NULL);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void member_rpc__handle_transfer(void *data,
                                 struct rpc_call *call,
                                 const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__TransferLeadershipRequest *req;
    struct raft_uv_node *node = member_rpc__node(mr);
    bool nul;
    int rv;

    req = (Goulettefs__TransferLeadershipRequest *)member_rpc__unpack(
        call, &goulettefs__transfer_leadership_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    if (node == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "shutting down");
        goto out;
    }
    rv = raft_uv_node_transfer(node,
                               member_named(req->target_name, req->target_id));
    if (rv == GOULETTE_ENOTLEADER || rv == GOULETTE_ENOLEADER) {
        not_leader(mr, call);
    } else if (rv == GOULETTE_ENOTFOUND) {
        member_reply_why(mr, call, rv,
                         "no such voter: the target is not a member, is "
                         "still a learner, or is the leader itself");
    } else {
        member_reply(mr, call, rv);
    }
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- joining: AddMember at start, PromoteMember once caught up -----------
 * The joiner drives its own promotion (docs/operations.md): it knows when
 * it has applied what it knows to be committed, and the leader needs no
 * policy for learners an operator added on purpose. */

#define JOIN_TIMEOUT_MS 5000
#define JOIN_ATTEMPTS 30
#define PROMOTE_PERIOD_MS 500

struct join_call
{
    bool done;
    enum rpc_status status;
    char message[512];
    Goulettefs__MemberResponse *resp; /* owned when status is OK */
};

static void join_done(void *data,
                      enum rpc_status status,
                      const char *message,
                      const struct goulette_buf *resp)
{
    struct join_call *jc = data;
    jc->done = true;
    jc->status = status;
    snprintf(jc->message, sizeof jc->message, "%s", message);
    if (status == RPC_STATUS_OK) {
        jc->resp =
            goulettefs__member_response__unpack(NULL, resp->len, resp->base);
        if (jc->resp == NULL) {
            jc->status = RPC_STATUS_INTERNAL;
            snprintf(jc->message, sizeof jc->message, "malformed response");
        }
    }
}

static void on_join_client_closed(struct rpc_client *client)
{
    (void)client;
}

/* One AddMember call on a private loop.  @jc is out. */
static int join_once(struct member_rpc *mr, struct join_call *jc)
{
    const struct member *m = mr->m;
    Goulettefs__AddMemberRequest req = GOULETTEFS__ADD_MEMBER_REQUEST__INIT;
    struct rpc_client_config cc;
    struct rpc_client client;
    struct rpc_client_done done = {join_done, jc};
    char peer[OPTIONS_HOST_MAX + 16];
    uv_loop_t loop;
    int rv;

    memset(jc, 0, sizeof *jc);
    member_rpc__hostport(peer, sizeof peer, &m->opts->peer_listen);
    req.id = m->id;
    req.name = (char *)m->opts->name;
    req.peer_address = peer;
    req.grpc_address = mr->grpc_address;
    req.learner = true;
    rv = uv_loop_init(&loop);
    if (rv != 0) {
        return rv;
    }
    memset(&cc, 0, sizeof cc);
    cc.loop = &loop;
    rv = rpc_client_init(&client, &cc);
    if (rv == 0) {
        rv = rpc_client_call_pb(&client, mr->join_address,
                                "/goulettefs.ClusterService/AddMember",
                                &req.base, JOIN_TIMEOUT_MS, &done);
        while (rv == 0 && !jc->done) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        rpc_client_close(&client, on_join_client_closed);
        while (uv_run(&loop, UV_RUN_DEFAULT) != 0) {
        }
    }
    uv_loop_close(&loop);
    return rv;
}

/* Keep the members of @resp, but this one, for the transport. */
static int keep_peers(struct member_rpc *mr,
                      const Goulettefs__MemberResponse *resp)
{
    size_t i;
    mr->join_peers = calloc(resp->n_members + 1, sizeof *mr->join_peers);
    if (mr->join_peers == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < resp->n_members; i++) {
        const Goulettefs__Member *o = resp->members[i];
        struct raft_uv_peer *p = &mr->join_peers[mr->n_join_peers];
        if (o->id == mr->m->id || o->id == 0 ||
            strlen(o->peer_address) >= sizeof p->address) {
            continue;
        }
        p->id = o->id;
        snprintf(p->address, sizeof p->address, "%s", o->peer_address);
        mr->n_join_peers++;
    }
    return 0;
}

int member_rpc_join(struct member *m)
{
    struct member_rpc *mr = member_rpc__alloc(m);
    struct join_call jc;
    int attempt;
    int rv = 0;

    if (mr == NULL) {
        return -ENOMEM;
    }
    member_rpc__hostport(mr->join_address, sizeof mr->join_address,
                         &m->opts->join);
    for (attempt = 0; attempt < JOIN_ATTEMPTS; attempt++) {
        rv = join_once(mr, &jc);
        if (rv != 0 || jc.status != RPC_STATUS_UNAVAILABLE) {
            break;
        }
        goulette_logf(m->log, GOULETTE_LOG_INFO, "raft",
                      "joining through %s: %s; retrying", mr->join_address,
                      jc.message);
        uv_sleep(1000);
    }
    if (rv == 0 && jc.status == RPC_STATUS_FAILED_PRECONDITION) {
        rv = GOULETTE_ENOTLEADER;
    } else if (rv == 0 && jc.status == RPC_STATUS_UNAVAILABLE) {
        rv = GOULETTE_ENOLEADER;
    } else if (rv == 0 && jc.status != RPC_STATUS_OK) {
        rv = -EPROTO;
    } else if (rv == 0 && !jc.resp->success && jc.resp->error_code != -EEXIST) {
        snprintf(jc.message, sizeof jc.message, "%s", jc.resp->error_message);
        rv = jc.resp->error_code < 0 ? jc.resp->error_code : -EPROTO;
    }
    if (rv == 0) {
        m->cluster_id = jc.resp->cluster_id;
        rv = keep_peers(mr, jc.resp);
    }
    if (jc.resp != NULL) {
        goulettefs__member_response__free_unpacked(jc.resp, NULL);
    }
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "cannot join the cluster through %s: %s (%s)",
                      mr->join_address, goulette_strerror(rv), jc.message);
        free(mr->join_peers);
        free(mr);
        return rv;
    }
    goulette_logf(m->log, GOULETTE_LOG_INFO, "raft",
                  "joined cluster %016llx through %s as a learner; %u other "
                  "member(s)",
                  (unsigned long long)m->cluster_id, mr->join_address,
                  mr->n_join_peers);
    m->rpc = mr;
    return 0;
}

static void promote_done(void *data,
                         enum rpc_status status,
                         const char *message,
                         const struct goulette_buf *resp)
{
    struct member_rpc *mr = data;
    Goulettefs__MemberResponse *r = NULL;

    mr->promoting = false;
    if (status == RPC_STATUS_OK) {
        r = goulettefs__member_response__unpack(NULL, resp->len, resp->base);
    }
    if (r != NULL && r->success) {
        goulette_logf(mr->m->log, GOULETTE_LOG_INFO, "raft",
                      "promoted to voter");
    } else if (!mr->stopping) {
        goulette_logf(mr->m->log, GOULETTE_LOG_INFO, "raft",
                      "promotion not done yet: %s",
                      r != NULL ? r->error_message : message);
    }
    if (r != NULL) {
        goulettefs__member_response__free_unpacked(r, NULL);
    }
    member_rpc__maybe_free(mr);
}

static void on_promote_tick(uv_timer_t *t)
{
    struct member_rpc *mr = t->data;
    struct raft_uv_node *node = member_rpc__node(mr);
    Goulettefs__PromoteMemberRequest req =
        GOULETTEFS__PROMOTE_MEMBER_REQUEST__INIT;
    struct rpc_client_done done = {promote_done, mr};
    const struct raft_server *self;
    struct raft_uv_node_status st;

    if (node == NULL || mr->promoting) {
        return;
    }
    raft_uv_node_status(node, &st);
    self = st.conf != NULL ? raft_configuration_get(st.conf, mr->m->id) : NULL;
    if (self != NULL && self->role == RAFT_VOTER) {
        uv_timer_stop(t); /* done: a voter for good */
        return;
    }
    /* Caught up: in the configuration, following a leader, and applied
     * everything known to be committed. */
    if (self == NULL || st.leader == 0 || st.commit == 0 ||
        st.applied < st.commit) {
        return;
    }
    req.id = mr->m->id;
    if (rpc_client_call_pb(&mr->client, mr->join_address,
                           "/goulettefs.ClusterService/PromoteMember",
                           &req.base, JOIN_TIMEOUT_MS, &done) == 0) {
        mr->promoting = true;
    }
}

int member_rpc__start_promoter(struct member_rpc *mr)
{
    struct rpc_client_config cc;
    int rv;

    if (mr->join_address[0] == '\0') {
        member_rpc__hostport(mr->join_address, sizeof mr->join_address,
                             &mr->m->opts->join);
    }
    memset(&cc, 0, sizeof cc);
    cc.loop = mr->m->loop;
    cc.log = mr->m->log;
    rv = rpc_client_init(&mr->client, &cc);
    if (rv != 0) {
        return rv;
    }
    mr->client_open = true;
    rv = uv_timer_init(mr->m->loop, &mr->promote_timer);
    if (rv != 0) {
        return rv;
    }
    mr->promote_timer.data = mr;
    mr->timer_open = true;
    return uv_timer_start(&mr->promote_timer, on_promote_tick,
                          PROMOTE_PERIOD_MS, PROMOTE_PERIOD_MS);
}
