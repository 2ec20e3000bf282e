// libnn-backend-cpu.so: the CPU backend. Large products go to OpenBLAS; the small
// ones of nets like the book's 2-10-3 run in fused loops, which beat a BLAS call's
// fixed cost there (measured in bench/spiral). One model keeps its parameters,
// gradients, training set and workspace in one place, sized before training starts,
// so a training step allocates nothing.
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "common/nn_math.h"
#include "nn/nn_backend.h"

namespace {

const nn_host_services *g_host = nullptr;

void report(const char *message) {
    if (g_host && g_host->set_error) g_host->set_error(message);
}

// Below this many multiply-adds a product runs in the fused loops, above it in BLAS.
constexpr size_t kBlasThreshold = 64 * 64 * 64;

// ---- products (row-major) --------------------------------------------------------

// out (B, O) = x (B, I) · W (I, O) + b, then the hidden activation when `act` >= 0.
template <typename T>
void affine_forward(T *out, const T *x, const T *W, const T *b, size_t B, size_t I, size_t O, int act) {
    if (B * I * O >= kBlasThreshold) {
        if constexpr (sizeof(T) == 8)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(B), int(O), int(I), 1.0, x, int(I), W, int(O), 0.0, out, int(O));
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(B), int(O), int(I), 1.0f, x, int(I), W, int(O), 0.0f, out, int(O));
    } else {
        // Each out[r, j] sums k in order from zero, as the reference does.
        for (size_t r = 0; r < B; ++r) {
            T *o = out + r * O;
            std::fill(o, o + O, T(0));
            for (size_t k = 0; k < I; ++k) {
                const T xv = x[r * I + k];
                const T *w = W + k * O;
                for (size_t j = 0; j < O; ++j) o[j] += xv * w[j];
            }
        }
    }
    for (size_t r = 0; r < B; ++r) {
        T *o = out + r * O;
        if (act >= 0)
            for (size_t j = 0; j < O; ++j) o[j] = nn::math::activate(uint32_t(act), o[j] + b[j]);
        else
            for (size_t j = 0; j < O; ++j) o[j] = o[j] + b[j];
    }
}

// dx (B, I) = dout · Wᵀ (when dx), dW (I, O) = xᵀ · dout, db = Σ_rows dout.
template <typename T>
void affine_backward(T *dx, T *dW, T *db, const T *dout, const T *x, const T *W, size_t B, size_t I, size_t O) {
    const bool blas = B * I * O >= kBlasThreshold;
    if (blas) {
        if constexpr (sizeof(T) == 8) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(I), int(O), int(B), 1.0, x, int(I), dout, int(O), 0.0, dW, int(O));
            if (dx) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(B), int(I), int(O), 1.0, dout, int(O), W, int(O), 0.0, dx, int(I));
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(I), int(O), int(B), 1.0f, x, int(I), dout, int(O), 0.0f, dW, int(O));
            if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(B), int(I), int(O), 1.0f, dout, int(O), W, int(O), 0.0f, dx, int(I));
        }
    } else {
        std::fill(dW, dW + I * O, T(0));
        for (size_t r = 0; r < B; ++r) {
            const T *d = dout + r * O;
            for (size_t k = 0; k < I; ++k) {
                const T xv = x[r * I + k];
                T *g = dW + k * O;
                for (size_t j = 0; j < O; ++j) g[j] += xv * d[j];
            }
        }
        if (dx)
            for (size_t r = 0; r < B; ++r)
                for (size_t k = 0; k < I; ++k) {
                    const T *d = dout + r * O;
                    const T *w = W + k * O;
                    T acc = T(0);
                    for (size_t j = 0; j < O; ++j) acc += d[j] * w[j];
                    dx[r * I + k] = acc;
                }
    }
    std::copy(dout, dout + O, db);
    for (size_t r = 1; r < B; ++r)
        for (size_t j = 0; j < O; ++j) db[j] += dout[r * O + j];
}

// ---- one model --------------------------------------------------------------------

template <typename T>
struct Model {
    std::vector<size_t> sizes;
    uint32_t act = 0, loss = 0;
    std::vector<size_t> w_off, b_off;
    std::vector<T> params, grads;
    std::vector<T> data_x, data_t;
    std::vector<int32_t> data_labels;
    size_t rows = 0, capacity = 0;
    std::vector<std::vector<T>> acts;  // acts[l]: (B, sizes[l]); acts.back(): scores
    std::vector<T> delta, delta_next, terms, batch_t;
    std::vector<int32_t> batch_labels;

    size_t layers() const { return sizes.size() - 1; }

