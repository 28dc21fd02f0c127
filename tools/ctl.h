/* goulettectl subcommands: each lives in tools/ctl_<name>.c and is
 * dispatched by tools/goulettectl.c.  Each returns the process exit status:
 * 0 on success, 1 on failure, 2 on a usage error (after printing a one-line
 * error and its usage to stderr). */
#ifndef GOULETTE_TOOLS_CTL_H
#define GOULETTE_TOOLS_CTL_H

/* `goulettectl ring --brokers ID,ID,... [--vnodes N] TOPIC...`: the offline
 * placement what-if tool (tools/ctl_ring.c).  @argv[0] is "ring". */
int ctl_ring_main(int argc, char **argv);

#endif /* GOULETTE_TOOLS_CTL_H */
