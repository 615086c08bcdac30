/*
 * topology.c — CPU count and thread pinning through hwloc.
 *
 * DESIGN: hwloc 2 removes the CPUs the process's cgroup forbids from the topology; the CPUs it
 * may run on are further limited by its affinity mask (taskset, sched_setaffinity), which hwloc
 * reports as the process's binding. "One worker per CPU" counts the PUs (logical CPUs) in both,
 * and worker i is pinned to the i-th of them. Loading a topology reads sysfs (a millisecond or
 * so), which is why a pool loads it once at creation and frees it when destroyed.
 */
#include <hwloc.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/topology.h"

struct baton__topology {
    hwloc_topology_t topo;
    hwloc_bitmap_t usable; /* PUs this process may run on */
    unsigned cpus;         /* weight of usable, >= 1 */
};

int baton__topology_load(baton__topology **out_topology)
{
    baton__topology *t = baton__malloc(sizeof *t);
    if (t == NULL)
        return baton__error(BATON_ENOMEM, "topology: out of memory");
    if (hwloc_topology_init(&t->topo) != 0) {
        baton__free(t);
        return baton__error(BATON_EIO, "hwloc_topology_init failed");
    }
    if (hwloc_topology_load(t->topo) != 0) {
        hwloc_topology_destroy(t->topo);
        baton__free(t);
        return baton__error(BATON_EIO, "hwloc_topology_load failed");
    }
    t->usable = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t->topo));
    hwloc_bitmap_t bound = hwloc_bitmap_alloc();
    if (t->usable == NULL || bound == NULL) {
        hwloc_bitmap_free(bound);
        hwloc_bitmap_free(t->usable);
        hwloc_topology_destroy(t->topo);
        baton__free(t);
        return baton__error(BATON_ENOMEM, "topology: out of memory");
    }
    /* Restrict to the affinity mask when hwloc can read it; an empty result would mean a mask
     * outside the topology, so keep the allowed set then. */
    if (hwloc_get_cpubind(t->topo, bound, HWLOC_CPUBIND_PROCESS) == 0) {
        hwloc_bitmap_and(bound, bound, t->usable);
        if (!hwloc_bitmap_iszero(bound))
            hwloc_bitmap_copy(t->usable, bound);
    }
    hwloc_bitmap_free(bound);
    int n = hwloc_bitmap_weight(t->usable);
    t->cpus = n > 0 ? (unsigned)n : 1u;
    *out_topology = t;
    return 0;
}

void baton__topology_free(baton__topology *topology)
{
    if (topology == NULL)
        return;
    hwloc_bitmap_free(topology->usable);
    hwloc_topology_destroy(topology->topo);
    baton__free(topology);
}

unsigned baton__topology_cpus(const baton__topology *topology)
{
    return topology->cpus;
}

int baton__topology_pin_self(const baton__topology *topology, unsigned index)
{
    /* The (index % cpus)-th usable PU, by OS index order. */
    unsigned skip = index % topology->cpus;
    int os_index = hwloc_bitmap_first(topology->usable);
    while (skip-- > 0 && os_index >= 0)
        os_index = hwloc_bitmap_next(topology->usable, os_index);
    if (os_index < 0)
        return baton__error(BATON_EIO, "hwloc: no usable logical CPU for worker %u", index);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set == NULL)
        return baton__error(BATON_ENOMEM, "hwloc: out of memory");
    hwloc_bitmap_only(set, (unsigned)os_index);
    int rc = hwloc_set_cpubind(topology->topo, set, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(set);
    if (rc != 0)
        return baton__error(BATON_EIO, "hwloc: could not pin a thread to CPU %d", os_index);
    return 0;
}
