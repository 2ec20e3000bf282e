/* Deliberately broken CPU plugins: each build variant breaks one rule of the plugin
 * ABI, and libnn must report it as the CPU device's reason and go on without it. */
#include <stddef.h>

#include "nn/nn_backend.h"

#if defined(FAKE_ABI_MISMATCH) || defined(FAKE_INCOMPLETE)
static int count(char *why, size_t cap) {
    (void)why;
    (void)cap;
    return 1;
}
static nn_backend_iface table = {
#if defined(FAKE_ABI_MISMATCH)
    NN_BACKEND_ABI_VERSION + 98,
#else
    NN_BACKEND_ABI_VERSION,
#endif
    sizeof(nn_backend_iface), "fake", count, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL};
#endif

#if defined(FAKE_MISSING_DEP)
/* Defined in libnn_absent_dep.so, which the loader cannot find (as a CUDA plugin on a
 * machine without libcublas): dlopen itself must fail and be reported. */
extern int nn_absent_dependency(void);
#endif

#if !defined(FAKE_NO_ENTRY)
__attribute__((visibility("default"))) const nn_backend_iface *nn_backend_entry(const nn_host_services *host) {
#if defined(FAKE_REFUSE)
    host->set_error("this test plugin always refuses");
    return NULL;
#elif defined(FAKE_MISSING_DEP)
    (void)host;
    return nn_absent_dependency() ? NULL : NULL;
#else
    (void)host;
    return &table;
#endif
}
#else
__attribute__((visibility("default"))) int not_the_entry_symbol(void) { return 0; }
#endif
