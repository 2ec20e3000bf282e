/*
 * libnn communication plugin ABI: what a multi-process transport exports.
 *
 * A communication plugin is a shared object (libnn-comm-NAME.so, today only
 * libnn-comm-mpi.so) found like the backends (nn.h, "Devices") and loaded the first time a
 * fit asks for multi-process training. It exports exactly one symbol,
 * NN_COMM_ENTRY_SYMBOL, of type ::nn_comm_entry_fn, which receives the host's services
 * (nn_backend.h: error text, log) and returns a static table. libnn itself never links
 * the transport's library (libmpi): only the plugin does, so a machine without it loses
 * multi-process training and nothing else.
 *
 * Rules: the table starts with its version and size and is only appended to; every
 * function of version 1 is required; every fallible function returns 0 on success or
 * non-zero after calling the host's set_error with what went wrong; no call may block
 * longer than its timeout (a failed or killed peer is an error, not a hang); nothing
 * prints, exits or aborts.
 */
#ifndef NN_NN_COMM_H
#define NN_NN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "nn/nn_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bumped whenever a change is not a pure append. */
#define NN_COMM_ABI_VERSION 1
/** The one symbol a communication plugin exports. */
#define NN_COMM_ENTRY_SYMBOL "nn_comm_entry"

/** Element types of ::nn_comm_iface::allreduce_sum (the values of nn.h's nn_dtype). */
#define NN_COMM_FLOAT32 0u
#define NN_COMM_FLOAT64 1u

/** The function table a communication plugin returns. */
typedef struct nn_comm_iface {
    uint32_t abi_version; /**< NN_COMM_ABI_VERSION the plugin was built with. */
    uint32_t struct_size; /**< sizeof(nn_comm_iface) of the plugin. */
    const char *name;     /**< Short name: "mpi". */

    /** Joins the process group (once; later calls return the same answer). Returns 0 and
     *  this process's rank and the group's size, or non-zero with the reason in `why`
     *  ("not launched under mpirun", "MPI_Init_thread failed: …"): a process that was not
     *  started by the transport's launcher must get that answer, not a hang or a
     *  one-process group. Thread-safe. */
    int (*open)(int *out_rank, int *out_size, char *why, size_t why_capacity);

    /** Replaces `buf` (`count` elements of `dtype`) on every rank with its element-wise
     *  sum over all ranks, in one collective call. The result is bit-identical on every
     *  rank and from run to run for the same inputs. */
    int (*allreduce_sum)(void *buf, size_t count, uint32_t dtype, double timeout_seconds);

    /** Copies `bytes` bytes at `buf` from rank `root` to every other rank. */
    int (*broadcast)(void *buf, size_t bytes, int root, double timeout_seconds);

    /** Returns when every rank has called it, or fails after the timeout. */
    int (*barrier)(double timeout_seconds);
} nn_comm_iface;

/** Type of the exported entry symbol. Returns NULL if the plugin cannot serve this host
 *  (after calling host->set_error). */
typedef const nn_comm_iface *(*nn_comm_entry_fn)(const nn_host_services *host);

#ifdef __cplusplus
}
#endif

#endif /* NN_NN_COMM_H */