    void init(const nn_backend_net &net) {
        sizes.assign(net.layer_sizes, net.layer_sizes + net.n_layer_sizes);
        act = net.hidden_activation;
        loss = net.loss;
        size_t off = 0;
        for (size_t l = 0; l < layers(); ++l) {
            w_off.push_back(off);
            off += sizes[l] * sizes[l + 1];
            b_off.push_back(off);
            off += sizes[l + 1];
        }
        params.assign(off, T(0));
        grads.assign(off, T(0));
        acts.resize(sizes.size());
    }

    void size_workspace(size_t batch) {
        if (batch <= capacity) return;
        const size_t widest = *std::max_element(sizes.begin(), sizes.end());
        for (size_t l = 0; l < acts.size(); ++l) acts[l].assign(batch * sizes[l], T(0));
        delta.assign(batch * widest, T(0));
        delta_next.assign(batch * widest, T(0));
        terms.assign(batch * sizes.back(), T(0));
        batch_t.assign(batch * sizes.back(), T(0));
        batch_labels.assign(batch, 0);
        capacity = batch;
    }

    void forward(size_t B) {
        for (size_t l = 0; l < layers(); ++l)
            affine_forward(acts[l + 1].data(), acts[l].data(), params.data() + w_off[l], params.data() + b_off[l], B,
                           sizes[l], sizes[l + 1], l + 1 < layers() ? int(act) : -1);
    }

    double step(const int64_t *order, size_t B, T lr) {
        const size_t in = sizes.front(), out = sizes.back(), L = layers();
        for (size_t r = 0; r < B; ++r) {
            const size_t src = size_t(order[r]);
            std::memcpy(acts[0].data() + r * in, data_x.data() + src * in, in * sizeof(T));
            if (loss == nn::math::kSoftmaxCrossEntropy)
                batch_labels[r] = data_labels[src];
            else
                std::memcpy(batch_t.data() + r * out, data_t.data() + src * out, out * sizeof(T));
        }
        forward(B);

        T *s = acts[L].data();  // scores → d loss / d scores, in place
        double value;
        if (loss == nn::math::kSoftmaxCrossEntropy) {
            for (size_t r = 0; r < B; ++r) {
                T *row = s + r * out;
                nn::math::softmax_row(row, out);
                terms[r] = nn::math::cross_entropy_term(row[batch_labels[r]]);
                row[batch_labels[r]] -= T(1);
                for (size_t j = 0; j < out; ++j) row[j] = row[j] / T(B);
            }
            value = double(-nn::math::pairwise_sum(terms.data(), B, 1)) / double(B);
        } else {
            for (size_t i = 0; i < B * out; ++i) {
                s[i] = s[i] - batch_t[i];
                terms[i] = s[i] * s[i];
                s[i] = s[i] / T(B);
            }
            value = 0.5 * double(nn::math::pairwise_sum(terms.data(), B * out, 1)) / double(B);
        }

        const T *dcur = s;
        for (size_t l = L; l-- > 0;) {
            T *dx = l > 0 ? delta_next.data() : nullptr;
            affine_backward(dx, grads.data() + w_off[l], grads.data() + b_off[l], dcur, acts[l].data(),
                            params.data() + w_off[l], B, sizes[l], sizes[l + 1]);
            if (l > 0) {
                const T *h = acts[l].data();
                for (size_t i = 0; i < B * sizes[l]; ++i) dx[i] = nn::math::activate_backward(act, dx[i], h[i]);
                delta.swap(delta_next);
                dcur = delta.data();
            }
        }
        for (size_t i = 0; i < params.size(); ++i) params[i] = nn::math::sgd_update(params[i], grads[i], lr);
        return value;
    }
};

}  // namespace

struct nn_backend_model {
    bool f64;
    Model<float> m32;
    Model<double> m64;
};

