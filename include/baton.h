/*
 * baton.h — the whole library. Each layer has its own header under baton/ and uses only the
 * layers below it: core -> pool -> queue -> store -> graph -> space -> engine.
 */
#ifndef BATON_H
#define BATON_H

#include "baton/core.h"
#include "baton/pool.h"
#include "baton/queue.h"
#include "baton/store.h"
#include "baton/graph.h"
#include "baton/space.h"
#include "baton/engine.h"

#endif /* BATON_H */
