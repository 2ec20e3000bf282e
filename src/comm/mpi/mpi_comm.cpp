// libnn-comm-mpi.so: the communication plugin (include/nn/nn_comm.h) over MPI.
//
// libnn never links MPI; this plugin does. It joins the job that mpirun started, keeps
// its own duplicate of MPI_COMM_WORLD (so an application's own MPI traffic never mixes
// with ours), and runs every collective as nonblocking requests polled until they finish
// or the caller's timeout passes: a killed or stuck peer becomes an error, never a hang.
//
// The sum is ours, not MPI's reduction: a ring reduce-scatter then a ring all-gather over
// point-to-point messages. Every element's total is computed once, on one process, in an
// order fixed by the number of processes alone (chunk c: x_c + x_{c+1} + … + x_{c-1}),
// then copied to the others. So the result is bit-identical on every process and from
// run to run by construction, whatever algorithm, tuning file or MPI implementation the
// machine has (the MPI standard asks for identical results on all processes, but
// implementations have shipped allreduce algorithms that broke it, and the order MPI_SUM
// uses is theirs to change), and it moves 2(P-1)/P of the buffer per process, as the
// bandwidth-optimal allreduce does.
//
// After a collective fails or times out the communicator is unusable (the peers are at
// different points of the protocol): every later call fails at once with the first error,
// and at exit MPI_Finalize is skipped, because Open MPI's finalize waits for every
// process (a stopped peer would hang it) and would progress the abandoned requests.

#include <dlfcn.h>
#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "nn/nn_comm.h"

