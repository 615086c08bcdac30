/*
 * topology.h — how many CPUs there are and where, from hwloc; and pinning a thread to one.
 */
#ifndef BATON_CORE_TOPOLOGY_H
#define BATON_CORE_TOPOLOGY_H

typedef struct baton__topology baton__topology;

/* Loads the machine's topology and the CPUs this process may run on (cgroup and affinity mask).
 * Returns 0, BATON_ENOMEM or BATON_EIO. */
int baton__topology_load(baton__topology **out_topology);
void baton__topology_free(baton__topology *topology);

/* Number of logical CPUs (hwloc PUs) this process may run on; >= 1. */
unsigned baton__topology_cpus(const baton__topology *topology);

/* Binds the calling thread to the (index % cpus)-th CPU this process may run on. Returns 0,
 * BATON_ENOMEM or BATON_EIO. */
int baton__topology_pin_self(const baton__topology *topology, unsigned index);

#endif /* BATON_CORE_TOPOLOGY_H */
