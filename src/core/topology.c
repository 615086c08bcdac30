/*
 * topology.c — CPU count and thread pinning through hwloc.
 *
 * DESIGN: hwloc 2 removes the CPUs this process may not use from the topology by default, so the
 * number of PUs (logical CPUs) is the number of workers "one per CPU" should start, and PU i is
 * where worker i is pinned. Loading a topology reads sysfs (a millisecond or so), which is why a
 * pool loads it once at creation and frees it when destroyed.
 */
#include <hwloc.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/topology.h"

struct baton__topology {
    hwloc_topology_t topo;
    unsigned cpus;
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
    int n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
    t->cpus = n > 0 ? (unsigned)n : 1u;
    *out_topology = t;
    return 0;
}

void baton__topology_free(baton__topology *topology)
{
    if (topology == NULL)
        return;
    hwloc_topology_destroy(topology->topo);
    baton__free(topology);
}

unsigned baton__topology_cpus(const baton__topology *topology)
{
    return topology->cpus;
}

int baton__topology_pin_self(const baton__topology *topology, unsigned index)
{
    hwloc_obj_t pu = hwloc_get_obj_by_type(topology->topo, HWLOC_OBJ_PU,
                                           index % topology->cpus);
    if (pu == NULL)
        return baton__error(BATON_EIO, "hwloc: no logical CPU %u", index % topology->cpus);
    if (hwloc_set_cpubind(topology->topo, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
        return baton__error(BATON_EIO, "hwloc: could not pin a thread to logical CPU %u",
                            pu->logical_index);
    return 0;
}