namespace {

const nn_host_services *g_host = nullptr;

// Every call into MPI happens under this lock: nn_fit may run on any thread, and we ask
// MPI for MPI_THREAD_SERIALIZED only.
std::mutex g_mutex;

struct State {
    bool opened = false;        // open() has run (its answer is below)
    int open_rc = 1;
    std::string open_why;
    int rank = 0, size = 1;
    MPI_Comm comm = MPI_COMM_NULL;
    bool we_initialized = false;  // we called MPI_Init_thread, so we finalize
    std::string broken;           // the first failure; non-empty: every call fails fast
    std::vector<MPI_Request> pending;      // requests of the operation in flight
    std::vector<MPI_Request> receives;     // those of them that write into a caller's buffer
    std::vector<MPI_Status> statuses;      // their statuses, for the error of a failed one
    std::vector<unsigned char> scratch;    // receive buffer of the reduce-scatter
    std::vector<unsigned char> staging;    // what a broadcast sends or receives
};
// Never destroyed: the exit handler uses it after static destructors may have run.
State &st = *new State;

void set_error(const std::string &message) {
    if (g_host && g_host->set_error) g_host->set_error(message.c_str());
}

void log_line(int level, const std::string &message) {
    if (g_host && g_host->log) g_host->log(level, message.c_str());
}

double now_seconds() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

// (std::to_string would export a libstdc++ table from the plugin: the ABI test wants
// nn_comm_entry alone.)
std::string int_text(long long v) {
    char text[32];
    std::snprintf(text, sizeof text, "%lld", v);
    return text;
}

std::string mpi_error_text(int code) {
    char text[MPI_MAX_ERROR_STRING + 1] = {0};
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + int_text(code);
    text[std::clamp(len, 0, MPI_MAX_ERROR_STRING)] = '\0';
    return text;
}

std::string seconds_text(double s) {
    char text[64];
    std::snprintf(text, sizeof text, "%g", s);
    return text;
}

// Records the first failure and makes the communicator unusable from now on.
int fail(const std::string &what) {
    if (st.broken.empty()) {
        st.broken = what;
        // An application that initialised MPI itself keeps progressing MPI after we give
        // up: take back the receives into the caller's buffer (the all-gather's), so they
        // cannot write there later. Everything else in flight writes only into our own
        // buffers, which are never freed. (When we own MPI, nothing progresses again: we
        // make no more calls.)
        if (!st.we_initialized)
            for (MPI_Request &r : st.receives)
                if (r != MPI_REQUEST_NULL) MPI_Cancel(&r);
        st.pending.clear();  // abandoned, never waited for or freed
        st.receives.clear();
    }
    set_error("MPI: " + what);
    return 1;
}

int fail_mpi(const char *call, int code) { return fail(std::string(call) + " failed: " + mpi_error_text(code)); }

int check_usable() {
    if (!st.opened || st.open_rc != 0) {
        set_error("MPI: the process group is not open" + (st.open_why.empty() ? "" : ": " + st.open_why));
        return 1;
    }
    if (!st.broken.empty()) {
        set_error("MPI: unusable after an earlier failure: " + st.broken);
        return 1;
    }
    return 0;
}

// A collective's time limit: `timeout` seconds from its start, however many message
// rounds it takes.
struct Deadline {
    double timeout, at;
    explicit Deadline(double seconds) : timeout(seconds), at(now_seconds() + seconds) {}
};

// Polls st.pending until all complete or the deadline passes. Spins briefly, then yields
// the processor between polls and, in a long wait, sleeps: a process waiting for a slower
// peer must not take the core that peer (on an oversubscribed machine) needs.
int wait_pending(const Deadline &deadline, const char *what) {
    const double start = now_seconds();
    for (;;) {
        int done = 0;
        st.statuses.resize(st.pending.size());
        int rc = MPI_Testall(int(st.pending.size()), st.pending.data(), &done, st.statuses.data());
        if (rc == MPI_ERR_IN_STATUS) {  // the request's own error says more ("message truncated")
            for (const MPI_Status &status : st.statuses)
                if (status.MPI_ERROR != MPI_SUCCESS && status.MPI_ERROR != MPI_ERR_PENDING) {
                    rc = status.MPI_ERROR;
                    break;
                }
        }
        if (rc != MPI_SUCCESS) return fail_mpi(what, rc);
        if (done) {
            st.pending.clear();
            st.receives.clear();
            return 0;
        }
        const double t = now_seconds();
        if (t >= deadline.at)
            return fail(std::string(what) + ": no answer from the other processes within " +
                        seconds_text(deadline.timeout) + " s (a process failed or is stuck)");
        const double waited = t - start;
        if (waited < 50e-6) continue;
        if (waited < 10e-3) {
            sched_yield();
        } else {
            const timespec nap{0, 100000};  // 0.1 ms
            nanosleep(&nap, nullptr);
        }
    }
}

// MPI counts are ints: a long message travels as several, which MPI keeps in order.
constexpr size_t kMaxPiece = size_t(1) << 30;

int post_send(const void *buf, size_t count, MPI_Datatype type, size_t elem, int dest, int tag) {
    const char *p = static_cast<const char *>(buf);
    do {
        const size_t n = std::min(count, kMaxPiece);
        MPI_Request r = MPI_REQUEST_NULL;
        int rc = MPI_Isend(p, int(n), type, dest, tag, st.comm, &r);
        if (rc != MPI_SUCCESS) return fail_mpi("MPI_Isend", rc);
        st.pending.push_back(r);
        p += n * elem;
        count -= n;
    } while (count > 0);
    return 0;
}

// `callers`: the buffer is the caller's (not ours), so a failure must take the receive back.
int post_recv(void *buf, size_t count, MPI_Datatype type, size_t elem, int source, int tag, bool callers) {
    char *p = static_cast<char *>(buf);
    do {
        const size_t n = std::min(count, kMaxPiece);
        MPI_Request r = MPI_REQUEST_NULL;
        int rc = MPI_Irecv(p, int(n), type, source, tag, st.comm, &r);
        if (rc != MPI_SUCCESS) return fail_mpi("MPI_Irecv", rc);
        st.pending.push_back(r);
        if (callers) st.receives.push_back(r);
        p += n * elem;
        count -= n;
    } while (count > 0);
    return 0;
}

// Chunk c of n elements split over p processes: [begin(c), begin(c + 1)).
size_t chunk_begin(size_t n, size_t p, size_t c) { return (n / p) * c + std::min(c, n % p); }

constexpr int kTagReduceScatter = 1;
constexpr int kTagAllGather = 2;

template <typename T>
int ring_allreduce(T *buf, size_t n, MPI_Datatype type, const Deadline &deadline) {
    const size_t p = size_t(st.size), r = size_t(st.rank);
    const int next = int((r + 1) % p), prev = int((r + p - 1) % p);
    const size_t max_chunk = n / p + (n % p ? 1 : 0);
    if (st.scratch.size() < max_chunk * sizeof(T)) st.scratch.resize(max_chunk * sizeof(T));
    T *incoming = reinterpret_cast<T *>(st.scratch.data());
    auto begin = [&](size_t c) { return chunk_begin(n, p, c % p); };
    auto length = [&](size_t c) { return chunk_begin(n, p, c % p + 1) - chunk_begin(n, p, c % p); };

    // Reduce-scatter: at step s, send chunk r - s (our running total of it) to the next
    // process and add the previous one's total of chunk r - s - 1 to ours. After P - 1
    // steps, chunk r + 1 is complete here.
    for (size_t s = 0; s + 1 < p; ++s) {
        const size_t send_c = (r + p - s) % p, recv_c = (r + 2 * p - s - 1) % p;
        if (post_recv(incoming, length(recv_c), type, sizeof(T), prev, kTagReduceScatter, false) ||
            post_send(buf + begin(send_c), length(send_c), type, sizeof(T), next, kTagReduceScatter) ||
            wait_pending(deadline, "all-reduce"))
            return 1;
        T *mine = buf + begin(recv_c);
        const size_t len = length(recv_c);
        for (size_t i = 0; i < len; ++i) mine[i] = incoming[i] + mine[i];
    }
    // All-gather: pass the complete chunks around the ring, each copied unchanged.
    for (size_t s = 0; s + 1 < p; ++s) {
        const size_t send_c = (r + 1 + p - s) % p, recv_c = (r + p - s) % p;
        if (post_recv(buf + begin(recv_c), length(recv_c), type, sizeof(T), prev, kTagAllGather, true) ||
            post_send(buf + begin(send_c), length(send_c), type, sizeof(T), next, kTagAllGather) ||
            wait_pending(deadline, "all-reduce"))
            return 1;
    }
    return 0;
}

bool valid_timeout(double t) { return std::isfinite(t) && t > 0; }

// ---- the table ----

int comm_allreduce_sum_impl(void *buf, size_t count, uint32_t dtype, double timeout_seconds) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (check_usable()) return 1;
    if (dtype != NN_COMM_FLOAT32 && dtype != NN_COMM_FLOAT64) {
        set_error("MPI: all-reduce of unknown element type " + int_text(dtype));
        return 1;
    }
    if (!valid_timeout(timeout_seconds)) {
        set_error("MPI: the timeout must be a positive number of seconds");
        return 1;
    }
    if (count > 0 && !buf) {
        set_error("MPI: all-reduce of a NULL buffer");
        return 1;
    }
    if (st.size == 1 || count == 0) return 0;
    const Deadline deadline(timeout_seconds);
    if (dtype == NN_COMM_FLOAT32) return ring_allreduce(static_cast<float *>(buf), count, MPI_FLOAT, deadline);
    return ring_allreduce(static_cast<double *>(buf), count, MPI_DOUBLE, deadline);
}

