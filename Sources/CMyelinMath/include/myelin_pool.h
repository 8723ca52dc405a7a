#ifndef MYELIN_POOL_H
#define MYELIN_POOL_H

/// One part of a job on the pool: `body(context, index, parts)` for index in [0, parts).
typedef void (*myelin_pool_body)(void *context, long index, long parts);

/// Runs `body` for every part index in [0, parts) on the CPU device's thread pool: the caller and the pool's workers
/// claim the parts as they come (at least `parts` - 1 workers, started when first needed and kept; after a job they
/// spin for 100 µs, yielding, before they sleep, so that back-to-back jobs, the products and loops of a training
/// step, start without a wake-up). Returns after every part has finished: 1 when it ran the job, 0 when it ran
/// nothing (the pool is busy with another caller's job, such as a job started from inside a part, a worker could
/// not be started, or this platform has no pool): the caller then splits the work itself.
int myelin_pool_run(int parts, myelin_pool_body body, void *context);

#endif