namespace {

template <typename Fn>
nn_backend_result guarded(Fn &&fn) {
    try {
        fn();
        return NN_BACKEND_OK;
    } catch (const std::bad_alloc &) {
        report("cpu backend: out of memory");
        return NN_BACKEND_ERR_OUT_OF_MEMORY;
    } catch (...) {
        report("cpu backend: unexpected failure");
        return NN_BACKEND_ERR_INVALID;
    }
}

template <typename Fn>
void dispatch(nn_backend_model *m, Fn &&fn) {
    if (m->f64)
        fn(m->m64);
    else
        fn(m->m32);
}

int cpu_device_count(char *, size_t) { return 1; }

nn_backend_result cpu_device_describe(int index, nn_backend_device *out) {
    if (index != 0) {
        report("cpu backend: only device 0 exists");
        return NN_BACKEND_ERR_INVALID;
    }
    out->available = 1;
    std::snprintf(out->name, sizeof out->name, "cpu (%s, %d threads)", openblas_get_config(),
                  openblas_get_num_threads());
    out->reason[0] = '\0';
    return NN_BACKEND_OK;
}

nn_backend_result cpu_model_create(int, const nn_backend_net *net, nn_backend_model **out) {
    return guarded([&] {
        auto m = new nn_backend_model{net->dtype == 1, {}, {}};
        try {
            dispatch(m, [&](auto &impl) { impl.init(*net); });
        } catch (...) {
            delete m;
            throw;
        }
        *out = m;
    });
}

void cpu_model_destroy(nn_backend_model *m) { delete m; }

nn_backend_result cpu_params_write(nn_backend_model *m, const void *params) {
    dispatch(m, [&](auto &impl) {
        using T = typename std::decay_t<decltype(impl.params)>::value_type;
        std::memcpy(impl.params.data(), params, impl.params.size() * sizeof(T));
    });
    return NN_BACKEND_OK;
}

nn_backend_result cpu_params_read(nn_backend_model *m, void *out) {
    dispatch(m, [&](auto &impl) {
        using T = typename std::decay_t<decltype(impl.params)>::value_type;
        std::memcpy(out, impl.params.data(), impl.params.size() * sizeof(T));
    });
    return NN_BACKEND_OK;
}

nn_backend_result cpu_data_upload(nn_backend_model *m, const void *x, const void *targets, size_t rows, size_t max_batch) {
    return guarded([&] {
        dispatch(m, [&](auto &impl) {
            using T = typename std::decay_t<decltype(impl.params)>::value_type;
            const size_t in = impl.sizes.front(), out = impl.sizes.back();
            const T *xs = static_cast<const T *>(x);
            impl.data_x.assign(xs, xs + rows * in);
            if (impl.loss == nn::math::kSoftmaxCrossEntropy) {
                const int32_t *l = static_cast<const int32_t *>(targets);
                impl.data_labels.assign(l, l + rows);
            } else {
                const T *t = static_cast<const T *>(targets);
                impl.data_t.assign(t, t + rows * out);
            }
            impl.rows = rows;
            impl.size_workspace(max_batch);
        });
    });
}

nn_backend_result cpu_train_steps(nn_backend_model *m, const int64_t *order, size_t steps, size_t batch,
                                  const nn_backend_train_config *config, double *out_losses) {
    dispatch(m, [&](auto &impl) {
        using T = typename std::decay_t<decltype(impl.params)>::value_type;
        const T lr = T(config->learning_rate);
        for (size_t s = 0; s < steps; ++s) out_losses[s] = impl.step(order + s * batch, batch, lr);
    });
    return NN_BACKEND_OK;
}

nn_backend_result cpu_predict(nn_backend_model *m, const void *x, size_t rows, void *out_scores) {
    return guarded([&] {
        dispatch(m, [&](auto &impl) {
            using T = typename std::decay_t<decltype(impl.params)>::value_type;
            const size_t in = impl.sizes.front(), out = impl.sizes.back();
            const size_t chunk = std::min<size_t>(rows, 4096);
            impl.size_workspace(chunk);
            const T *xs = static_cast<const T *>(x);
            T *scores = static_cast<T *>(out_scores);
            for (size_t start = 0; start < rows; start += chunk) {
                const size_t B = std::min(chunk, rows - start);
                std::memcpy(impl.acts[0].data(), xs + start * in, B * in * sizeof(T));
                impl.forward(B);
                std::memcpy(scores + start * out, impl.acts.back().data(), B * out * sizeof(T));
            }
        });
    });
}

const nn_backend_iface kCpuIface = {
    .abi_version = NN_BACKEND_ABI_VERSION,
    .struct_size = sizeof(nn_backend_iface),
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_describe = cpu_device_describe,
    .model_create = cpu_model_create,
    .model_destroy = cpu_model_destroy,
    .params_write = cpu_params_write,
    .params_read = cpu_params_read,
    .data_upload = cpu_data_upload,
    .train_steps = cpu_train_steps,
    .predict = cpu_predict,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const nn_backend_iface *nn_backend_entry(const nn_host_services *host) {
    if (!host || host->abi_version != NN_BACKEND_ABI_VERSION) {
        if (host && host->set_error && host->struct_size >= sizeof(uint32_t) * 2 + sizeof(void *))
            host->set_error("cpu backend: host ABI version differs from the plugin's");
        return nullptr;
    }
    g_host = host;
    return &kCpuIface;
}