int comm_broadcast_impl(void *buf, size_t bytes, int root, double timeout_seconds) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (check_usable()) return 1;
    if (root < 0 || root >= st.size) {
        set_error("MPI: broadcast from process " + int_text(root) + ", the job has " + int_text(st.size));
        return 1;
    }
    if (!valid_timeout(timeout_seconds)) {
        set_error("MPI: the timeout must be a positive number of seconds");
        return 1;
    }
    if (bytes > 0 && !buf) {
        set_error("MPI: broadcast of a NULL buffer");
        return 1;
    }
    if (st.size == 1 || bytes == 0) return 0;
    // Through our own buffer: a broadcast cannot be taken back, and one left behind by a
    // failure must never write into the caller's memory. (Broadcasts carry a fit's
    // starting state, once per fit: the copy costs nothing that matters.)
    if (st.staging.size() < bytes) st.staging.resize(bytes);
    unsigned char *p = st.staging.data();
    if (st.rank == root) std::memcpy(p, buf, bytes);
    const Deadline deadline(timeout_seconds);
    for (size_t done = 0; done < bytes;) {
        const size_t n = std::min(bytes - done, kMaxPiece);
        MPI_Request r = MPI_REQUEST_NULL;
        int rc = MPI_Ibcast(p + done, int(n), MPI_BYTE, root, st.comm, &r);
        if (rc != MPI_SUCCESS) return fail_mpi("MPI_Ibcast", rc);
        st.pending.push_back(r);
        if (wait_pending(deadline, "broadcast")) return 1;
        done += n;
    }
    if (st.rank != root) std::memcpy(buf, p, bytes);
    return 0;
}

int comm_barrier_impl(double timeout_seconds) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (check_usable()) return 1;
    if (!valid_timeout(timeout_seconds)) {
        set_error("MPI: the timeout must be a positive number of seconds");
        return 1;
    }
    if (st.size == 1) return 0;
    MPI_Request r = MPI_REQUEST_NULL;
    int rc = MPI_Ibarrier(st.comm, &r);
    if (rc != MPI_SUCCESS) return fail_mpi("MPI_Ibarrier", rc);
    st.pending.push_back(r);
    return wait_pending(Deadline(timeout_seconds), "barrier");
}

// Runs at exit (registered once we initialised MPI): finalize unless a collective failed.
void finalize_at_exit() {
    // A thread still inside a collective holds the lock: leave MPI alone.
    std::unique_lock<std::mutex> lock(g_mutex, std::try_to_lock);
    if (!lock.owns_lock() || !st.we_initialized || !st.broken.empty()) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (st.comm != MPI_COMM_NULL) MPI_Comm_free(&st.comm);
    MPI_Finalize();
}

