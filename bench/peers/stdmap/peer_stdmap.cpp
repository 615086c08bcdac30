/*
 * peer_stdmap.cpp — the serial_ordered_map contender of `baton-bench store`: the serial
 * starting point, a monolithic ordered map from entity id to payload (C++'s std::map, a
 * red-black tree with one node per entity), iterated in id order on one thread every tick. Each entity is stepped by the motion kernel the other
 * contenders use (src/store/motion_kernel.h, one payload per call), so what differs is only the
 * data structure.
 *
 * Protocol (bench/peers/peer_common.h's, one case):
 *
 *     baton-peer-stdmap motion 1 ENTITIES TICKS
 *
 * Builds the map of entities 0 .. ENTITIES-1 (motion_init_entity; not timed), runs TICKS ticks
 * and prints `time_s=<seconds of the ticks> check=<motion_checksum of the final payloads in id
 * order>`. WORKERS must be 1: the map is serial by nature.
 */
#include "../peer_common.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "store/motion_kernel.h"

namespace {

const char *const prog = "baton-peer-stdmap";

struct payload {
    unsigned char bytes[MOTION_PAYLOAD_BYTES];
};

int usage(const char *why)
{
    std::fprintf(stderr,
                 "%s: %s\n"
                 "usage: %s motion 1 ENTITIES TICKS\n",
                 prog, why, prog);
    return PEER_EXIT_USAGE;
}

int run_motion(uint64_t entities, uint64_t ticks)
{
    std::map<uint64_t, payload> world;
    payload p;
    // Ids arrive in order, as a loader would insert them; the hint makes each insert O(1).
    for (uint64_t id = 0; id < entities; id++) {
        motion_init_entity(p.bytes, id);
        world.emplace_hint(world.end(), id, p);
    }

    uint64_t t0 = peer_now_ns();
    for (uint64_t t = 0; t < ticks; t++)
        for (auto &entry : world)
            baton__motion_step_block(entry.second.bytes, 1);
    uint64_t t1 = peer_now_ns();

    // The checksum of the flat serial contender is over payloads in id order: the map's order.
    std::vector<unsigned char> flat;
    flat.reserve(static_cast<size_t>(entities) * MOTION_PAYLOAD_BYTES);
    for (const auto &entry : world)
        flat.insert(flat.end(), entry.second.bytes, entry.second.bytes + MOTION_PAYLOAD_BYTES);
    if (world.size() != entities) {
        std::fprintf(stderr, "%s: the map holds %zu entities, expected %" PRIu64 "\n", prog,
                     world.size(), entities);
        return PEER_EXIT_WRONG;
    }
    peer_print_result(static_cast<double>(t1 - t0) / 1e9,
                      motion_checksum(flat.data(), static_cast<size_t>(entities)));
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    uint64_t workers, entities, ticks;
    if (argc != 5)
        return usage("wrong number of arguments");
    if (std::strcmp(argv[1], "motion") != 0)
        return usage("unknown case (this peer runs motion only)");
    if (peer_parse_u64(argv[2], 1, 1, &workers) != 0)
        return usage("WORKERS must be 1: the ordered map is the serial baseline");
    if (peer_parse_u64(argv[3], 1, PEER_MAX_ENTITIES, &entities) != 0)
        return usage("ENTITIES must be an integer from 1 to 2^36");
    if (peer_parse_u64(argv[4], 1, UINT32_MAX, &ticks) != 0)
        return usage("TICKS must be an integer from 1 to 2^32-1");
    return run_motion(entities, ticks);
}
