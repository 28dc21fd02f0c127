/* `goulettectl ring`: the offline placement what-if tool.  Builds a ring of
 * the given brokers exactly as the sentinel does (store/ring.c) and prints
 * each topic's distinct brokers in ring order.  No daemon, no store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/ring.h"

#include "ctl.h"

#define USAGE \
    "usage: goulettectl ring --brokers ID,ID,... [--vnodes N] TOPIC..."

static int usage(const char *msg)
{
    fprintf(stderr, "goulettectl ring: %s\n%s\n", msg, USAGE);
    return 2;
}

/* "--name=value" or "--name value": the value of option @name at argv[*i],
 * advancing *i past what it used; NULL when argv[*i] is not that option;
 * *missing set when the option has no value. */
static const char *option(int argc,
                          char **argv,
                          int *i,
                          const char *name,
                          int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *missing = 0;
    if (strncmp(a, name, n) != 0) {
        return NULL;
    }
    if (a[n] == '=') {
        (*i)++;
        return a + n + 1;
    }
    if (a[n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = 1;
        (*i)++;
        return NULL;
    }
    *i += 2;
    return argv[*i - 1];
}

static int parse_vnodes(const char *s, unsigned *out)
{
    unsigned long v = 0;
    if (*s == '\0') {
        return -EINVAL;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -EINVAL;
        }
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > STORE_RING_VNODES_MAX) {
            return -EINVAL;
        }
    }
    if (v == 0) {
        return -EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

/* Add every id of the comma-separated @list (copied) to @ring.  Returns 0,
 * -EINVAL for an empty id, -EEXIST for a repeated one, -ENOMEM. */
static int add_brokers(struct store_ring *ring, const char *list)
{
    char *copy = strdup(list);
    char *p = copy;
    uint64_t rank = 0;
    int rv = 0;

    if (copy == NULL) {
        return -ENOMEM;
    }
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL) {
            *comma = '\0';
        }
        if (*p == '\0') {
            rv = -EINVAL;
            break;
        }
        /* Go adds brokers in registration order; the last added wins a
         * shared point, which is what a higher rank means here. */
        rv = store_ring_add(ring, p, ++rank);
        if (rv != 0 || comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    free(copy);
    return rv;
}

/* Print "TOPIC: ID ID ..." in ring order, as placement would walk it:
 * stopping at the end or at Go's wrap error (whose node is dropped). */
static int print_topic(struct store_ring *ring, const char *topic)
{
    struct store_ring_iter it;
    const char *id;
    int rv = store_ring_iter_init(&it, ring, topic, strlen(topic));
    if (rv != 0) {
        return rv;
    }
    printf("%s:", topic);
    while (store_ring_iter_next(&it, &id) == 0 && id != NULL) {
        printf(" %s", id);
    }
    printf("\n");
    store_ring_iter_fini(&it);
    return 0;
}

int ctl_ring_main(int argc, char **argv)
{
    struct store_ring ring;
    const char *brokers = NULL;
    const char *vnodes_arg = NULL;
    unsigned vnodes = STORE_RING_VNODES;
    int first_topic = -1;
    int rv;
    int i = 1;

    while (i < argc) {
        const char *v;
        int missing;
        if (strcmp(argv[i], "--") == 0) {
            first_topic = i + 1;
            break;
        }
        if ((v = option(argc, argv, &i, "--brokers", &missing)) != NULL ||
            missing) {
            if (missing) {
                return usage("--brokers needs a value");
            }
            brokers = v;
            continue;
        }
        if ((v = option(argc, argv, &i, "--vnodes", &missing)) != NULL ||
            missing) {
            if (missing) {
                return usage("--vnodes needs a value");
            }
            vnodes_arg = v;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "goulettectl ring: unknown option %s\n%s\n",
                    argv[i], USAGE);
            return 2;
        }
        first_topic = i;
        break;
    }
    if (brokers == NULL || brokers[0] == '\0') {
        return usage("--brokers is required and must not be empty");
    }
    if (vnodes_arg != NULL && parse_vnodes(vnodes_arg, &vnodes) != 0) {
        return usage("--vnodes must be a whole number from 1 to 100000");
    }
    if (first_topic < 0 || first_topic >= argc) {
        return usage("no topic given");
    }
    store_ring_init(&ring, vnodes);
    rv = add_brokers(&ring, brokers);
    if (rv == -EINVAL || rv == -EEXIST) {
        store_ring_fini(&ring);
        return usage(rv == -EINVAL ? "empty broker id in --brokers"
                                   : "repeated broker id in --brokers");
    }
    for (int t = first_topic; rv == 0 && t < argc; t++) {
        rv = print_topic(&ring, argv[t]);
    }
    store_ring_fini(&ring);
    if (rv != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "goulettectl ring: %s\n",
                strerror(rv != 0 ? -rv : errno));
        return 1;
    }
    return 0;
}