// How long open() waits for every process to create our communicator (the application
// initialised MPI itself and one process never calls nn_fit: no hang).
constexpr double kOpenTimeout = 120.0;

// Launched by mpirun (Open MPI) or another PMI launcher (MPICH's hydra, Slurm's srun).
const char *launcher_variable() {
    for (const char *v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (getenv(v)) return v;
    return nullptr;
}

// Joins the job; returns why not, or "" on success.
std::string do_open() {
    if (!launcher_variable())
        return "not launched under mpirun (none of OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK is set; "
               "start the program with mpirun -n P)";
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized) return "MPI was already finalized by the program";
    if (!initialized) {
        // We are dlopen'ed RTLD_LOCAL; Open MPI's own components, loaded by MPI_Init,
        // expect libmpi's symbols in the global scope (mpi4py does the same).
        Dl_info info{};
        if (dladdr(reinterpret_cast<void *>(&MPI_Init_thread), &info) && info.dli_fname)
            dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        int provided = 0;
        int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) return "MPI_Init_thread failed: " + mpi_error_text(rc);
        st.we_initialized = true;
        std::atexit(finalize_at_exit);
        // Errors on the world communicator (where MPI_Comm_idup reports) come back to us
        // instead of aborting; a program that initialised MPI keeps its own choice.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    MPI_Request r = MPI_REQUEST_NULL;
    int rc = MPI_Comm_idup(MPI_COMM_WORLD, &st.comm, &r);
    if (rc != MPI_SUCCESS) return "MPI_Comm_idup failed: " + mpi_error_text(rc);
    st.pending.push_back(r);
    if (wait_pending(Deadline(kOpenTimeout), "creating the communicator")) return st.broken;
    MPI_Comm_set_errhandler(st.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(st.comm, &st.rank);
    MPI_Comm_size(st.comm, &st.size);
    log_line(1, "MPI: process " + int_text(st.rank) + " of " + int_text(st.size));
    return "";
}

int comm_open_impl(int *out_rank, int *out_size, char *why, size_t why_capacity) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!st.opened) {
        st.open_why = do_open();
        st.open_rc = st.open_why.empty() ? 0 : 1;
        st.opened = true;
    }
    if (st.open_rc != 0) {
        if (why && why_capacity > 0) std::snprintf(why, why_capacity, "%s", st.open_why.c_str());
        return 1;
    }
    if (out_rank) *out_rank = st.rank;
    if (out_size) *out_size = st.size;
    return 0;
}

// The exception firewall: nothing thrown (std::bad_alloc from a buffer) crosses into
// the host. A failure midway through a collective leaves the peers at other points of the
// protocol, so it breaks the group like any other failure.
template <typename F>
int guarded(F f) noexcept {
    try {
        return f();
    } catch (const std::exception &e) {
        try {
            std::lock_guard<std::mutex> lock(g_mutex);
            return fail(std::string("out of memory or internal failure: ") + e.what());
        } catch (...) {
            return 1;
        }
    } catch (...) {
        return 1;
    }
}

int comm_allreduce_sum(void *buf, size_t count, uint32_t dtype, double timeout_seconds) {
    return guarded([&] { return comm_allreduce_sum_impl(buf, count, dtype, timeout_seconds); });
}
int comm_broadcast(void *buf, size_t bytes, int root, double timeout_seconds) {
    return guarded([&] { return comm_broadcast_impl(buf, bytes, root, timeout_seconds); });
}
int comm_barrier(double timeout_seconds) {
    return guarded([&] { return comm_barrier_impl(timeout_seconds); });
}
int comm_open(int *out_rank, int *out_size, char *why, size_t why_capacity) {
    const int rc = guarded([&] { return comm_open_impl(out_rank, out_size, why, why_capacity); });
    if (rc != 0 && why && why_capacity > 0 && !why[0]) std::snprintf(why, why_capacity, "%s", "out of memory");
    return rc;
}

const nn_comm_iface kMpiIface = {
    .abi_version = NN_COMM_ABI_VERSION,
    .struct_size = sizeof(nn_comm_iface),
    .name = "mpi",
    .open = comm_open,
    .allreduce_sum = comm_allreduce_sum,
    .broadcast = comm_broadcast,
    .barrier = comm_barrier,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const nn_comm_iface *nn_comm_entry(const nn_host_services *host) {
    if (!host || host->abi_version != NN_BACKEND_ABI_VERSION) {
        if (host && host->set_error && host->struct_size >= sizeof(uint32_t) * 2 + sizeof(void *))
            host->set_error("mpi communication plugin: host ABI version differs from the plugin's");
        return nullptr;
    }
    g_host = host;
    return &kMpiIface;
}
