/* goulettectl commands that talk to running members over their gRPC port
 * (goulettefs.ClusterService): status, members, member add|remove|promote,
 * transfer and brokers.  Owns argument parsing and printing; the calls go
 * through ctl_call (tools/ctl_client.c).  docs/operations.md shows them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <goulette/err.h>

#include "ctl.h"
#include "goulette.pb-c.h"
#include "goulettefs.pb-c.h"

#define TRANSFER_WAIT_MS 15000

static int usage(const char *cmd, const char *msg, const char *text)
{
    fprintf(stderr, "goulettectl %s: %s\nusage: goulettectl %s\n", cmd, msg,
            text);
    return 2;
}

static bool wants_help(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return true;
        }
    }
    return false;
}

/* A member's Raft id from its name: FNV-1a 64, as tools/member.c derives
 * it (never 0). */
static uint64_t id_of(const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    const unsigned char *p;
    for (p = (const unsigned char *)name; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h != 0 ? h : 1;
}

/* Report a failed call on stderr; returns the exit status 1. */
static int failed(const char *cmd, const struct ctl_reply *r)
{
    fprintf(stderr, "goulettectl %s: %s: %s\n", cmd, rpc_status_name(r->status),
            r->message);
    return 1;
}

static int call(const char *cmd,
                const char *endpoints,
                const char *method,
                const ProtobufCMessage *req,
                bool leader_only,
                struct ctl_reply *r)
{
    int rv = ctl_call(endpoints, method, req, leader_only, r);
    if (rv != 0) {
        fprintf(stderr, "goulettectl %s: %s\n", cmd, goulette_strerror(rv));
        return 1;
    }
    if (r->status != RPC_STATUS_OK) {
        failed(cmd, r);
        ctl_reply_fini(r);
        return 1;
    }
    return 0;
}

/* Status of the first member that answers; NULL (after a message) on
 * failure.  Free with goulettefs__status_response__free_unpacked. */
static Goulettefs__StatusResponse *status_of(const char *cmd,
                                             const char *endpoints)
{
    Goulettefs__StatusRequest req = GOULETTEFS__STATUS_REQUEST__INIT;
    Goulettefs__StatusResponse *st;
    struct ctl_reply r;

    if (call(cmd, endpoints, "/goulettefs.ClusterService/Status", &req.base,
             false, &r) != 0) {
        return NULL;
    }
    st = goulettefs__status_response__unpack(NULL, r.resp.len, r.resp.base);
    ctl_reply_fini(&r);
    if (st == NULL) {
        fprintf(stderr, "goulettectl %s: malformed Status response\n", cmd);
    }
    return st;
}

static const char *name_or(const char *name, uint64_t id, char *buf)
{
    if (name != NULL && name[0] != '\0') {
        return name;
    }
    snprintf(buf, 24, "%016" PRIx64, id);
    return buf;
}

static void print_members(Goulettefs__Member **members, size_t n)
{
    size_t i;
    printf("%-16s %-16s %-8s %-22s %-22s %s\n", "NAME", "ID", "ROLE", "PEER",
           "GRPC", "MATCH");
    for (i = 0; i < n; i++) {
        const Goulettefs__Member *m = members[i];
        char buf[24];
        printf("%-16s %016" PRIx64 " %-8s %-22s %-22s %" PRIu64 "%s\n",
               name_or(m->name, m->id, buf), m->id,
               m->learner ? "learner" : "voter", m->peer_address,
               m->grpc_address[0] != '\0' ? m->grpc_address : "-",
               m->match_index, m->leader ? "  (leader)" : "");
    }
}

int ctl_status_main(const char *endpoints, int argc, char **argv)
{
    Goulettefs__StatusResponse *st;
    char a[24], b[24];

    if (wants_help(argc, argv) || argc != 1) {
        if (argc != 1 && !wants_help(argc, argv)) {
            return usage("status", "takes no argument", "status");
        }
        printf("usage: goulettectl [--endpoints HOST:PORT,...] status\n");
        return 0;
    }
    st = status_of("status", endpoints);
    if (st == NULL) {
        return 1;
    }
    printf("member:        %s (%016" PRIx64 ")\n",
           name_or(st->member_name, st->member_id, a), st->member_id);
    printf("state:         %s\n", st->state);
    if (st->leader_id != 0) {
        printf("leader:        %s (%016" PRIx64 ")\n",
               name_or(st->leader_name, st->leader_id, b), st->leader_id);
    } else {
        printf("leader:        none\n");
    }
    printf("term:          %" PRIu64 "\n", st->term);
    printf("commit_index:  %" PRIu64 "\n", st->commit_index);
    printf("applied_index: %" PRIu64 "\n", st->applied_index);
    printf("serving:       %s\n", st->serving ? "yes" : "no");
    printf("cluster_id:    %016" PRIx64 "\n", st->cluster_id);
    printf("members:       %zu\n", st->n_members);
    goulettefs__status_response__free_unpacked(st, NULL);
    return 0;
}

int ctl_members_main(const char *endpoints, int argc, char **argv)
{
    Goulettefs__StatusResponse *st;

    if (wants_help(argc, argv)) {
        printf("usage: goulettectl [--endpoints HOST:PORT,...] members\n");
        return 0;
    }
    if (argc != 1) {
        return usage("members", "takes no argument", "members");
    }
    st = status_of("members", endpoints);
    if (st == NULL) {
        return 1;
    }
    print_members(st->members, st->n_members);
    goulettefs__status_response__free_unpacked(st, NULL);
    return 0;
}

/* Run a membership RPC on the leader and print the configuration after. */
static int membership(const char *endpoints,
                      const char *method,
                      const ProtobufCMessage *req)
{
    Goulettefs__MemberResponse *resp;
    struct ctl_reply r;
    int rv = 0;

    if (call("member", endpoints, method, req, true, &r) != 0) {
        return 1;
    }
    resp = goulettefs__member_response__unpack(NULL, r.resp.len, r.resp.base);
    ctl_reply_fini(&r);
    if (resp == NULL) {
        fprintf(stderr, "goulettectl member: malformed response\n");
        return 1;
    }
    if (!resp->success) {
        fprintf(stderr, "goulettectl member: %s\n", resp->error_message);
        rv = 1;
    } else {
        print_members(resp->members, resp->n_members);
    }
    goulettefs__member_response__free_unpacked(resp, NULL);
    return rv;
}

#define MEMBER_USAGE                                    \
    "member add NAME PEER_HOST:PORT [GRPC_HOST:PORT]\n" \
    "       goulettectl member promote NAME\n"          \
    "       goulettectl member remove NAME"

int ctl_member_main(const char *endpoints, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: goulettectl [--endpoints HOST:PORT,...] " MEMBER_USAGE
               "\n");
        return 0;
    }
    if (argc < 3) {
        return usage("member", "missing arguments", MEMBER_USAGE);
    }
    if (strcmp(argv[1], "add") == 0) {
        Goulettefs__AddMemberRequest req = GOULETTEFS__ADD_MEMBER_REQUEST__INIT;
        if (argc != 4 && argc != 5) {
            return usage("member", "add takes NAME PEER [GRPC]", MEMBER_USAGE);
        }
        req.name = argv[2];
        req.id = id_of(argv[2]);
        req.peer_address = argv[3];
        if (argc == 5) {
            req.grpc_address = argv[4];
        }
        req.learner = true;
        return membership(endpoints, "/goulettefs.ClusterService/AddMember",
                          &req.base);
    }
    if (argc != 3) {
        return usage("member", "too many arguments", MEMBER_USAGE);
    }
    if (strcmp(argv[1], "promote") == 0) {
        Goulettefs__PromoteMemberRequest req =
            GOULETTEFS__PROMOTE_MEMBER_REQUEST__INIT;
        req.name = argv[2];
        return membership(endpoints, "/goulettefs.ClusterService/PromoteMember",
                          &req.base);
    }
    if (strcmp(argv[1], "remove") == 0) {
        Goulettefs__RemoveMemberRequest req =
            GOULETTEFS__REMOVE_MEMBER_REQUEST__INIT;
        req.name = argv[2];
        return membership(endpoints, "/goulettefs.ClusterService/RemoveMember",
                          &req.base);
    }
    return usage("member", "unknown action", MEMBER_USAGE);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int ctl_transfer_main(const char *endpoints, int argc, char **argv)
{
    Goulettefs__TransferLeadershipRequest req =
        GOULETTEFS__TRANSFER_LEADERSHIP_REQUEST__INIT;
    Goulettefs__MemberResponse *resp;
    struct ctl_reply r;
    uint64_t target;
    long waited;

    if (wants_help(argc, argv)) {
        printf(
            "usage: goulettectl [--endpoints HOST:PORT,...] transfer "
            "NAME\n");
        return 0;
    }
    if (argc != 2) {
        return usage("transfer", "takes one member NAME", "transfer NAME");
    }
    req.target_name = argv[1];
    target = id_of(argv[1]);
    if (call("transfer", endpoints,
             "/goulettefs.ClusterService/TransferLeadership", &req.base, true,
             &r) != 0) {
        return 1;
    }
    resp = goulettefs__member_response__unpack(NULL, r.resp.len, r.resp.base);
    ctl_reply_fini(&r);
    if (resp == NULL || !resp->success) {
        fprintf(stderr, "goulettectl transfer: %s\n",
                resp != NULL ? resp->error_message : "malformed response");
        if (resp != NULL) {
            goulettefs__member_response__free_unpacked(resp, NULL);
        }
        return 1;
    }
    goulettefs__member_response__free_unpacked(resp, NULL);
    /* The transfer has started; wait until a member names the target. */
    for (waited = 0; waited < TRANSFER_WAIT_MS; waited += 200) {
        Goulettefs__StatusResponse *st = status_of("transfer", endpoints);
        bool done = st != NULL && st->leader_id == target;
        if (st != NULL) {
            goulettefs__status_response__free_unpacked(st, NULL);
        }
        if (done) {
            printf("%s leads\n", argv[1]);
            return 0;
        }
        sleep_ms(200);
    }
    fprintf(stderr,
            "goulettectl transfer: %s was not leading after %d s (the "
            "transfer may have timed out)\n",
            argv[1], TRANSFER_WAIT_MS / 1000);
    return 1;
}

