/*
 * crew.h — a fixed set of threads that each run their share of a job when told to: the
 * dedicated executors of BATON_STORE_DEDICATED. Member i is the same thread for the crew's life
 * and receives its commands through its own single-producer ring, so the store's shards keep
 * one owner each: one queue per executor thread (per CPU when BATON_STORE_PIN_EXECUTORS pins
 * them).
 *
 * One thread (the store's driver) gives commands; baton__crew_run is not reentrant.
 */
#ifndef BATON_STORE_CREW_H
#define BATON_STORE_CREW_H

#include <stdbool.h>

typedef struct baton__crew baton__crew;

/* Starts n member threads named "<name>-<i>", pinned to CPU i when pin is true. Returns 0,
 * BATON_ENOMEM or BATON_ETHREAD (then no thread is left running). */
int baton__crew_create(unsigned n, const char *name, bool pin, baton__crew **out);

/* Stops and joins the members. NULL is ignored. */
void baton__crew_destroy(baton__crew *crew);

unsigned baton__crew_size(const baton__crew *crew);

/* Runs fn(member, arg) on every member at once and returns when all have returned. Everything
 * the caller wrote before is visible to fn, and everything fn wrote is visible after. */
void baton__crew_run(baton__crew *crew, void (*fn)(unsigned member, void *arg), void *arg);

#endif /* BATON_STORE_CREW_H */