static const char *status_name(Goulette__BrokerStatus s)
{
    switch (s) {
    case GOULETTE__BROKER_STATUS__BROKER_STATUS_HEALTHY:
        return "healthy";
    case GOULETTE__BROKER_STATUS__BROKER_STATUS_SUSPICIOUS:
        return "suspicious";
    case GOULETTE__BROKER_STATUS__BROKER_STATUS_DOWN:
        return "down";
    default:
        return "unspecified";
    }
}

#define BROKERS_USAGE "brokers [--replicas N] TOPIC"

int ctl_brokers_main(const char *endpoints, int argc, char **argv)
{
    Goulettefs__GetBrokersRequest req = GOULETTEFS__GET_BROKERS_REQUEST__INIT;
    Goulettefs__GetBrokersResponse *resp;
    struct ctl_reply r;
    int i = 1;
    size_t k;

    if (wants_help(argc, argv)) {
        printf("usage: goulettectl [--endpoints HOST:PORT,...] " BROKERS_USAGE
               "\n");
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--replicas") == 0) {
        char *end;
        unsigned long n = strtoul(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || n == 0 || n > 1024) {
            return usage("brokers", "--replicas takes 1..1024", BROKERS_USAGE);
        }
        req.replica_count = (uint32_t)n;
        i = 3;
    }
    if (argc != i + 1) {
        return usage("brokers", "takes one TOPIC", BROKERS_USAGE);
    }
    req.topic = argv[i];
    if (call("brokers", endpoints, "/goulettefs.ClusterService/GetBrokers",
             &req.base, false, &r) != 0) {
        return 1;
    }
    resp =
        goulettefs__get_brokers_response__unpack(NULL, r.resp.len, r.resp.base);
    ctl_reply_fini(&r);
    if (resp == NULL) {
        fprintf(stderr, "goulettectl brokers: malformed response\n");
        return 1;
    }
    printf("topic %s version %" PRIu64 " replica_count %u\n", resp->topic,
           resp->version, resp->replica_count);
    for (k = 0; k < resp->n_brokers; k++) {
        const Goulette__BrokerInfo *b = resp->brokers[k];
        printf("%-8s %-24s %-24s %s\n", k == 0 ? "leader" : "follower",
               b->broker_id, b->address, status_name(b->status));
    }
    goulettefs__get_brokers_response__free_unpacked(resp, NULL);
    return 0;
}
